package session

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/authresolver/authresolver/resolver"
)

func TestMemoryStore(t *testing.T) {
	testConformance(t, func(t *testing.T, o Options) store {
		s := NewMemoryStore(o)
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestMemoryStoreSweeps checks that expired entries leave memory.
func TestMemoryStoreSweeps(t *testing.T) {
	c := newClock()
	s := NewMemoryStore(Options{Now: c.Now, IdleTimeout: time.Hour})
	for range 10 {
		mustCreate(t, s, Params{UserID: "alice", TTL: time.Minute})
		mustCreate(t, s, Params{UserID: "bob", TTL: time.Minute})
	}
	if err := s.RevokeToken(t.Context(), "", "jti", c.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeUserTokens(t.Context(), "", "carol", c.Now(), time.Minute); err != nil {
		t.Fatal(err)
	}
	c.Advance(2 * time.Minute)
	live := mustCreate(t, s, Params{UserID: "dave"})

	s.mu.Lock()
	got := []int{len(s.sessions), len(s.index), len(s.jtis), len(s.cutoffs)}
	s.mu.Unlock()
	if diff := cmp.Diff([]int{1, 1, 0, 0}, got); diff != "" {
		t.Errorf("after sweep: sessions, users, jtis, cutoffs (-want +got):\n%s", diff)
	}
	wantReason(t, s, live.ID, resolver.ReasonNone)
}
