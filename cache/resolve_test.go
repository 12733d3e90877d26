package cache_test

import (
	"context"
	"github.com/authresolver/authresolver/internal/testclock"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authresolver/authresolver/cache"
	"github.com/authresolver/authresolver/resolver"
)

// Hand-written fakes of the resolver's seams; each counts its calls.

type fakeTokens struct {
	calls    atomic.Int64
	VerifyFn func(ctx context.Context, token string) (resolver.Identity, resolver.Reason, error)
}

func (f *fakeTokens) Verify(ctx context.Context, token string) (resolver.Identity, resolver.Reason, error) {
	f.calls.Add(1)
	return f.VerifyFn(ctx, token)
}

type fakeSessions struct {
	calls    atomic.Int64
	LookupFn func(ctx context.Context, id string) (resolver.Identity, resolver.Reason, error)
}

func (f *fakeSessions) Lookup(ctx context.Context, id string) (resolver.Identity, resolver.Reason, error) {
	f.calls.Add(1)
	return f.LookupFn(ctx, id)
}

type fakeRevocations struct {
	calls     atomic.Int64
	RevokedFn func(ctx context.Context, id resolver.Identity) (bool, error)
}

func (f *fakeRevocations) TokenRevoked(ctx context.Context, id resolver.Identity) (bool, error) {
	f.calls.Add(1)
	if f.RevokedFn == nil {
		return false, nil
	}
	return f.RevokedFn(ctx, id)
}

// fakeShared is an L2 that never has anything.
type fakeShared struct{ gets, sets atomic.Int64 }

func (f *fakeShared) Get(context.Context, resolver.Credential) (resolver.Identity, time.Time, uint64, error) {
	f.gets.Add(1)
	return resolver.Identity{}, time.Time{}, 7, nil
}

func (f *fakeShared) Set(context.Context, resolver.Credential, resolver.Identity, time.Duration, uint64) error {
	f.sets.Add(1)
	return nil
}

const (
	testToken   = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
	testSession = "c2Vzc2lvbi1ib2ItMDEyMzQ1Njc4OWFiY2RlZmdoaWprbG0"
)

func bearerRequest(tok string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/resolve", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	return r
}

func cookieRequest(id string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/resolve", nil)
	r.Header.Set("Cookie", "session="+id)
	return r
}

func router(h *resolver.Handler) http.Handler { return h }

// metricValue returns the sum of the counters or gauges named name in reg.
func metricValue(t *testing.T, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// TestBurstIsCollapsed sends 1,000 concurrent identical requests to a cold
// cache: one verification or store lookup (and one L2 round trip) serves all
// of them. The synctest bubble makes it deterministic: the verifier blocks
// until every other request is durably blocked, which they only are once
// they wait on the one flight.
func TestBurstIsCollapsed(t *testing.T) {
	const burst = 1000
	for _, kind := range []string{resolver.CredentialJWT, resolver.CredentialSession} {
		t.Run(kind, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				release := make(chan struct{})
				wait := func(ctx context.Context) error {
					select {
					case <-release:
						return nil
					case <-ctx.Done():
						return ctx.Err()
					}
				}
				tokens := &fakeTokens{VerifyFn: func(ctx context.Context, _ string) (resolver.Identity, resolver.Reason, error) {
					err := wait(ctx)
					return resolver.Identity{Credential: resolver.CredentialJWT, UserID: "alice", Issuer: "https://idp.test", TokenID: "j1",
						ExpiresAt: time.Now().Add(time.Hour)}, resolver.ReasonNone, err
				}}
				sessions := &fakeSessions{LookupFn: func(ctx context.Context, _ string) (resolver.Identity, resolver.Reason, error) {
					err := wait(ctx)
					return resolver.Identity{Credential: resolver.CredentialSession, UserID: "bob", SessionHandle: "h1",
						ExpiresAt: time.Now().Add(time.Hour)}, resolver.ReasonNone, err
				}}
				revocations := &fakeRevocations{}
				shared := &fakeShared{}
				reg := prometheus.NewRegistry()
				h := router(resolver.New(resolver.Options{
					Tokens: tokens, Sessions: sessions, Revocations: revocations,
					Cache: cache.NewL1(cache.L1Options{}), Shared: shared,
					SessionCookie: "session", CacheTTL: 30 * time.Second,
					Metrics: resolver.NewMetrics(reg),
				}))
				newReq := func() *http.Request { return bearerRequest(testToken) }
				if kind == resolver.CredentialSession {
					newReq = func() *http.Request { return cookieRequest(testSession) }
				}

				var wg sync.WaitGroup
				codes := make([]int, burst)
				for i := range burst {
					wg.Go(func() {
						w := httptest.NewRecorder()
						h.ServeHTTP(w, newReq())
						codes[i] = w.Code
					})
				}
				synctest.Wait() // all 1,000 are in: one in the verifier, the rest on its flight
				close(release)
				wg.Wait()

				for i, code := range codes {
					if code != http.StatusOK {
						t.Fatalf("request %d: status %d, want 200", i, code)
					}
				}
				lookups := tokens.calls.Load() + sessions.calls.Load()
				t.Logf("%d requests: %d verifications/lookups, %d revocation checks, %d L2 gets, %d L2 sets, %.0f collapsed",
					burst, lookups, revocations.calls.Load(), shared.gets.Load(), shared.sets.Load(),
					metricValue(t, reg, "authresolver_cache_collapsed_total"))
				if lookups != 1 {
					t.Errorf("%d verifications/lookups, want 1", lookups)
				}
				if kind == resolver.CredentialJWT && revocations.calls.Load() != 1 {
					t.Errorf("%d revocation checks, want 1", revocations.calls.Load())
				}
				if g, s := shared.gets.Load(), shared.sets.Load(); g != 1 || s != 1 {
					t.Errorf("L2: %d gets, %d sets; want 1, 1", g, s)
				}
				// The metric counts requests that waited instead of doing their
				// own lookup.
				if got := metricValue(t, reg, "authresolver_cache_collapsed_total"); got != burst-1 {
					t.Errorf("authresolver_cache_collapsed_total = %v, want %d (every request but the one that did the work)", got, burst-1)
				}

				// The next request is an L1 hit: nothing is asked again.
				w := httptest.NewRecorder()
				h.ServeHTTP(w, newReq())
				if w.Code != http.StatusOK || tokens.calls.Load()+sessions.calls.Load() != 1 || shared.gets.Load() != 1 {
					t.Errorf("warm request: status %d, %d lookups, %d L2 gets; want 200 from L1",
						w.Code, tokens.calls.Load()+sessions.calls.Load(), shared.gets.Load())
				}
			})
		})
	}
}

// TestCacheNeverOutlivesCredential: with a cache TTL of 30 s, a token or
// session that expires in 2 s is reused from L1 until then, and never at or
// after its expiry; Cache-Control never promises more than what is left.
func TestCacheNeverOutlivesCredential(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	exp := t0.Add(2 * time.Second)
	for _, kind := range []string{resolver.CredentialJWT, resolver.CredentialSession} {
		t.Run(kind, func(t *testing.T) {
			clk := testclock.New(t0)
			tokens := &fakeTokens{VerifyFn: func(context.Context, string) (resolver.Identity, resolver.Reason, error) {
				if !clk.Now().Before(exp) {
					return resolver.Identity{}, resolver.ReasonExpired, nil
				}
				return resolver.Identity{Credential: resolver.CredentialJWT, UserID: "alice", Issuer: "https://idp.test",
					TokenID: "j1", IssuedAt: t0, ExpiresAt: exp}, resolver.ReasonNone, nil
			}}
			sessions := &fakeSessions{LookupFn: func(context.Context, string) (resolver.Identity, resolver.Reason, error) {
				if !clk.Now().Before(exp) {
					return resolver.Identity{}, resolver.ReasonSessionExpired, nil
				}
				return resolver.Identity{Credential: resolver.CredentialSession, UserID: "bob",
					SessionHandle: "h1", ExpiresAt: exp}, resolver.ReasonNone, nil
			}}
			h := router(resolver.New(resolver.Options{
				Tokens: tokens, Sessions: sessions, Revocations: &fakeRevocations{},
				Cache: cache.NewL1(cache.L1Options{}), SessionCookie: "session",
				CacheTTL: 30 * time.Second, DenialTTL: time.Second, Now: clk.Now,
			}))
			req, wantReason := bearerRequest(testToken), resolver.ReasonExpired
			if kind == resolver.CredentialSession {
				req, wantReason = cookieRequest(testSession), resolver.ReasonSessionExpired
			}
			lookups := func() int64 { return tokens.calls.Load() + sessions.calls.Load() }

			for _, step := range []struct {
				at          time.Duration
				wantCode    int
				wantLookups int64
				wantMaxAge  string
			}{
				{0, 200, 1, "private, max-age=2"},
				{time.Second, 200, 1, "private, max-age=1"},                      // from L1
				{2*time.Second - time.Millisecond, 200, 1, "private, max-age=0"}, // from L1, last instant
				{2 * time.Second, 401, 2, ""},                                    // expired: not from L1
				{2*time.Second + 500*time.Millisecond, 401, 2, ""},               // the denial, briefly cached
				{5 * time.Second, 401, 3, ""},
				{time.Minute, 401, 4, ""},
			} {
				clk.Set(t0.Add(step.at))
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != step.wantCode || lookups() != step.wantLookups {
					t.Errorf("at +%v: status %d after %d lookups; want %d after %d",
						step.at, w.Code, lookups(), step.wantCode, step.wantLookups)
				}
				if step.wantCode == 200 {
					if got := w.Header().Get("Cache-Control"); got != step.wantMaxAge {
						t.Errorf("at +%v: Cache-Control %q, want %q", step.at, got, step.wantMaxAge)
					}
					continue
				}
				if got := w.Header().Get("X-Auth-Error"); got != string(wantReason) {
					t.Errorf("at +%v: X-Auth-Error %q, want %q", step.at, got, wantReason)
				}
			}
		})
	}
}
