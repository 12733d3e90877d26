package main

import (
	"math"
	"slices"
	"time"
)

// result is one request's record. Times are offsets from the start of the
// load, so that a scenario's records are plain numbers.
type result struct {
	kind    kind
	due     time.Duration // scheduled send (open loop: latency counts from here)
	sent    time.Duration // actually written
	done    time.Duration // answer read, or the client error
	outcome outcome
	expect  expect
	wrong   bool
	late    bool // an allow for a revoked credential within the allowed grace
}

func (r result) latency() time.Duration { return r.done - r.due }

// correct reports whether the answer is the one the credential deserved
// (unavailable is not correct, though never wrong).
func (r result) correct() bool {
	if r.wrong {
		return false
	}
	switch r.expect {
	case expectAllow:
		return r.outcome == outAllow
	case expectDeny:
		return r.outcome == outDeny
	}
	return r.outcome == outAllow || r.outcome == outDeny
}

// percentile returns the p-th percentile (nearest rank) of d, sorting it in
// place; 0 for none.
func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	if !slices.IsSorted(d) {
		slices.Sort(d)
	}
	i := int(math.Ceil(float64(len(d))*p/100)) - 1
	return d[min(max(i, 0), len(d)-1)]
}

// latencies are the latencies of the answered requests (client errors have
// none worth counting) due in [from, to).
func latencies(rs []result, from, to time.Duration) []time.Duration {
	var out []time.Duration
	for _, r := range rs {
		if r.due >= from && r.due < to && r.outcome != outClientError {
			out = append(out, r.latency())
		}
	}
	return out
}

// summary is p50/p99/max of a set of latencies.
type summary struct {
	n             int
	p50, p99, max time.Duration
}

func summarize(d []time.Duration) summary {
	if len(d) == 0 {
		return summary{}
	}
	return summary{n: len(d), p50: percentile(d, 50), p99: percentile(d, 99), max: d[len(d)-1]}
}

// recovery is how long after the fault healed the service answered
// correctly again.
type recovery struct {
	// firstCorrect: from heal to the first correct answer to a request sent
	// after heal, among the kinds that were unavailable during the fault
	// (all kinds if none was).
	firstCorrect time.Duration
	// allClear: from heal to the last answer that was not correct (or 0).
	allClear time.Duration
	// p99Back: from heal to the end of the first 1 s window (by due time)
	// whose p99 is within 1.5x the baseline p99 and has no unavailable
	// answer; -1 if none within the run.
	p99Back time.Duration
	ok      bool // firstCorrect found
}

const window = time.Second

// recoverAfter computes the recovery after a fault [fault, heal) with a
// baseline p99 measured before the fault.
func recoverAfter(rs []result, fault, heal time.Duration, baselineP99 time.Duration) recovery {
	affected := map[kind]bool{}
	for _, r := range rs {
		if r.due >= fault && r.due < heal && r.outcome != outAllow && r.outcome != outDeny {
			affected[r.kind] = true
		}
	}
	rec := recovery{p99Back: -1}
	first := time.Duration(math.MaxInt64)
	for _, r := range rs {
		if r.sent < heal {
			continue
		}
		if !r.correct() {
			rec.allClear = max(rec.allClear, r.done-heal)
			continue
		}
		if (len(affected) == 0 || affected[r.kind]) && r.done < first {
			first = r.done
		}
	}
	if first != time.Duration(math.MaxInt64) {
		rec.firstCorrect, rec.ok = max(first-heal, 0), true
	}
	var end time.Duration
	for _, r := range rs {
		end = max(end, r.due)
	}
	limit := baselineP99 * 3 / 2
	for w := heal; w+window <= end+1; w += window {
		var lat []time.Duration
		clean := true
		for _, r := range rs {
			if r.due < w || r.due >= w+window {
				continue
			}
			if r.outcome != outAllow && r.outcome != outDeny {
				clean = false
			}
			lat = append(lat, r.latency())
		}
		if len(lat) > 0 && clean && percentile(lat, 99) <= limit {
			rec.p99Back = w + window - heal
			break
		}
	}
	return rec
}

// slope fits y = a + b·t by least squares and returns b (per second), the
// mean of y and the standard deviation of the residuals.
func slope(t []time.Duration, y []float64) (perSecond, mean, resid float64) {
	n := float64(len(t))
	if len(t) < 2 {
		return 0, 0, 0
	}
	var st, sy float64
	for i := range t {
		st += t[i].Seconds()
		sy += y[i]
	}
	mt, my := st/n, sy/n
	var sxy, sxx float64
	for i := range t {
		dx := t[i].Seconds() - mt
		sxy += dx * (y[i] - my)
		sxx += dx * dx
	}
	if sxx == 0 {
		return 0, my, 0
	}
	b := sxy / sxx
	var ss float64
	for i := range t {
		e := y[i] - (my + b*(t[i].Seconds()-mt))
		ss += e * e
	}
	return b, my, math.Sqrt(ss / n)
}

// flat reports whether a series with this fit is flat within noise over
// span: the drift the slope predicts over the span is within three standard
// deviations of the residuals, or within 5 % of the mean.
func flat(perSecond, mean, resid float64, span time.Duration) bool {
	drift := math.Abs(perSecond * span.Seconds())
	return drift <= 3*resid || drift <= 0.05*math.Abs(mean)
}
