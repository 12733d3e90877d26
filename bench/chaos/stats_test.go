package main

import (
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	tests := []struct {
		p    float64
		want time.Duration
	}{
		{50, 50 * time.Millisecond},
		{99, 99 * time.Millisecond},
		{100, 100 * time.Millisecond},
		{0, time.Millisecond},
	}
	for _, tt := range tests {
		if got := percentile(d, tt.p); got != tt.want {
			t.Errorf("percentile(%v) = %v, want %v", tt.p, got, tt.want)
		}
	}
	if got := percentile(nil, 99); got != 0 {
		t.Errorf("percentile(nil) = %v, want 0", got)
	}
	if got := summarize([]time.Duration{3, 1, 2}); got != (summary{n: 3, p50: 2, p99: 3, max: 3}) {
		t.Errorf("summarize = %+v", got)
	}
}

// steady makes one request every 10 ms in [from, to) of kind k, answered
// with o after lat.
func steady(from, to time.Duration, k kind, e expect, o outcome, lat time.Duration) []result {
	var out []result
	for t := from; t < to; t += 10 * time.Millisecond {
		out = append(out, result{kind: k, due: t, sent: t, done: t + lat, outcome: o, expect: e})
	}
	return out
}

func TestRecoverAfter(t *testing.T) {
	s := time.Second
	ms := time.Millisecond
	var rs []result
	rs = append(rs, steady(0, 10*s, kindSession, expectAllow, outAllow, 2*ms)...)         // baseline
	rs = append(rs, steady(10*s, 15*s, kindSession, expectAllow, outUnavailable, 1*s)...) // fault
	rs = append(rs, steady(10*s, 15*s, kindInvalid, expectDeny, outDeny, ms)...)          // unaffected
	rs = append(rs, steady(15*s, 15*s+300*ms, kindSession, expectAllow, outUnavailable, 20*ms)...)
	rs = append(rs, steady(15*s+300*ms, 17*s, kindSession, expectAllow, outAllow, 10*ms)...) // slow
	rs = append(rs, steady(17*s, 20*s, kindSession, expectAllow, outAllow, 2*ms)...)
	// An unaffected kind answered at once after the heal does not count as
	// the first correct answer.
	rs = append(rs, result{kind: kindInvalid, due: 15 * s, sent: 15 * s, done: 15*s + ms, outcome: outDeny, expect: expectDeny})
	got := recoverAfter(rs, 10*s, 15*s, 2*ms)
	want := recovery{firstCorrect: 310 * ms, allClear: 310 * ms, p99Back: 3 * s, ok: true}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(recovery{})); diff != "" {
		t.Errorf("recoverAfter (-want +got):\n%s", diff)
	}
}

func TestRecoverAfterNever(t *testing.T) {
	s := time.Second
	rs := steady(0, 5*s, kindSession, expectAllow, outAllow, time.Millisecond)
	rs = append(rs, steady(5*s, 9*s, kindSession, expectAllow, outUnavailable, time.Millisecond)...)
	got := recoverAfter(rs, 5*s, 7*s, time.Millisecond)
	if got.ok || got.p99Back != -1 {
		t.Errorf("recoverAfter with no correct answer after the heal = %+v, want none found", got)
	}
}

func TestSlopeAndFlat(t *testing.T) {
	var ts []time.Duration
	var leak, noisy []float64
	for i := range 49 {
		ts = append(ts, time.Duration(i)*10*time.Second)
		leak = append(leak, 100+float64(i)*0.5)           // +3 per minute
		noisy = append(noisy, 100+float64((i*37)%11)-5.0) // ±5, no trend
	}
	b, mean, resid := slope(ts, leak)
	if math.Abs(b*60-3) > 1e-9 || math.Abs(mean-112) > 1e-9 || resid > 1e-9 {
		t.Errorf("slope(leak) = %v/min, mean %v, resid %v; want 3/min, 112, 0", b*60, mean, resid)
	}
	span := 8 * time.Minute
	if flat(b, mean, resid, span) {
		t.Errorf("a steady leak of 3/min over 8 min (24 on 112) counts as flat")
	}
	b, mean, resid = slope(ts, noisy)
	if !flat(b, mean, resid, span) {
		t.Errorf("noise without trend is not flat: slope %v/min, mean %v, resid %v", b*60, mean, resid)
	}
	if !flat(0.001, 1000, 0, span) {
		t.Errorf("a drift of 0.5 on 1000 (under 5 %%) is not flat")
	}
}
