package cache_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/authresolver/authresolver/cache"
	"github.com/authresolver/authresolver/resolver"
)

// revocable is a session store holding one session (testSession, user bob,
// handle h1) until revoke. A lookup decides at its start, as a Redis read
// does: one that began before the revocation answers with the session even
// if it returns after. hold, when set, makes such lookups wait for it.
type revocable struct {
	fakeSessions
	revoked atomic.Bool
	hold    chan struct{}
}

func newRevocable() *revocable {
	s := &revocable{}
	s.LookupFn = func(ctx context.Context, _ string) (resolver.Identity, resolver.Reason, error) {
		if s.revoked.Load() {
			return resolver.Identity{}, resolver.ReasonSessionNotFound, nil
		}
		if s.hold != nil {
			select {
			case <-s.hold:
			case <-ctx.Done():
				return resolver.Identity{}, resolver.ReasonNone, ctx.Err()
			}
		}
		return resolver.Identity{Credential: resolver.CredentialSession, UserID: "bob", SessionHandle: "h1",
			ExpiresAt: time.Now().Add(time.Hour)}, resolver.ReasonNone, nil
	}
	return s
}

func newSessionHandler(s resolver.SessionStore, l1 *cache.L1, mutate func(*resolver.Options)) http.Handler {
	o := resolver.Options{Sessions: s, Cache: l1, SessionCookie: "session", CacheTTL: 30 * time.Second}
	if mutate != nil {
		mutate(&o)
	}
	return resolver.New(o)
}

func serveCode(h http.Handler, r *http.Request) int {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code
}

// TestRevocationDuringFlight: a lookup reads the session, then the session
// is revoked and its invalidation returns, then the lookup answers. Neither
// the request that started the lookup nor one that arrives after the
// revocation (and on the old code joined the lookup) may get 200, and
// nothing stale is left in L1.
func TestRevocationDuringFlight(t *testing.T) {
	for _, joiner := range []bool{false, true} {
		t.Run(fmt.Sprintf("joiner=%v", joiner), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				store := newRevocable()
				store.hold = make(chan struct{})
				l1 := cache.NewL1(cache.L1Options{})
				h := newSessionHandler(store, l1, nil)

				var wg sync.WaitGroup
				var leader, late int
				wg.Go(func() { leader = serveCode(h, cookieRequest(testSession)) })
				synctest.Wait() // the leader's lookup has read the session and waits
				store.revoked.Store(true)
				l1.Invalidate(resolver.SessionTag("h1")) // the revocation has returned
				if joiner {
					wg.Go(func() { late = serveCode(h, cookieRequest(testSession)) })
					synctest.Wait()
				}
				close(store.hold)
				wg.Wait()

				if leader != http.StatusUnauthorized {
					t.Errorf("the request whose lookup predates the revocation: status %d, want 401", leader)
				}
				if joiner && late != http.StatusUnauthorized {
					t.Errorf("a request arriving after the revocation: status %d, want 401", late)
				}
				// Nothing stale was stored: the next request is not served a
				// grant from L1.
				if code := serveCode(h, cookieRequest(testSession)); code != http.StatusUnauthorized {
					t.Errorf("after the revocation: status %d, want 401", code)
				}
			})
		})
	}
}

// TestInvalidationStormIsBounded: when an invalidation races every lookup,
// the resolver redoes it a bounded number of times and then answers 503,
// never the allow that may predate a revocation.
func TestInvalidationStormIsBounded(t *testing.T) {
	l1 := cache.NewL1(cache.L1Options{})
	store := newRevocable()
	lookup := store.LookupFn
	store.LookupFn = func(ctx context.Context, id string) (resolver.Identity, resolver.Reason, error) {
		identity, reason, err := lookup(ctx, id)
		l1.Invalidate(resolver.UserSessionsTag("bob"))
		return identity, reason, err
	}
	h := newSessionHandler(store, l1, nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, cookieRequest(testSession))
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Errorf("status %d, Retry-After %q; want 503 with Retry-After", w.Code, w.Header().Get("Retry-After"))
	}
	if n := store.calls.Load(); n != 3 {
		t.Errorf("%d lookups, want 3 (bounded)", n)
	}
}

// TestOtherRevocationsDuringLookup: revocations of other users while a
// lookup runs (a stream of logouts elsewhere in the cluster) neither fail
// it nor keep its verdict out of L1; a flush does.
func TestOtherRevocationsDuringLookup(t *testing.T) {
	for _, tc := range []struct {
		name       string
		invalidate func(*cache.L1)
		want       int
		wantCached bool
	}{
		{"other users", func(l1 *cache.L1) {
			l1.Invalidate(resolver.UserSessionsTag("someone-else"))
			l1.Invalidate(resolver.SessionTag("h2"))
		}, http.StatusOK, true},
		{"flush", func(l1 *cache.L1) { l1.Flush() }, http.StatusServiceUnavailable, false},
		{"more than the cache remembers", func(l1 *cache.L1) {
			for i := range 2000 {
				l1.Invalidate(resolver.SessionTag(fmt.Sprint("other-", i)))
			}
		}, http.StatusServiceUnavailable, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l1 := cache.NewL1(cache.L1Options{})
			store := newRevocable()
			lookup := store.LookupFn
			store.LookupFn = func(ctx context.Context, id string) (resolver.Identity, resolver.Reason, error) {
				identity, reason, err := lookup(ctx, id)
				tc.invalidate(l1)
				return identity, reason, err
			}
			h := newSessionHandler(store, l1, nil)
			if code := serveCode(h, cookieRequest(testSession)); code != tc.want {
				t.Fatalf("status %d, want %d", code, tc.want)
			}
			calls := store.calls.Load()
			if n, _ := l1.Len(); (n == 1) != tc.wantCached {
				t.Errorf("L1 holds %d entries, want cached=%v", n, tc.wantCached)
			}
			if !tc.wantCached {
				return
			}
			if code := serveCode(h, cookieRequest(testSession)); code != http.StatusOK || store.calls.Load() != calls {
				t.Errorf("second request: status %d after %d lookups, want 200 from L1", code, store.calls.Load()-calls)
			}
		})
	}
}

// TestL1HitRacingRevocation: requests served from L1 while the session is
// revoked. A request that starts after the invalidation returned is never
// granted; one racing it may be.
func TestL1HitRacingRevocation(t *testing.T) {
	store := newRevocable()
	l1 := cache.NewL1(cache.L1Options{})
	h := newSessionHandler(store, l1, nil)
	if code := serveCode(h, cookieRequest(testSession)); code != http.StatusOK {
		t.Fatalf("warm-up: status %d", code)
	}
	var returned atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		store.revoked.Store(true)
		l1.Invalidate(resolver.SessionTag("h1"))
		returned.Store(true)
	})
	for after := 0; after < 100; {
		startedAfter := returned.Load()
		code := serveCode(h, cookieRequest(testSession))
		if startedAfter {
			after++
			if code != http.StatusUnauthorized {
				t.Fatalf("a request started after the invalidation returned: status %d, want 401", code)
			}
		}
	}
	wg.Wait()
}

// hookedShared runs hook once, after the first Get of the wrapped L2.
type hookedShared struct {
	resolver.SharedCache
	once sync.Once
	hook func()
}

func (s *hookedShared) Get(ctx context.Context, cred resolver.Credential) (resolver.Identity, time.Time, uint64, error) {
	id, until, gen, err := s.SharedCache.Get(ctx, cred)
	s.once.Do(s.hook)
	return id, until, gen, err
}

// TestL2HitRacingRevocation (real Redis): replica B reads a valid entry
// from L2, then the session is revoked on B (generation bump, L1
// invalidation) and the revocation returns, then B's lookup continues with
// the entry it read. B must not grant it.
func TestL2HitRacingRevocation(t *testing.T) {
	_, client := newRedis(t)
	ctx := context.Background()
	shared := cache.NewShared(client, cache.SharedOptions{Prefix: testPrefix})
	store := newRevocable()

	a := newSessionHandler(store, cache.NewL1(cache.L1Options{}), func(o *resolver.Options) { o.Shared = shared })
	if code := serveCode(a, cookieRequest(testSession)); code != http.StatusOK {
		t.Fatalf("replica A: status %d", code)
	}
	if _, until, _, err := shared.Get(ctx, resolver.Credential{Kind: resolver.CredentialSession, Value: testSession}); err != nil || until.IsZero() {
		t.Fatalf("L2 not filled by replica A: %v, %v", until, err)
	}

	l1 := cache.NewL1(cache.L1Options{})
	bus := cache.NewBus(client, testChannel, l1, shared, nil, nil)
	hooked := &hookedShared{SharedCache: shared, hook: func() {
		store.revoked.Store(true)
		if err := bus.Invalidate(ctx, resolver.SessionTag("h1")); err != nil {
			t.Error(err)
		}
	}}
	b := newSessionHandler(store, l1, func(o *resolver.Options) { o.Shared = hooked })
	if code := serveCode(b, cookieRequest(testSession)); code != http.StatusUnauthorized {
		t.Errorf("replica B after the revocation returned: status %d, want 401", code)
	}
}

// TestMalformedCredentialsCostNoIO: a flood of distinct garbage tokens and
// session cookies is refused before the L2, the verifier or the store is
// asked, and leaves nothing in L1.
func TestMalformedCredentialsCostNoIO(t *testing.T) {
	tokens := &fakeTokens{VerifyFn: func(context.Context, string) (resolver.Identity, resolver.Reason, error) {
		return resolver.Identity{}, resolver.ReasonSignature, nil
	}}
	sessions := &fakeSessions{LookupFn: func(context.Context, string) (resolver.Identity, resolver.Reason, error) {
		return resolver.Identity{}, resolver.ReasonSessionNotFound, nil
	}}
	shared := &fakeShared{}
	l1 := cache.NewL1(cache.L1Options{})
	h := resolver.New(resolver.Options{
		Tokens: tokens, Sessions: sessions, Cache: l1, Shared: shared, SessionCookie: "session", CacheTTL: time.Minute,
		ValidSessionID: func(s string) bool { return len(s) == len(testSession) },
	})
	forms := []func(i int) (*http.Request, resolver.Reason){
		func(i int) (*http.Request, resolver.Reason) {
			return bearerRequest(fmt.Sprint("garbage", i)), resolver.ReasonMalformedToken
		},
		func(i int) (*http.Request, resolver.Reason) {
			return bearerRequest(fmt.Sprint("a.b.c", i)), resolver.ReasonMalformedToken
		},
		func(i int) (*http.Request, resolver.Reason) { // header segment not JSON
			return bearerRequest(fmt.Sprint("bm90anNvbg.eyJ9.c2ln", i)), resolver.ReasonMalformedToken
		},
		func(i int) (*http.Request, resolver.Reason) { // two segments
			return bearerRequest(fmt.Sprint("eyJhbGciOiJFUzI1NiJ9.eyJ9", i)), resolver.ReasonMalformedToken
		},
		func(i int) (*http.Request, resolver.Reason) { // empty signature (alg none)
			return bearerRequest(fmt.Sprint("eyJhbGciOiJub25lIn0.eyJ9", i, ".")), resolver.ReasonMalformedToken
		},
		func(i int) (*http.Request, resolver.Reason) { // four segments
			return bearerRequest(fmt.Sprint(testToken, ".x", i)), resolver.ReasonMalformedToken
		},
		func(i int) (*http.Request, resolver.Reason) {
			return cookieRequest(fmt.Sprint("short", i)), resolver.ReasonMalformedSession
		},
	}
	for i := range 1000 {
		req, want := forms[i%len(forms)](i)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusUnauthorized || w.Header().Get("X-Auth-Error") != string(want) {
			t.Fatalf("request %d: status %d, error %q; want 401 %s", i, w.Code, w.Header().Get("X-Auth-Error"), want)
		}
	}
	if g, v, l := shared.gets.Load(), tokens.calls.Load(), sessions.calls.Load(); g != 0 || v != 0 || l != 0 {
		t.Errorf("%d L2 gets, %d verifications, %d store lookups; want none", g, v, l)
	}
	if n, _ := l1.Len(); n != 0 {
		t.Errorf("L1 holds %d entries after a flood of garbage, want 0", n)
	}
	// A well-formed token still reaches the L2 and the verifier.
	serveCode(h, bearerRequest(testToken))
	if g, v := shared.gets.Load(), tokens.calls.Load(); g != 1 || v != 1 {
		t.Errorf("well-formed token: %d L2 gets, %d verifications; want 1, 1", g, v)
	}
}

// TestFlightTimeout: a verifier that hangs holds its flight, and every
// request waiting on it, for the flight timeout and no longer; the next
// request starts a new flight.
func TestFlightTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout = 2 * time.Second
		tokens := &fakeTokens{VerifyFn: func(ctx context.Context, _ string) (resolver.Identity, resolver.Reason, error) {
			<-ctx.Done()
			return resolver.Identity{}, resolver.ReasonNone, ctx.Err()
		}}
		h := resolver.New(resolver.Options{Tokens: tokens, Cache: cache.NewL1(cache.L1Options{}), CacheTTL: time.Minute, FlightTimeout: timeout})
		start := time.Now()
		var wg sync.WaitGroup
		var done [2]time.Duration
		var codes [2]int
		for i := range 2 {
			wg.Go(func() {
				// The proxy gives up at once: the flight must not be
				// cancelled by it, nor outlive its own timeout.
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				codes[i] = serveCode(h, bearerRequest(testToken).WithContext(ctx))
				done[i] = time.Since(start)
			})
			time.Sleep(time.Second) // fake time: the second request joins a second later
		}
		wg.Wait()
		for i := range 2 {
			if codes[i] != http.StatusServiceUnavailable || done[i] != timeout {
				t.Errorf("request %d: status %d after %v; want 503 after %v", i, codes[i], done[i], timeout)
			}
		}
		if n := tokens.calls.Load(); n != 1 {
			t.Errorf("%d verifications, want 1 (the second request joined the flight)", n)
		}
		serveCode(h, bearerRequest(testToken))
		if n := tokens.calls.Load(); n != 2 {
			t.Errorf("%d verifications after the flight timed out, want 2 (a new flight)", n)
		}
	})
}

// TestFlightOutlivesItsRequest: the request that started a flight going
// away does not fail the requests waiting on it.
func TestFlightOutlivesItsRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newRevocable()
		store.hold = make(chan struct{})
		h := newSessionHandler(store, cache.NewL1(cache.L1Options{}), nil)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var codes [2]int
		wg.Go(func() { codes[0] = serveCode(h, cookieRequest(testSession).WithContext(ctx)) })
		synctest.Wait()
		wg.Go(func() { codes[1] = serveCode(h, cookieRequest(testSession)) })
		synctest.Wait()
		cancel()
		synctest.Wait()
		close(store.hold)
		wg.Wait()
		if codes != [2]int{200, 200} || store.calls.Load() != 1 {
			t.Errorf("statuses %v after %d lookups; want [200 200] after 1", codes, store.calls.Load())
		}
	})
}
