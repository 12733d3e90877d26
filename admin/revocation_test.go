package admin_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/authresolver/authresolver/admin"
	"github.com/authresolver/authresolver/internal/testclock"
	"github.com/authresolver/authresolver/resolver"
	"github.com/authresolver/authresolver/session"
)

// invalidations records the tags an API invalidates, failing while told to.
type invalidations struct {
	mu   sync.Mutex
	tags []string
	fail bool
}

func (iv *invalidations) invalidate(_ context.Context, tag string) error {
	iv.mu.Lock()
	defer iv.mu.Unlock()
	iv.tags = append(iv.tags, tag)
	if iv.fail {
		return errors.New("pub/sub down")
	}
	return nil
}

// take returns the tags recorded since the last take.
func (iv *invalidations) take() []string {
	iv.mu.Lock()
	defer iv.mu.Unlock()
	t := iv.tags
	iv.tags = nil
	return t
}

func (iv *invalidations) setFail(fail bool) {
	iv.mu.Lock()
	defer iv.mu.Unlock()
	iv.fail = fail
}

func revoked(t *testing.T, s store, id resolver.Identity) bool {
	t.Helper()
	got, err := s.TokenRevoked(t.Context(), id)
	if err != nil {
		t.Fatalf("TokenRevoked: %v", err)
	}
	return got
}

// TestAdminRevocationLeeway checks that every JWT revocation outlives the
// token's acceptance window, exp + leeway: a token the verifier still
// accepts is still revoked.
func TestAdminRevocationLeeway(t *testing.T) {
	const leeway = 30 * time.Second
	for name, newStore := range stores(t) {
		t.Run(name, func(t *testing.T) {
			c := testclock.New(time.Now().Truncate(time.Second))
			s := newStore(t, session.Options{Now: c.Now})
			srv := server(t, s, admin.Options{Now: c.Now, RevocationTTL: time.Hour, Leeway: leeway})
			start := c.Now()
			for _, tc := range []struct {
				name string
				body string
				id   resolver.Identity
				// The token is still accepted until exp + leeway.
				exp time.Time
			}{
				{"jti with expires_at", fmt.Sprintf(`{"jti":"j1","expires_at":%q}`, start.Add(time.Minute).Format(time.RFC3339)),
					resolver.Identity{TokenID: "j1", UserID: "u1", IssuedAt: start.Add(-time.Minute)}, start.Add(time.Minute)},
				{"jti that expired within the leeway", fmt.Sprintf(`{"jti":"j2","expires_at":%q}`, start.Add(-10*time.Second).Format(time.RFC3339)),
					resolver.Identity{TokenID: "j2", UserID: "u2", IssuedAt: start.Add(-time.Minute)}, start.Add(-10 * time.Second)},
				{"jti with the default retention", `{"jti":"j3"}`,
					resolver.Identity{TokenID: "j3", UserID: "u3", IssuedAt: start.Add(-time.Minute)}, start.Add(time.Hour)},
				{"user cut-off", `{"user_id":"u4"}`,
					resolver.Identity{TokenID: "j4", UserID: "u4", IssuedAt: start.Add(-time.Second)}, start.Add(time.Hour - time.Second)},
			} {
				t.Run(tc.name, func(t *testing.T) {
					c.Set(start)
					if got := call(t, srv, "POST", "/v1/revocations", bearer, tc.body); got.Status != 204 {
						t.Fatalf("revoke = %d %v", got.Status, got.Body)
					}
					for _, at := range []time.Time{start, tc.exp, tc.exp.Add(leeway - time.Second), tc.exp.Add(leeway - time.Nanosecond)} {
						c.Set(at)
						if !revoked(t, s, tc.id) {
							t.Errorf("at exp%+v: not revoked, but the verifier accepts the token until exp+%v", at.Sub(tc.exp), leeway)
						}
					}
				})
			}
		})
	}
}

// TestAdminCookieLifetime checks that the cookie lives until the session's
// absolute expiry, not its first idle deadline, and what the response's
// times mean.
func TestAdminCookieLifetime(t *testing.T) {
	c := testclock.New(time.Now().Truncate(time.Second))
	s := session.NewMemoryStore(session.Options{Now: c.Now, IdleTimeout: time.Hour, Lifetime: 24 * time.Hour})
	srv := server(t, s, admin.Options{Now: c.Now, Lifetime: 24 * time.Hour})
	now := c.Now()
	for _, tc := range []struct {
		body                 string
		wantExpires, wantAbs time.Time
	}{
		{`{"user_id":"u"}`, now.Add(time.Hour), now.Add(24 * time.Hour)},
		{`{"user_id":"u","ttl":"2h"}`, now.Add(time.Hour), now.Add(2 * time.Hour)},
		{`{"user_id":"u","ttl":"30m"}`, now.Add(30 * time.Minute), now.Add(30 * time.Minute)},
	} {
		got := call(t, srv, "POST", "/v1/sessions", bearer, tc.body)
		if got.Status != 201 {
			t.Fatalf("create: %d %v", got.Status, got.Body)
		}
		cookie, err := http.ParseSetCookie(got.Body["cookie"].(string))
		if err != nil {
			t.Fatal(err)
		}
		type times struct {
			MaxAge                      int
			CookieExpires, Expires, Abs string
		}
		want := times{int(tc.wantAbs.Sub(now) / time.Second), tc.wantAbs.UTC().Format(time.RFC3339), tc.wantExpires.UTC().Format(time.RFC3339), tc.wantAbs.UTC().Format(time.RFC3339)}
		gotTimes := times{cookie.MaxAge, cookie.Expires.UTC().Format(time.RFC3339), got.Body["expires_at"].(string), got.Body["absolute_expires_at"].(string)}
		if diff := cmp.Diff(want, gotTimes); diff != "" {
			t.Errorf("%s: cookie and response times (-want +got):\n%s", tc.body, diff)
		}
	}
}

// TestAdminRevokeIdempotent checks that a revocation answered with
// 503 invalidation_failed can be retried: the retry answers 204 and
// invalidates again, also when the store has nothing left to revoke.
func TestAdminRevokeIdempotent(t *testing.T) {
	for name, newStore := range stores(t) {
		t.Run(name, func(t *testing.T) {
			s := newStore(t, session.Options{})
			iv := &invalidations{}
			srv := server(t, s, admin.Options{Invalidate: iv.invalidate})
			created := call(t, srv, "POST", "/v1/sessions", bearer, `{"user_id":"alice"}`)
			id, handle := created.Body["session_id"].(string), created.Body["handle"].(string)
			unknown := session.NewID()
			iv.take()
			for _, tc := range []struct {
				name, method, path, body string
				tag                      string
			}{
				{"one session", "DELETE", "/v1/sessions/" + id, "", resolver.SessionTag(handle)},
				{"a session never created", "DELETE", "/v1/sessions/" + string(unknown), "", resolver.SessionTag(unknown.Handle())},
				{"a user's sessions", "DELETE", "/v1/users/alice/sessions", "", resolver.UserSessionsTag("alice")},
				{"a jti", "POST", "/v1/revocations", `{"jti":"j"}`, resolver.TokenTag("j")},
				{"a user's tokens", "POST", "/v1/revocations", `{"user_id":"alice"}`, resolver.UserTokensTag("alice")},
			} {
				t.Run(tc.name, func(t *testing.T) {
					iv.setFail(true)
					if got := call(t, srv, tc.method, tc.path, bearer, tc.body); got.Status != 503 || got.Error != "invalidation_failed" {
						t.Errorf("with the broadcast down = %d %q, want 503 invalidation_failed", got.Status, got.Error)
					}
					iv.setFail(false)
					for i := range 2 {
						if got := call(t, srv, tc.method, tc.path, bearer, tc.body); got.Status != 204 {
							t.Errorf("retry %d = %d %v, want 204", i+1, got.Status, got.Body)
						}
					}
					if diff := cmp.Diff([]string{tc.tag, tc.tag, tc.tag}, iv.take()); diff != "" {
						t.Errorf("invalidated tags (-want +got):\n%s", diff)
					}
				})
			}
			if _, reason, _ := s.Lookup(t.Context(), id); reason != resolver.ReasonSessionNotFound {
				t.Errorf("Lookup of the revoked session = %q, want %q", reason, resolver.ReasonSessionNotFound)
			}
		})
	}
}

// TestAdminEvictedSessionsInvalidated checks that sessions ended by the
// per-user cap are dropped from the caches.
func TestAdminEvictedSessionsInvalidated(t *testing.T) {
	for name, newStore := range stores(t) {
		t.Run(name, func(t *testing.T) {
			s := newStore(t, session.Options{MaxSessionsPerUser: 2})
			iv := &invalidations{}
			srv := server(t, s, admin.Options{Invalidate: iv.invalidate})
			var handles, ids []string
			for i := range 3 {
				got := call(t, srv, "POST", "/v1/sessions", bearer, fmt.Sprintf(`{"user_id":"alice","ttl":"%dh"}`, i+1))
				if got.Status != 201 {
					t.Fatalf("create %d: %d %v", i, got.Status, got.Body)
				}
				handles = append(handles, got.Body["handle"].(string))
				ids = append(ids, got.Body["session_id"].(string))
			}
			if diff := cmp.Diff([]string{resolver.SessionTag(handles[0])}, iv.take()); diff != "" {
				t.Errorf("invalidated tags (-want +got):\n%s", diff)
			}
			if _, reason, _ := s.Lookup(t.Context(), ids[0]); reason != resolver.ReasonSessionNotFound {
				t.Errorf("Lookup of the evicted session = %q, want %q", reason, resolver.ReasonSessionNotFound)
			}
		})
	}
}

// TestAdminIssuerScopedRevocations checks that a revocation naming an
// issuer revokes that issuer's tokens only, and one without revokes every
// issuer's.
func TestAdminIssuerScopedRevocations(t *testing.T) {
	const a, b = "https://a.example", "https://b.example"
	for name, newStore := range stores(t) {
		t.Run(name, func(t *testing.T) {
			s := newStore(t, session.Options{})
			iv := &invalidations{}
			srv := server(t, s, admin.Options{Invalidate: iv.invalidate})
			iat := time.Now().Add(-time.Minute)
			for _, tc := range []struct {
				name    string
				body    string
				tag     string
				revoked []resolver.Identity
				kept    []resolver.Identity
			}{
				{
					"user of one issuer", `{"user_id":"123","issuer":"` + a + `"}`, resolver.IssuerUserTokensTag(a, "123"),
					[]resolver.Identity{{Issuer: a, UserID: "123", TokenID: "x", IssuedAt: iat}},
					[]resolver.Identity{{Issuer: b, UserID: "123", TokenID: "x", IssuedAt: iat}},
				},
				{
					"user of every issuer", `{"user_id":"456"}`, resolver.UserTokensTag("456"),
					[]resolver.Identity{{Issuer: a, UserID: "456", IssuedAt: iat}, {Issuer: b, UserID: "456", IssuedAt: iat}},
					nil,
				},
				{
					"jti of one issuer", `{"jti":"j1","issuer":"` + a + `"}`, resolver.IssuerTokenTag(a, "j1"),
					[]resolver.Identity{{Issuer: a, UserID: "u", TokenID: "j1", IssuedAt: iat}},
					[]resolver.Identity{{Issuer: b, UserID: "u", TokenID: "j1", IssuedAt: iat}},
				},
				{
					"jti of every issuer", `{"jti":"j2"}`, resolver.TokenTag("j2"),
					[]resolver.Identity{{Issuer: a, UserID: "u", TokenID: "j2", IssuedAt: iat}, {Issuer: b, UserID: "u", TokenID: "j2", IssuedAt: iat}},
					nil,
				},
			} {
				t.Run(tc.name, func(t *testing.T) {
					if got := call(t, srv, "POST", "/v1/revocations", bearer, tc.body); got.Status != 204 {
						t.Fatalf("revoke = %d %v", got.Status, got.Body)
					}
					if diff := cmp.Diff([]string{tc.tag}, iv.take()); diff != "" {
						t.Errorf("invalidated tags (-want +got):\n%s", diff)
					}
					for _, id := range tc.revoked {
						if !revoked(t, s, id) {
							t.Errorf("%s/%s not revoked", id.Issuer, id.UserID)
						}
					}
					for _, id := range tc.kept {
						if revoked(t, s, id) {
							t.Errorf("%s/%s revoked by another issuer's revocation", id.Issuer, id.UserID)
						}
					}
					// What a verdict for each carries: the scoped tag drops
					// only the revoked ones.
					for _, id := range append(tc.revoked, tc.kept...) {
						id.Credential = resolver.CredentialJWT
						v := resolver.Verdict{Identity: id}
						want := id.Issuer == a || !strings.Contains(tc.name, "one issuer")
						got := false
						for _, tag := range v.Tags() {
							got = got || tag == tc.tag
						}
						if got != want {
							t.Errorf("verdict of %s/%s carries tag %q: %v, want %v", id.Issuer, id.UserID, tc.tag, got, want)
						}
					}
				})
			}
		})
	}
}

// TestAdminLongestUserID checks that every user the resolver accepts (a
// sub of up to 1024 bytes) can have sessions and be revoked.
func TestAdminLongestUserID(t *testing.T) {
	s := session.NewMemoryStore(session.Options{})
	srv := server(t, s, admin.Options{})
	user := strings.Repeat("u", session.MaxUserIDBytes)
	if got := call(t, srv, "POST", "/v1/sessions", bearer, `{"user_id":"`+user+`"}`); got.Status != 201 {
		t.Fatalf("create = %d %v", got.Status, got.Body)
	}
	if got := call(t, srv, "GET", "/v1/users/"+user+"/sessions", bearer, ""); got.Status != 200 || len(got.Body["sessions"].([]any)) != 1 {
		t.Errorf("list = %d %v, want one session", got.Status, got.Body)
	}
	if got := call(t, srv, "DELETE", "/v1/users/"+user+"/sessions", bearer, ""); got.Status != 204 {
		t.Errorf("revoke all = %d %v", got.Status, got.Body)
	}
	if got := call(t, srv, "POST", "/v1/revocations", bearer, `{"user_id":"`+user+`"}`); got.Status != 204 {
		t.Errorf("revoke tokens = %d %v", got.Status, got.Body)
	}
	if !revoked(t, s, resolver.Identity{UserID: user, IssuedAt: time.Now().Add(-time.Minute)}) {
		t.Error("tokens of the user not revoked")
	}
}
