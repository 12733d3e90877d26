package session

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/authresolver/authresolver/internal/testclock"
	"github.com/authresolver/authresolver/resolver"
)

// store is the method set RedisStore and MemoryStore share; the conformance
// suite runs against both.
type store interface {
	resolver.SessionStore
	resolver.RevocationChecker
	Create(ctx context.Context, p Params) (Created, error)
	Get(ctx context.Context, id string) (Session, error)
	List(ctx context.Context, userID string) ([]Session, error)
	Revoke(ctx context.Context, id string) (Revoked, error)
	RevokeUser(ctx context.Context, userID string) (int, error)
	RevokeToken(ctx context.Context, issuer, jti string, until time.Time) error
	RevokeUserTokens(ctx context.Context, issuer, userID string, before time.Time, keep time.Duration) error
	Ping(ctx context.Context) error
	Close() error
}

var (
	_ store = (*RedisStore)(nil)
	_ store = (*MemoryStore)(nil)
)

// newStoreFunc returns a fresh, empty store using o (whose Now is set).
type newStoreFunc func(t *testing.T, o Options) store

func mustCreate(t *testing.T, s store, p Params) Created {
	t.Helper()
	c, err := s.Create(t.Context(), p)
	if err != nil {
		t.Fatalf("Create(%q): %v", p.UserID, err)
	}
	return c
}

// lookup returns the reason of looking id up, failing the test on an error.
func lookup(t *testing.T, s store, id ID) (resolver.Identity, resolver.Reason) {
	t.Helper()
	ident, reason, err := s.Lookup(t.Context(), string(id))
	if err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	return ident, reason
}

func wantReason(t *testing.T, s store, id ID, want resolver.Reason) {
	t.Helper()
	if _, got := lookup(t, s, id); got != want {
		t.Errorf("Lookup reason = %q, want %q", got, want)
	}
}

func handles(ss []Session) []string {
	var h []string
	for _, s := range ss {
		h = append(h, s.Handle)
	}
	return h
}

// testConformance is the behaviour every store must have.
func testConformance(t *testing.T, newStore newStoreFunc) {
	setup := func(t *testing.T, o Options) (store, *testclock.Clock) {
		t.Helper()
		c := newClock()
		o.Now = c.Now
		return newStore(t, o), c
	}

	t.Run("CreateLookupGet", func(t *testing.T) {
		s, c := setup(t, Options{IdleTimeout: time.Hour, Lifetime: 24 * time.Hour})
		authAt := c.Now().Add(-5 * time.Minute)
		created := mustCreate(t, s, Params{
			UserID: "alice", Anonymous: false, Verified: true,
			Roles: []string{"admin", "Site Editor"}, AMR: []string{"pwd", "otp"},
			Attributes:      map[string]string{"email": "alice@example.com", "name": "Alice, \"A\" 👩"},
			AuthenticatedAt: authAt,
		})
		if got, want := created.Handle, created.ID.Handle(); got != want {
			t.Errorf("Created.Handle = %q, want ID.Handle() %q", got, want)
		}
		if got, want := created.ExpiresAt, c.Now().Add(time.Hour); !got.Equal(want) {
			t.Errorf("Created.ExpiresAt = %v, want %v", got, want)
		}
		if got, want := created.AbsoluteExpiresAt, c.Now().Add(24*time.Hour); !got.Equal(want) {
			t.Errorf("Created.AbsoluteExpiresAt = %v, want %v", got, want)
		}
		got, reason := lookup(t, s, created.ID)
		if reason != resolver.ReasonNone {
			t.Fatalf("Lookup reason = %q, want none", reason)
		}
		want := resolver.Identity{
			Credential:      resolver.CredentialSession,
			UserID:          "alice",
			SessionHandle:   created.Handle,
			Verified:        true,
			Roles:           []string{"admin", "Site Editor"},
			AMR:             []string{"pwd", "otp"},
			AuthenticatedAt: authAt,
			IssuedAt:        c.Now(),
			ExpiresAt:       c.Now().Add(time.Hour),
			Claims:          map[string]string{"email": "alice@example.com", "name": "Alice, \"A\" 👩"},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Lookup identity (-want +got):\n%s", diff)
		}
		sess, err := s.Get(t.Context(), string(created.ID))
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		wantSess := Session{
			Handle: created.Handle, UserID: "alice",
			CreatedAt: c.Now(), AuthenticatedAt: authAt, LastAccessAt: c.Now(), ExpiresAt: c.Now().Add(time.Hour),
			Verified: true, Roles: want.Roles, AMR: want.AMR, Attributes: want.Claims,
		}
		if diff := cmp.Diff(wantSess, sess); diff != "" {
			t.Errorf("Get (-want +got):\n%s", diff)
		}
	})

	t.Run("MinimalParams", func(t *testing.T) {
		s, c := setup(t, Options{})
		created := mustCreate(t, s, Params{UserID: "anon-1", Anonymous: true})
		got, reason := lookup(t, s, created.ID)
		want := resolver.Identity{
			Credential: resolver.CredentialSession, UserID: "anon-1", SessionHandle: created.Handle,
			Anonymous: true, AuthenticatedAt: c.Now(), IssuedAt: c.Now(), ExpiresAt: c.Now().Add(DefaultIdleTimeout),
		}
		if reason != resolver.ReasonNone {
			t.Fatalf("Lookup reason = %q", reason)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Lookup identity (-want +got):\n%s", diff)
		}
	})

	t.Run("IdentityIsACopy", func(t *testing.T) {
		s, _ := setup(t, Options{})
		created := mustCreate(t, s, Params{UserID: "alice", Roles: []string{"admin"}, Attributes: map[string]string{"k": "v"}})
		got, _ := lookup(t, s, created.ID)
		got.Roles[0] = "root"
		got.Claims["k"] = "changed"
		again, _ := lookup(t, s, created.ID)
		if diff := cmp.Diff([]string{"admin"}, again.Roles); diff != "" {
			t.Errorf("Roles after caller's change (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(map[string]string{"k": "v"}, again.Claims); diff != "" {
			t.Errorf("Claims after caller's change (-want +got):\n%s", diff)
		}
	})

	t.Run("MalformedID", func(t *testing.T) {
		s, _ := setup(t, Options{})
		valid := string(NewID())
		for _, tc := range []struct{ name, id string }{
			{"empty", ""},
			{"short", valid[:42]},
			{"long", valid + "A"},
			{"padded", valid[:42] + "="},
			{"std alphabet", "+" + valid[1:]},
			{"slash", "/" + valid[1:]},
			{"space", " " + valid[1:]},
			{"non-canonical last char", valid[:42] + "B"},
			{"unicode", "é" + valid[2:]},
			{"cookie with attributes", valid + "; Path=/"},
			{"nul", "\x00" + valid[1:]},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, reason, err := s.Lookup(t.Context(), tc.id)
				if err != nil || reason != resolver.ReasonMalformedSession {
					t.Errorf("Lookup = %q, %v; want %q, nil", reason, err, resolver.ReasonMalformedSession)
				}
				if _, err := s.Get(t.Context(), tc.id); !errors.Is(err, ErrInvalid) {
					t.Errorf("Get error = %v, want ErrInvalid", err)
				}
				if _, err := s.Revoke(t.Context(), tc.id); !errors.Is(err, ErrInvalid) {
					t.Errorf("Revoke error = %v, want ErrInvalid", err)
				}
			})
		}
	})

	t.Run("UnknownSession", func(t *testing.T) {
		s, _ := setup(t, Options{})
		id := NewID()
		wantReason(t, s, id, resolver.ReasonSessionNotFound)
		if _, err := s.Get(t.Context(), string(id)); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get error = %v, want ErrNotFound", err)
		}
		if _, err := s.Revoke(t.Context(), string(id)); !errors.Is(err, ErrNotFound) {
			t.Errorf("Revoke error = %v, want ErrNotFound", err)
		}
	})

	t.Run("List", func(t *testing.T) {
		s, c := setup(t, Options{})
		a1 := mustCreate(t, s, Params{UserID: "alice"})
		c.Advance(time.Second)
		mustCreate(t, s, Params{UserID: "bob"})
		a2 := mustCreate(t, s, Params{UserID: "alice", Roles: []string{"r"}})
		for _, tc := range []struct {
			user string
			want []string
		}{
			{"alice", []string{a1.Handle, a2.Handle}},
			{"nobody", nil},
		} {
			got, err := s.List(t.Context(), tc.user)
			if err != nil {
				t.Fatalf("List(%q): %v", tc.user, err)
			}
			if diff := cmp.Diff(tc.want, handles(got)); diff != "" {
				t.Errorf("List(%q) handles (-want +got):\n%s", tc.user, diff)
			}
		}
		got, _ := s.List(t.Context(), "alice")
		if diff := cmp.Diff([]string{"r"}, got[1].Roles); diff != "" {
			t.Errorf("List(alice)[1].Roles (-want +got):\n%s", diff)
		}
		if _, err := s.List(t.Context(), ""); !errors.Is(err, ErrInvalid) {
			t.Errorf("List(\"\") error = %v, want ErrInvalid", err)
		}
	})

	t.Run("Revoke", func(t *testing.T) {
		s, _ := setup(t, Options{})
		a1 := mustCreate(t, s, Params{UserID: "alice"})
		a2 := mustCreate(t, s, Params{UserID: "alice"})
		got, err := s.Revoke(t.Context(), string(a1.ID))
		if err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		if diff := cmp.Diff(Revoked{UserID: "alice", Handle: a1.Handle}, got); diff != "" {
			t.Errorf("Revoke (-want +got):\n%s", diff)
		}
		wantReason(t, s, a1.ID, resolver.ReasonSessionNotFound)
		wantReason(t, s, a2.ID, resolver.ReasonNone)
		list, err := s.List(t.Context(), "alice")
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if diff := cmp.Diff([]string{a2.Handle}, handles(list)); diff != "" {
			t.Errorf("List after Revoke (-want +got):\n%s", diff)
		}
		if _, err := s.Revoke(t.Context(), string(a1.ID)); !errors.Is(err, ErrNotFound) {
			t.Errorf("second Revoke error = %v, want ErrNotFound", err)
		}
	})

	t.Run("RevokeUser", func(t *testing.T) {
		s, _ := setup(t, Options{})
		var alice []Created
		for range 3 {
			alice = append(alice, mustCreate(t, s, Params{UserID: "alice"}))
		}
		bob := mustCreate(t, s, Params{UserID: "bob"})
		for _, tc := range []struct {
			user string
			want int
		}{
			{"alice", 3},
			{"alice", 0},
			{"nobody", 0},
		} {
			got, err := s.RevokeUser(t.Context(), tc.user)
			if err != nil || got != tc.want {
				t.Errorf("RevokeUser(%q) = %d, %v; want %d, nil", tc.user, got, err, tc.want)
			}
		}
		for _, a := range alice {
			wantReason(t, s, a.ID, resolver.ReasonSessionNotFound)
		}
		wantReason(t, s, bob.ID, resolver.ReasonNone)
		if list, err := s.List(t.Context(), "alice"); err != nil || len(list) != 0 {
			t.Errorf("List(alice) after RevokeUser = %v, %v; want none", handles(list), err)
		}
		if _, err := s.RevokeUser(t.Context(), "bad\nuser"); !errors.Is(err, ErrInvalid) {
			t.Errorf("RevokeUser(bad) error = %v, want ErrInvalid", err)
		}
	})

	t.Run("IdleTimeout", func(t *testing.T) {
		s, c := setup(t, Options{IdleTimeout: time.Hour, Lifetime: 10 * time.Hour})
		created := mustCreate(t, s, Params{UserID: "alice"})
		start := c.Now()
		for _, step := range []struct {
			advance time.Duration
			want    resolver.Reason
			expires time.Duration // since start, when valid
		}{
			{59 * time.Minute, resolver.ReasonNone, 119 * time.Minute}, // touched: idle timer restarts
			{59 * time.Minute, resolver.ReasonNone, 178 * time.Minute}, // and again
			{59*time.Minute + 59*time.Second, resolver.ReasonNone, 237*time.Minute + 59*time.Second},
			{time.Hour, resolver.ReasonSessionExpired, 0}, // idle for a full hour
		} {
			c.Advance(step.advance)
			got, reason := lookup(t, s, created.ID)
			if reason != step.want {
				t.Fatalf("at +%v: Lookup reason = %q, want %q", c.Now().Sub(start), reason, step.want)
			}
			if reason == resolver.ReasonNone && !got.ExpiresAt.Equal(start.Add(step.expires)) {
				t.Errorf("at +%v: ExpiresAt = +%v, want +%v", c.Now().Sub(start), got.ExpiresAt.Sub(start), step.expires)
			}
		}
	})

	t.Run("Lifetime", func(t *testing.T) {
		s, c := setup(t, Options{IdleTimeout: time.Hour, Lifetime: 2 * time.Hour})
		created := mustCreate(t, s, Params{UserID: "alice"})
		start := c.Now()
		for _, step := range []struct {
			at      time.Duration
			want    resolver.Reason
			expires time.Duration
		}{
			{50 * time.Minute, resolver.ReasonNone, 110 * time.Minute},
			{100 * time.Minute, resolver.ReasonNone, 120 * time.Minute}, // capped by the lifetime
			{119 * time.Minute, resolver.ReasonNone, 120 * time.Minute},
			{120 * time.Minute, resolver.ReasonSessionExpired, 0}, // used a minute ago, still over
		} {
			c.Advance(start.Add(step.at).Sub(c.Now()))
			got, reason := lookup(t, s, created.ID)
			if reason != step.want {
				t.Fatalf("at +%v: Lookup reason = %q, want %q", step.at, reason, step.want)
			}
			if reason == resolver.ReasonNone && !got.ExpiresAt.Equal(start.Add(step.expires)) {
				t.Errorf("at +%v: ExpiresAt = +%v, want +%v", step.at, got.ExpiresAt.Sub(start), step.expires)
			}
		}
	})

	t.Run("SessionTTL", func(t *testing.T) {
		s, c := setup(t, Options{IdleTimeout: time.Hour, Lifetime: 2 * time.Hour})
		created := mustCreate(t, s, Params{UserID: "alice", TTL: 10 * time.Minute})
		if got, want := created.ExpiresAt, c.Now().Add(10*time.Minute); !got.Equal(want) {
			t.Errorf("ExpiresAt = %v, want %v", got, want)
		}
		c.Advance(10*time.Minute - time.Second)
		wantReason(t, s, created.ID, resolver.ReasonNone)
		c.Advance(time.Second)
		wantReason(t, s, created.ID, resolver.ReasonSessionExpired)
		if _, err := s.Get(t.Context(), string(created.ID)); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get of expired session: error = %v, want ErrNotFound", err)
		}
	})

	t.Run("TouchThrottled", func(t *testing.T) {
		s, c := setup(t, Options{TouchInterval: time.Minute})
		created := mustCreate(t, s, Params{UserID: "alice"})
		start := c.Now()
		for _, step := range []struct {
			advance    time.Duration
			lastAccess time.Duration
		}{
			{30 * time.Second, 0},
			{29 * time.Second, 0},
			{time.Second, time.Minute},
			{59 * time.Second, time.Minute},
			{time.Second, 2 * time.Minute},
		} {
			c.Advance(step.advance)
			wantReason(t, s, created.ID, resolver.ReasonNone)
			got, err := s.Get(t.Context(), string(created.ID))
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if want := start.Add(step.lastAccess); !got.LastAccessAt.Equal(want) {
				t.Errorf("at +%v: LastAccessAt = +%v, want +%v", c.Now().Sub(start), got.LastAccessAt.Sub(start), step.lastAccess)
			}
		}
	})

	t.Run("ExpiredSessionsLeaveList", func(t *testing.T) {
		s, c := setup(t, Options{IdleTimeout: time.Hour})
		mustCreate(t, s, Params{UserID: "alice", TTL: time.Minute})
		mustCreate(t, s, Params{UserID: "alice", TTL: 2 * time.Minute})
		c.Advance(90 * time.Second)
		live := mustCreate(t, s, Params{UserID: "alice"})
		got, err := s.List(t.Context(), "alice")
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if len(got) != 2 {
			t.Fatalf("List after one expiry = %d sessions, want 2", len(got))
		}
		c.Advance(time.Minute)
		got, err = s.List(t.Context(), "alice")
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if diff := cmp.Diff([]string{live.Handle}, handles(got)); diff != "" {
			t.Errorf("List after expiries (-want +got):\n%s", diff)
		}
	})

	t.Run("MaxSessionsPerUser", func(t *testing.T) {
		s, _ := setup(t, Options{MaxSessionsPerUser: 3})
		s1 := mustCreate(t, s, Params{UserID: "alice", TTL: 10 * time.Minute})
		s2 := mustCreate(t, s, Params{UserID: "alice", TTL: 20 * time.Minute})
		s3 := mustCreate(t, s, Params{UserID: "alice", TTL: 30 * time.Minute})
		// The new session is never the one evicted, even if it ends first.
		s4 := mustCreate(t, s, Params{UserID: "alice", TTL: 5 * time.Minute})
		wantReason(t, s, s1.ID, resolver.ReasonSessionNotFound)
		for _, c := range []struct {
			name string
			got  []string
			want []string
		}{{"s2", s2.Evicted, nil}, {"s3", s3.Evicted, nil}, {"s4", s4.Evicted, []string{s1.Handle}}} {
			if diff := cmp.Diff(c.want, c.got); diff != "" {
				t.Errorf("%s: Created.Evicted (-want +got):\n%s", c.name, diff)
			}
		}
		for _, c := range []Created{s2, s3, s4} {
			wantReason(t, s, c.ID, resolver.ReasonNone)
		}
		got, err := s.List(t.Context(), "alice")
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if diff := cmp.Diff([]string{s2.Handle, s3.Handle, s4.Handle}, handles(got), cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
			t.Errorf("List (-want +got):\n%s", diff)
		}
	})

	t.Run("InvalidParams", func(t *testing.T) {
		s, c := setup(t, Options{Lifetime: 48 * time.Hour})
		long := strings.Repeat("x", MaxUserIDBytes)
		many := make([]string, 65)
		for i := range many {
			many[i] = "r"
		}
		bigAttrs := map[string]string{}
		for i := range 65 {
			bigAttrs[string(rune('a'+i%26))+string(rune('a'+i/26))] = "v"
		}
		for _, tc := range []struct {
			name  string
			p     Params
			field string
		}{
			{"no user", Params{}, "user_id"},
			{"long user", Params{UserID: "u" + long}, "user_id"},
			{"control in user", Params{UserID: "a\x01b"}, "user_id"},
			{"invalid utf8 user", Params{UserID: "a\xffb"}, "user_id"},
			{"zero width in user", Params{UserID: "a\u200bb"}, "user_id"},
			{"ttl too short", Params{UserID: "u", TTL: 59 * time.Second}, "ttl"},
			{"ttl over lifetime", Params{UserID: "u", TTL: 49 * time.Hour}, "ttl"},
			{"negative ttl", Params{UserID: "u", TTL: -time.Hour}, "ttl"},
			{"too many roles", Params{UserID: "u", Roles: many}, "roles"},
			{"empty role", Params{UserID: "u", Roles: []string{""}}, "roles"},
			{"comma in role", Params{UserID: "u", Roles: []string{"a,b"}}, "roles"},
			{"long role", Params{UserID: "u", Roles: []string{"r" + long}}, "roles"},
			{"space in amr", Params{UserID: "u", AMR: []string{"a b"}}, "amr"},
			{"newline in attribute", Params{UserID: "u", Attributes: map[string]string{"k": "a\r\nb"}}, "attributes"},
			{"empty attribute key", Params{UserID: "u", Attributes: map[string]string{"": "v"}}, "attributes"},
			{"long attribute value", Params{UserID: "u", Attributes: map[string]string{"k": string(make([]byte, 1025))}}, "attributes"},
			{"too many attributes", Params{UserID: "u", Attributes: bigAttrs}, "attributes"},
			{"authenticated in the future", Params{UserID: "u", AuthenticatedAt: c.Now().Add(time.Hour)}, "authenticated_at"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := s.Create(t.Context(), tc.p)
				var ie *InvalidError
				if !errors.Is(err, ErrInvalid) || !errors.As(err, &ie) {
					t.Fatalf("Create error = %v, want *InvalidError", err)
				}
				if ie.Field != tc.field {
					t.Errorf("InvalidError.Field = %q, want %q", ie.Field, tc.field)
				}
			})
		}
	})

	t.Run("RevokeToken", func(t *testing.T) {
		s, c := setup(t, Options{})
		if err := s.RevokeToken(t.Context(), "", "jti-1", c.Now().Add(time.Hour)); err != nil {
			t.Fatalf("RevokeToken: %v", err)
		}
		// A shorter revocation does not shorten the stored one.
		if err := s.RevokeToken(t.Context(), "", "jti-1", c.Now().Add(time.Minute)); err != nil {
			t.Fatalf("RevokeToken(shorter): %v", err)
		}
		if err := s.RevokeToken(t.Context(), "", "jti-past", c.Now().Add(-time.Second)); err != nil {
			t.Fatalf("RevokeToken(past): %v", err)
		}
		if err := s.RevokeToken(t.Context(), "", "", c.Now().Add(time.Hour)); !errors.Is(err, ErrInvalid) {
			t.Errorf("RevokeToken(\"\") error = %v, want ErrInvalid", err)
		}
		iat := c.Now().Add(-time.Minute)
		for _, tc := range []struct {
			name string
			id   resolver.Identity
			want bool
		}{
			{"revoked jti", resolver.Identity{TokenID: "jti-1", UserID: "alice", IssuedAt: iat}, true},
			{"revoked jti, no user", resolver.Identity{TokenID: "jti-1"}, true},
			{"other jti", resolver.Identity{TokenID: "jti-2", UserID: "alice", IssuedAt: iat}, false},
			{"until in the past", resolver.Identity{TokenID: "jti-past"}, false},
			{"no jti", resolver.Identity{UserID: "alice", IssuedAt: iat}, false},
			{"nothing", resolver.Identity{}, false},
		} {
			got, err := s.TokenRevoked(t.Context(), tc.id)
			if err != nil || got != tc.want {
				t.Errorf("%s: TokenRevoked = %v, %v; want %v, nil", tc.name, got, err, tc.want)
			}
		}
		c.Advance(time.Hour - time.Second)
		if got, err := s.TokenRevoked(t.Context(), resolver.Identity{TokenID: "jti-1"}); err != nil || !got {
			t.Errorf("TokenRevoked just before until = %v, %v; want true, nil", got, err)
		}
		c.Advance(time.Second)
		if got, err := s.TokenRevoked(t.Context(), resolver.Identity{TokenID: "jti-1"}); err != nil || got {
			t.Errorf("TokenRevoked after until = %v, %v; want false, nil", got, err)
		}
	})

	t.Run("RevokeUserTokens", func(t *testing.T) {
		s, c := setup(t, Options{})
		now := c.Now()
		if err := s.RevokeUserTokens(t.Context(), "", "alice", now.Add(-500*time.Millisecond), time.Hour); err != nil {
			t.Fatalf("RevokeUserTokens: %v", err)
		}
		// An earlier cut-off does not lower the stored one.
		if err := s.RevokeUserTokens(t.Context(), "", "alice", now.Add(-time.Hour), time.Hour); err != nil {
			t.Fatalf("RevokeUserTokens(earlier): %v", err)
		}
		for _, tc := range []struct {
			name string
			id   resolver.Identity
			want bool
		}{
			{"issued before", resolver.Identity{UserID: "alice", IssuedAt: now.Add(-10 * time.Second)}, true},
			{"issued the second before", resolver.Identity{UserID: "alice", IssuedAt: now.Add(-time.Second)}, true},
			{"issued at the cut-off second", resolver.Identity{UserID: "alice", IssuedAt: now}, false},
			{"issued after", resolver.Identity{UserID: "alice", IssuedAt: now.Add(time.Second)}, false},
			{"no iat", resolver.Identity{UserID: "alice"}, true},
			{"other user", resolver.Identity{UserID: "bob", IssuedAt: now.Add(-10 * time.Second)}, false},
			{"other user, revoked jti absent", resolver.Identity{UserID: "bob", TokenID: "x", IssuedAt: now}, false},
		} {
			got, err := s.TokenRevoked(t.Context(), tc.id)
			if err != nil || got != tc.want {
				t.Errorf("%s: TokenRevoked = %v, %v; want %v, nil", tc.name, got, err, tc.want)
			}
		}
		// A later cut-off replaces the stored one.
		c.Advance(time.Minute)
		if err := s.RevokeUserTokens(t.Context(), "", "alice", c.Now(), time.Hour); err != nil {
			t.Fatalf("RevokeUserTokens(later): %v", err)
		}
		if got, err := s.TokenRevoked(t.Context(), resolver.Identity{UserID: "alice", IssuedAt: now.Add(time.Second)}); err != nil || !got {
			t.Errorf("TokenRevoked after later cut-off = %v, %v; want true, nil", got, err)
		}
		for _, tc := range []struct {
			name string
			user string
			keep time.Duration
		}{
			{"no user", "", time.Hour},
			{"zero keep", "alice", 0},
		} {
			if err := s.RevokeUserTokens(t.Context(), "", tc.user, c.Now(), tc.keep); !errors.Is(err, ErrInvalid) {
				t.Errorf("%s: RevokeUserTokens error = %v, want ErrInvalid", tc.name, err)
			}
		}
	})

	t.Run("IssuerScopedRevocations", func(t *testing.T) {
		s, c := setup(t, Options{})
		now := c.Now()
		const a, b = "https://a.example", "https://b.example"
		for _, err := range []error{
			s.RevokeToken(t.Context(), a, "jti-a", now.Add(time.Hour)),
			s.RevokeToken(t.Context(), "", "jti-all", now.Add(time.Hour)),
			s.RevokeUserTokens(t.Context(), a, "user-a", now, time.Hour),
			s.RevokeUserTokens(t.Context(), "", "user-all", now, time.Hour),
		} {
			if err != nil {
				t.Fatal(err)
			}
		}
		iat := now.Add(-time.Minute)
		for _, tc := range []struct {
			name string
			id   resolver.Identity
			want bool
		}{
			{"jti of the issuer", resolver.Identity{Issuer: a, TokenID: "jti-a", UserID: "u", IssuedAt: iat}, true},
			{"same jti, other issuer", resolver.Identity{Issuer: b, TokenID: "jti-a", UserID: "u", IssuedAt: iat}, false},
			{"same jti, no issuer", resolver.Identity{TokenID: "jti-a", UserID: "u", IssuedAt: iat}, false},
			{"jti of every issuer, a", resolver.Identity{Issuer: a, TokenID: "jti-all", UserID: "u", IssuedAt: iat}, true},
			{"jti of every issuer, b", resolver.Identity{Issuer: b, TokenID: "jti-all", UserID: "u", IssuedAt: iat}, true},
			{"user of the issuer", resolver.Identity{Issuer: a, UserID: "user-a", IssuedAt: iat}, true},
			{"user of the issuer, issued after", resolver.Identity{Issuer: a, UserID: "user-a", IssuedAt: now}, false},
			{"same user, other issuer", resolver.Identity{Issuer: b, UserID: "user-a", IssuedAt: iat}, false},
			{"user of every issuer, a", resolver.Identity{Issuer: a, UserID: "user-all", IssuedAt: iat}, true},
			{"user of every issuer, b", resolver.Identity{Issuer: b, UserID: "user-all", IssuedAt: iat}, true},
		} {
			got, err := s.TokenRevoked(t.Context(), tc.id)
			if err != nil || got != tc.want {
				t.Errorf("%s: TokenRevoked = %v, %v; want %v, nil", tc.name, got, err, tc.want)
			}
		}
		for _, iss := range []string{"bad\nissuer", strings.Repeat("i", MaxIssuerBytes+1)} {
			if err := s.RevokeToken(t.Context(), iss, "j", now.Add(time.Hour)); !errors.Is(err, ErrInvalid) {
				t.Errorf("RevokeToken(issuer %.10q) error = %v, want ErrInvalid", iss, err)
			}
			if err := s.RevokeUserTokens(t.Context(), iss, "u", now, time.Hour); !errors.Is(err, ErrInvalid) {
				t.Errorf("RevokeUserTokens(issuer %.10q) error = %v, want ErrInvalid", iss, err)
			}
		}
	})

	t.Run("LongestUserID", func(t *testing.T) {
		// A sub the resolver accepts (up to 1024 bytes) can have sessions
		// and be revoked.
		s, c := setup(t, Options{})
		user := strings.Repeat("u", MaxUserIDBytes)
		created := mustCreate(t, s, Params{UserID: user})
		if list, err := s.List(t.Context(), user); err != nil || len(list) != 1 {
			t.Errorf("List = %d sessions, %v; want 1", len(list), err)
		}
		if n, err := s.RevokeUser(t.Context(), user); err != nil || n != 1 {
			t.Errorf("RevokeUser = %d, %v; want 1", n, err)
		}
		wantReason(t, s, created.ID, resolver.ReasonSessionNotFound)
		if err := s.RevokeUserTokens(t.Context(), "", user, c.Now(), time.Hour); err != nil {
			t.Fatalf("RevokeUserTokens: %v", err)
		}
		id := resolver.Identity{UserID: user, IssuedAt: c.Now().Add(-time.Second)}
		if got, err := s.TokenRevoked(t.Context(), id); err != nil || !got {
			t.Errorf("TokenRevoked = %v, %v; want true", got, err)
		}
	})

	t.Run("ConcurrentLookups", func(t *testing.T) {
		s, c := setup(t, Options{})
		created := mustCreate(t, s, Params{UserID: "alice"})
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				for range 20 {
					if i == 0 {
						c.Advance(time.Minute)
					}
					if _, reason, err := s.Lookup(t.Context(), string(created.ID)); err != nil || reason != resolver.ReasonNone {
						t.Errorf("Lookup = %q, %v", reason, err)
						return
					}
				}
			})
		}
		wg.Wait()
	})

	t.Run("Ping", func(t *testing.T) {
		s, _ := setup(t, Options{})
		if err := s.Ping(t.Context()); err != nil {
			t.Errorf("Ping: %v", err)
		}
	})
}

// newClock returns a test clock at the current second (Redis keeps whole seconds).
func newClock() *testclock.Clock { return testclock.New(time.Now().Truncate(time.Second)) }
