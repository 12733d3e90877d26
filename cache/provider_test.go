package cache_test

// Opaque tokens (introspection) and fresh profiles through the resolver
// with a real L1: collapsing, denial TTL, routes that do and do not ask
// for a profile, and revocations racing each new grant path.

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/authresolver/authresolver/cache"
	"github.com/authresolver/authresolver/internal/testclock"
	"github.com/authresolver/authresolver/resolver"
)

const opaqueToken = "mF_9B5f-41JqM.opaque-token" // not three segments

type fakeIntrospector struct {
	calls        atomic.Int64
	IntrospectFn func(ctx context.Context, token string) (resolver.Identity, resolver.Reason, error)
}

func (f *fakeIntrospector) Introspect(ctx context.Context, token string) (resolver.Identity, resolver.Reason, error) {
	f.calls.Add(1)
	return f.IntrospectFn(ctx, token)
}

type fakeProfiles struct {
	calls     atomic.Int64
	always    string // issuer whose profile is always fetched
	ProfileFn func(ctx context.Context, id *resolver.Identity, token string) (resolver.Profile, resolver.Reason, error)
}

func (f *fakeProfiles) Profile(ctx context.Context, id *resolver.Identity, token string) (resolver.Profile, resolver.Reason, error) {
	f.calls.Add(1)
	return f.ProfileFn(ctx, id, token)
}

func (f *fakeProfiles) Always(issuer string) bool { return issuer == f.always }

// revStore is a revocation store: Revoke records a user cut-off and
// invalidates the L1 as the admin API does, and returns only then.
type revStore struct {
	fakeRevocations
	l1      *cache.L1
	revoked atomic.Bool
}

func newRevStore(l1 *cache.L1) *revStore {
	r := &revStore{l1: l1}
	r.RevokedFn = func(context.Context, resolver.Identity) (bool, error) { return r.revoked.Load(), nil }
	return r
}

func (r *revStore) Revoke(user string) {
	r.revoked.Store(true)
	r.l1.Invalidate(resolver.UserTokensTag(user))
}

func opaqueIdentity() resolver.Identity {
	return resolver.Identity{Credential: resolver.CredentialOpaque, UserID: "alice", TokenID: "op-1",
		IssuedAt: time.Now().Add(-time.Minute), ExpiresAt: time.Now().Add(time.Hour), Roles: []string{"reader"}}
}

func serve(h http.Handler, target, tok string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestOpaqueToken(t *testing.T) {
	in := &fakeIntrospector{IntrospectFn: func(context.Context, string) (resolver.Identity, resolver.Reason, error) {
		return opaqueIdentity(), resolver.ReasonNone, nil
	}}
	tokens := &fakeTokens{VerifyFn: func(context.Context, string) (resolver.Identity, resolver.Reason, error) {
		return resolver.Identity{}, resolver.ReasonSignature, nil
	}}
	h := resolver.New(resolver.Options{Tokens: tokens, Introspector: in, Revocations: &fakeRevocations{}, Cache: cache.NewL1(cache.L1Options{}), CacheTTL: 5 * time.Second})

	w := serve(h, "/resolve?role=reader", opaqueToken)
	if w.Code != 200 || w.Header().Get("X-Auth-Credential") != "opaque" || w.Header().Get("X-Auth-User-Id") != "alice" {
		t.Errorf("opaque token: status %d, headers %v", w.Code, w.Header())
	}
	// RFC 6750 allows '~', '+', '/' and '=' padding in a token; opaque
	// tokens of some providers use them.
	if w := serve(h, "/resolve", "ab~c+d/ef=="); w.Code != 200 || in.calls.Load() != 2 {
		t.Errorf("b64token: status %d, %d introspections; want 200, 2", w.Code, in.calls.Load())
	}
	// A JWT still goes to the verifier, never to the introspection endpoint.
	if w := serve(h, "/resolve", testToken); w.Code != 401 || tokens.calls.Load() != 1 || in.calls.Load() != 2 {
		t.Errorf("JWT: status %d, %d verifications, %d introspections; want 401, 1, 2", w.Code, tokens.calls.Load(), in.calls.Load())
	}
	// Without an introspector, an opaque token is refused as before.
	plain := resolver.New(resolver.Options{Tokens: tokens, Revocations: &fakeRevocations{}})
	if w := serve(plain, "/resolve", opaqueToken); w.Code != 401 || in.calls.Load() != 2 {
		t.Errorf("no introspector: status %d, %d introspections; want 401, 2", w.Code, in.calls.Load())
	}
}

func TestOpaqueTokenIntrospectionFails(t *testing.T) {
	for name, fn := range map[string]func() (resolver.Identity, resolver.Reason, error){
		"inactive": func() (resolver.Identity, resolver.Reason, error) {
			return resolver.Identity{}, resolver.ReasonTokenInactive, nil
		},
		"error": func() (resolver.Identity, resolver.Reason, error) {
			return resolver.Identity{}, "", errors.New("introspect: 500")
		},
	} {
		t.Run(name, func(t *testing.T) {
			in := &fakeIntrospector{IntrospectFn: func(context.Context, string) (resolver.Identity, resolver.Reason, error) { return fn() }}
			h := resolver.New(resolver.Options{Introspector: in, Revocations: &fakeRevocations{}, Cache: cache.NewL1(cache.L1Options{}), CacheTTL: 5 * time.Second})
			w := serve(h, "/resolve", opaqueToken)
			want, code := http.StatusUnauthorized, "token_inactive"
			if name == "error" {
				want, code = http.StatusServiceUnavailable, "unavailable"
			}
			if w.Code != want || w.Header().Get("X-Auth-Error") != code {
				t.Errorf("status %d, error %q; want %d, %q", w.Code, w.Header().Get("X-Auth-Error"), want, code)
			}
		})
	}
}

// TestOpaqueBurstIsCollapsed: 1,000 concurrent requests with one opaque
// token make one introspection call.
func TestOpaqueBurstIsCollapsed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		in := &fakeIntrospector{IntrospectFn: func(_ context.Context, _ string) (resolver.Identity, resolver.Reason, error) {
			<-release
			return opaqueIdentity(), resolver.ReasonNone, nil
		}}
		h := resolver.New(resolver.Options{Introspector: in, Revocations: &fakeRevocations{}, Cache: cache.NewL1(cache.L1Options{}), CacheTTL: 5 * time.Second})
		const burst = 1000
		codes := make([]int, burst)
		var wg sync.WaitGroup
		for i := range burst {
			wg.Go(func() { codes[i] = serve(h, "/resolve", opaqueToken).Code })
		}
		synctest.Wait()
		close(release)
		wg.Wait()
		for i, c := range codes {
			if c != 200 {
				t.Fatalf("request %d: status %d", i, c)
			}
		}
		if n := in.calls.Load(); n != 1 {
			t.Errorf("%d introspection calls, want 1", n)
		}
	})
}

// TestInactiveCachedNoLongerThanDenialTTL: an inactive answer absorbs a
// flood of the same token, but only for the denial TTL.
func TestInactiveCachedNoLongerThanDenialTTL(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	clk := testclock.New(t0)
	in := &fakeIntrospector{IntrospectFn: func(context.Context, string) (resolver.Identity, resolver.Reason, error) {
		return resolver.Identity{}, resolver.ReasonTokenInactive, nil
	}}
	h := resolver.New(resolver.Options{Introspector: in, Cache: cache.NewL1(cache.L1Options{}), CacheTTL: 30 * time.Second, DenialTTL: time.Second, Now: clk.Now})
	for _, step := range []struct {
		at    time.Duration
		calls int64
	}{{0, 1}, {time.Second - time.Millisecond, 1}, {time.Second, 2}, {1500 * time.Millisecond, 2}, {2 * time.Second, 3}} {
		clk.Set(t0.Add(step.at))
		if w := serve(h, "/resolve", opaqueToken); w.Code != 401 || in.calls.Load() != step.calls {
			t.Errorf("at +%v: status %d after %d calls; want 401 after %d", step.at, w.Code, in.calls.Load(), step.calls)
		}
	}
}

// TestOpaqueRevocation: a revocation applies to a cached introspection
// result, and to one in flight when the revocation is made.
func TestOpaqueRevocation(t *testing.T) {
	t.Run("cached", func(t *testing.T) {
		l1 := cache.NewL1(cache.L1Options{})
		rev := newRevStore(l1)
		in := &fakeIntrospector{IntrospectFn: func(context.Context, string) (resolver.Identity, resolver.Reason, error) {
			return opaqueIdentity(), resolver.ReasonNone, nil
		}}
		h := resolver.New(resolver.Options{Introspector: in, Revocations: rev, Cache: l1, CacheTTL: 30 * time.Second})
		if w := serve(h, "/resolve", opaqueToken); w.Code != 200 {
			t.Fatalf("before: status %d", w.Code)
		}
		rev.Revoke("alice")
		if w := serve(h, "/resolve", opaqueToken); w.Code != 401 || w.Header().Get("X-Auth-Error") != "token_revoked" {
			t.Errorf("after revocation: status %d, error %q; want 401 token_revoked", w.Code, w.Header().Get("X-Auth-Error"))
		}
	})
	t.Run("in flight", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l1 := cache.NewL1(cache.L1Options{})
			rev := newRevStore(l1)
			entered, release := make(chan struct{}), make(chan struct{})
			var once sync.Once
			in := &fakeIntrospector{IntrospectFn: func(context.Context, string) (resolver.Identity, resolver.Reason, error) {
				once.Do(func() { close(entered); <-release })
				return opaqueIdentity(), resolver.ReasonNone, nil
			}}
			h := resolver.New(resolver.Options{Introspector: in, Revocations: rev, Cache: l1, CacheTTL: 30 * time.Second})
			first := make(chan int)
			go func() { first <- serve(h, "/resolve", opaqueToken).Code }()
			<-entered
			rev.Revoke("alice") // returns while the introspection is in flight
			close(release)
			if c := <-first; c == 200 {
				t.Error("the request in flight granted after the revocation returned")
			}
			if w := serve(h, "/resolve", opaqueToken); w.Code == 200 {
				t.Error("a later request granted after the revocation")
			}
		})
	})
}

// profileHandler has a token verifier for an unverified alice whose
// profile says she is verified, with an email for the claim header.
func profileHandler(t *testing.T, l1 *cache.L1, rev resolver.RevocationChecker, profiles *fakeProfiles) http.Handler {
	t.Helper()
	tokens := &fakeTokens{VerifyFn: func(context.Context, string) (resolver.Identity, resolver.Reason, error) {
		return resolver.Identity{Credential: resolver.CredentialJWT, UserID: "alice", Issuer: "https://idp.test", TokenID: "j1",
			IssuedAt: time.Now().Add(-time.Minute), ExpiresAt: time.Now().Add(time.Hour)}, resolver.ReasonNone, nil
	}}
	if profiles.ProfileFn == nil {
		profiles.ProfileFn = func(context.Context, *resolver.Identity, string) (resolver.Profile, resolver.Reason, error) {
			return resolver.Profile{UserID: "alice", Verified: true, HasVerified: true, Claims: map[string]string{"primary_email": "alice@example.com"}}, resolver.ReasonNone, nil
		}
	}
	o := resolver.Options{Tokens: tokens, Revocations: rev, Profiles: profiles, CacheTTL: 30 * time.Second,
		ClaimHeaders: []resolver.ClaimHeader{{Claim: "primary_email", Header: "Email"}}}
	if l1 != nil {
		o.Cache = l1
	}
	return resolver.New(o)
}

// TestProfileRoutesApart: the same token on a route with profile=true and
// on one without, in both orders: the second route never sees the first
// one's profile decision.
func TestProfileRoutesApart(t *testing.T) {
	withProfile, without := "/resolve?profile=true&verified=true", "/resolve?verified=true"
	for _, order := range [][]string{{withProfile, without}, {without, withProfile}} {
		t.Run(order[0], func(t *testing.T) {
			profiles := &fakeProfiles{}
			h := profileHandler(t, cache.NewL1(cache.L1Options{}), &fakeRevocations{}, profiles)
			for range 2 { // the second round is from the cache
				for _, route := range order {
					w := serve(h, route, testToken)
					if route == withProfile {
						if w.Code != 200 || w.Header().Get("X-Auth-User-Verified") != "true" || w.Header().Get("X-Auth-Email") != "alice@example.com" {
							t.Errorf("%s: status %d, verified %q, email %q; want 200 with the profile", route, w.Code, w.Header().Get("X-Auth-User-Verified"), w.Header().Get("X-Auth-Email"))
						}
						continue
					}
					if w.Code != 403 || w.Header().Get("X-Auth-Error") != "insufficient_verification" || w.Header().Get("X-Auth-Email") != "" {
						t.Errorf("%s: status %d, error %q, email %q; want 403 from the token alone", route, w.Code, w.Header().Get("X-Auth-Error"), w.Header().Get("X-Auth-Email"))
					}
				}
			}
			if n := profiles.calls.Load(); n != 1 {
				t.Errorf("%d profile fetches, want 1 (then cached)", n)
			}
		})
	}
}

func TestProfileAlways(t *testing.T) {
	profiles := &fakeProfiles{always: "https://idp.test"}
	h := profileHandler(t, cache.NewL1(cache.L1Options{}), &fakeRevocations{}, profiles)
	if w := serve(h, "/resolve?verified=true", testToken); w.Code != 200 || w.Header().Get("X-Auth-Email") != "alice@example.com" {
		t.Errorf("always: status %d, email %q; want the profile on every route", w.Code, w.Header().Get("X-Auth-Email"))
	}
}

func TestProfileFailures(t *testing.T) {
	tests := []struct {
		name     string
		fn       func() (resolver.Profile, resolver.Reason, error)
		wantCode int
		wantErr  string
	}{
		{"rejected", func() (resolver.Profile, resolver.Reason, error) {
			return resolver.Profile{}, resolver.ReasonTokenRejected, nil
		}, 401, "token_rejected"},
		{"provider down", func() (resolver.Profile, resolver.Reason, error) {
			return resolver.Profile{}, "", errors.New("profile: stack answered 502")
		}, 503, "unavailable"},
		{"no source for the issuer", func() (resolver.Profile, resolver.Reason, error) {
			return resolver.Profile{}, "", resolver.ErrNoProfileSource
		}, 403, "invalid_requirement"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			profiles := &fakeProfiles{ProfileFn: func(context.Context, *resolver.Identity, string) (resolver.Profile, resolver.Reason, error) {
				return tt.fn()
			}}
			h := profileHandler(t, cache.NewL1(cache.L1Options{}), &fakeRevocations{}, profiles)
			for range 2 {
				w := serve(h, "/resolve?profile=true", testToken)
				if w.Code != tt.wantCode || w.Header().Get("X-Auth-Error") != tt.wantErr {
					t.Errorf("profile route: status %d, error %q; want %d %q", w.Code, w.Header().Get("X-Auth-Error"), tt.wantCode, tt.wantErr)
				}
				// Routes without profile=true still answer from the token.
				if w := serve(h, "/resolve", testToken); w.Code != 200 {
					t.Errorf("plain route: status %d, want 200", w.Code)
				}
			}
		})
	}
}

// TestProfileRevocation: a revocation applies to a cached profile verdict,
// to a profile fetch in flight when it is made, and without an L1.
func TestProfileRevocation(t *testing.T) {
	t.Run("cached", func(t *testing.T) {
		l1 := cache.NewL1(cache.L1Options{})
		rev := newRevStore(l1)
		h := profileHandler(t, l1, rev, &fakeProfiles{})
		if w := serve(h, "/resolve?profile=true", testToken); w.Code != 200 {
			t.Fatalf("before: status %d", w.Code)
		}
		rev.Revoke("alice")
		if w := serve(h, "/resolve?profile=true", testToken); w.Code != 401 || w.Header().Get("X-Auth-Error") != "token_revoked" {
			t.Errorf("after: status %d, error %q; want 401 token_revoked", w.Code, w.Header().Get("X-Auth-Error"))
		}
	})
	for _, withL1 := range []bool{true, false} {
		name := "in flight"
		if !withL1 {
			name += " without L1"
		}
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var l1 *cache.L1
				rev := &revStore{}
				rev.RevokedFn = func(context.Context, resolver.Identity) (bool, error) { return rev.revoked.Load(), nil }
				if withL1 {
					l1 = cache.NewL1(cache.L1Options{})
					rev.l1 = l1
				}
				entered, release := make(chan struct{}), make(chan struct{})
				var blocked atomic.Bool
				profiles := &fakeProfiles{ProfileFn: func(context.Context, *resolver.Identity, string) (resolver.Profile, resolver.Reason, error) {
					if blocked.CompareAndSwap(false, true) {
						close(entered)
						<-release
					}
					return resolver.Profile{UserID: "alice"}, resolver.ReasonNone, nil
				}}
				h := profileHandler(t, l1, rev, profiles)
				// Warm the plain verdict, so that the request below finds it
				// before the revocation and only the profile is in flight.
				if w := serve(h, "/resolve", testToken); w.Code != 200 {
					t.Fatalf("warm-up: status %d", w.Code)
				}
				first := make(chan int)
				go func() { first <- serve(h, "/resolve?profile=true", testToken).Code }()
				<-entered
				waiting := []chan int{first}
				if withL1 {
					// A second request joins the fetch in flight (without
					// an L1 nothing is shared: it would fetch on its own).
					second := make(chan int)
					go func() { second <- serve(h, "/resolve?profile=true", testToken).Code }()
					waiting = append(waiting, second)
				}
				synctest.Wait()
				if withL1 {
					rev.Revoke("alice")
				} else {
					rev.revoked.Store(true)
				}
				close(release)
				for i, ch := range waiting {
					if c := <-ch; c == 200 {
						t.Errorf("request %d in flight granted after the revocation returned", i+1)
					}
				}
				for _, route := range []string{"/resolve?profile=true", "/resolve"} {
					if w := serve(h, route, testToken); w.Code == 200 {
						t.Errorf("%s granted after the revocation", route)
					}
				}
			})
		})
	}
}
