package resolver

import (
	"errors"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeAsserter records the identities and expiries it was asked to sign.
type fakeAsserter struct {
	mu    sync.Mutex
	calls []assertCall
	err   error
}

type assertCall struct {
	User string
	Exp  time.Time
}

func (f *fakeAsserter) Assert(id *Identity, exp time.Time) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return "", f.err
	}
	f.calls = append(f.calls, assertCall{id.UserID, exp})
	return "assertion-" + id.UserID + "-" + strconv.Itoa(len(f.calls)), nil
}

// mapCache is an in-process Cache for tests: expiry as the real one, no bound.
type mapCache struct {
	mu sync.Mutex
	m  map[Key]*Verdict
}

func (c *mapCache) Get(k Key, now time.Time) (*Verdict, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[k]
	if !ok || !now.Before(v.Expires) {
		return nil, false
	}
	return v, true
}

func (c *mapCache) Set(k Key, v *Verdict, _ uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[k] = v
}

func (c *mapCache) Epoch() uint64                 { return 0 }
func (c *mapCache) Changed(uint64, *Verdict) bool { return false }

func TestAssertion(t *testing.T) {
	const hdr = "X-Auth-Assertion"
	now := testNow
	asserter := &fakeAsserter{}
	h := newTestHandler(t, func(o *Options) {
		o.Asserter = asserter
		o.Cache = &mapCache{m: map[Key]*Verdict{}}
		o.CacheTTL = 5 * time.Minute // longer than an assertion lives
		o.Now = func() time.Time { return now }
	})
	anon := bearerHdr(tokenAnon)
	bob := map[string]string{"Cookie": "session=" + sessionBob}

	steps := []struct {
		name      string
		advance   time.Duration
		target    string
		hdr       map[string]string
		want      answer
		wantCalls []assertCall // all calls so far
	}{
		{
			name: "allow carries an assertion until min(60s, credential expiry); reuse no longer",
			hdr:  anon, target: "/resolve",
			want:      answer{200, map[string]string{hdr: "assertion-anon-1-1", "Cache-Control": "private, max-age=60"}},
			wantCalls: []assertCall{{"anon-1", testNow.Add(AssertionLifetime)}},
		},
		{
			name: "a cache hit reuses the signed assertion",
			hdr:  anon, target: "/resolve", advance: 30 * time.Second,
			want:      answer{200, map[string]string{hdr: "assertion-anon-1-1", "Cache-Control": "private, max-age=30"}},
			wantCalls: []assertCall{{"anon-1", testNow.Add(AssertionLifetime)}},
		},
		{
			name: "requirements do not re-sign",
			hdr:  anon, target: "/resolve?anonymous=true",
			want:      answer{200, map[string]string{hdr: "assertion-anon-1-1", "Cache-Control": "private, max-age=30"}},
			wantCalls: []assertCall{{"anon-1", testNow.Add(AssertionLifetime)}},
		},
		{
			name: "past the assertion's exp the verdict is resolved and signed again",
			hdr:  anon, target: "/resolve", advance: 30 * time.Second,
			want: answer{200, map[string]string{hdr: "assertion-anon-1-2", "Cache-Control": "private, max-age=60"}},
			wantCalls: []assertCall{
				{"anon-1", testNow.Add(AssertionLifetime)},
				{"anon-1", testNow.Add(60*time.Second + AssertionLifetime)},
			},
		},
		{
			name: "a credential expiring sooner bounds the assertion",
			hdr:  bearerHdr(tokenAlice), target: "/resolve", advance: -60 * time.Second,
			want: answer{200, map[string]string{hdr: "assertion-alice-3", "Cache-Control": "private, max-age=2"}},
			wantCalls: []assertCall{
				{"anon-1", testNow.Add(AssertionLifetime)},
				{"anon-1", testNow.Add(60*time.Second + AssertionLifetime)},
				{"alice", testNow.Add(2 * time.Second)},
			},
		},
		{
			name: "sessions too",
			hdr:  bob, target: "/resolve",
			want: answer{200, map[string]string{hdr: "assertion-bob-4", "Cache-Control": "private, max-age=60"}},
			wantCalls: []assertCall{
				{"anon-1", testNow.Add(AssertionLifetime)},
				{"anon-1", testNow.Add(60*time.Second + AssertionLifetime)},
				{"alice", testNow.Add(2 * time.Second)},
				{"bob", testNow.Add(AssertionLifetime)},
			},
		},
		{
			name: "no assertion on a 403",
			hdr:  anon, target: "/resolve?anonymous=false",
			want: answer{403, map[string]string{"Cache-Control": "no-store"}},
		},
		{
			name:   "no assertion for anonymous callers on optional routes",
			target: "/resolve?optional=true",
			want:   answer{200, map[string]string{"Cache-Control": "no-store"}},
		},
		{
			name: "no assertion on a 401",
			hdr:  bearerHdr(tokenBadSig), target: "/resolve",
			want: answer{401, map[string]string{"Cache-Control": "no-store"}},
		},
	}
	var calls []assertCall
	for _, s := range steps {
		now = now.Add(s.advance)
		got := do(t, h, "GET", s.target, s.hdr, hdr, "Cache-Control")
		if d := cmp.Diff(s.want, got); d != "" {
			t.Errorf("%s: answer (-want +got):\n%s", s.name, d)
		}
		if s.wantCalls != nil {
			calls = s.wantCalls
		}
		if d := cmp.Diff(calls, asserter.calls); d != "" {
			t.Errorf("%s: Assert calls (-want +got):\n%s", s.name, d)
		}
	}
}

func TestAssertionFailureIs503(t *testing.T) {
	h := newTestHandler(t, func(o *Options) {
		o.Asserter = &fakeAsserter{err: errors.New("sign: entropy")}
	})
	got := do(t, h, "GET", "/resolve", bearerHdr(tokenAnon), "X-Auth-Assertion", "X-Auth-User-Id", "Retry-After")
	want := answer{http.StatusServiceUnavailable, map[string]string{"Retry-After": "1"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("answer (-want +got):\n%s", d)
	}
}

func TestIdentityHeadersNameAssertion(t *testing.T) {
	h := New(Options{})
	found := false
	for _, n := range h.IdentityHeaders() {
		found = found || n == "X-Auth-Assertion"
	}
	if !found {
		t.Errorf("IdentityHeaders() = %q, want X-Auth-Assertion among them (gateways remove client copies)", h.IdentityHeaders())
	}
}
