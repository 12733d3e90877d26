package session

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/authresolver/authresolver/resolver"
)

var (
	_ resolver.SessionStore      = (*MemoryStore)(nil)
	_ resolver.RevocationChecker = (*MemoryStore)(nil)
)

// sweepInterval is how often writes sweep expired entries out of a
// MemoryStore, which keeps it bounded by the live sessions and revocations.
const sweepInterval = time.Minute

// MemoryStore keeps sessions and revocations in process memory, with the
// same behaviour as RedisStore, for the dev mode and tests. Nothing is
// shared between processes. It is safe for concurrent use.
type MemoryStore struct {
	o Options

	mu        sync.Mutex
	sessions  map[string]*record          // key hash → session
	index     map[string]map[string]int64 // user ID → key hash → expiry
	jtis      map[scoped]int64            // issuer ("" = all) and jti → kept until
	cutoffs   map[scoped]cutoff           // issuer ("" = all) and user ID → token cut-off
	lastSweep int64
}

// scoped names a jti or a user within an issuer; an empty issuer stands for
// every issuer.
type scoped struct{ issuer, id string }

type cutoff struct{ before, until int64 }

// NewMemoryStore returns an empty store.
func NewMemoryStore(o Options) *MemoryStore {
	return &MemoryStore{
		o:        o.withDefaults(),
		sessions: make(map[string]*record),
		index:    make(map[string]map[string]int64),
		jtis:     make(map[scoped]int64),
		cutoffs:  make(map[scoped]cutoff),
	}
}

// Create stores a new session. Its contract is RedisStore.Create's.
func (s *MemoryStore) Create(_ context.Context, p Params) (Created, error) {
	now := s.o.Now()
	id := NewID()
	r, err := newRecord(p, id, now, s.o)
	if err != nil {
		return Created{}, err
	}
	keyHash := id.keyHash()
	exp := r.expiry(s.o.IdleTimeout)

	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(now.Unix())
	s.sessions[keyHash] = &r
	idx := s.index[p.UserID]
	if idx == nil {
		idx = make(map[string]int64)
		s.index[p.UserID] = idx
	}
	for h, e := range idx {
		if e <= now.Unix() {
			delete(idx, h)
		}
	}
	var evicted []string
	for len(idx) >= s.o.MaxSessionsPerUser {
		var first string
		for h, e := range idx {
			if first == "" || e < idx[first] || e == idx[first] && h < first {
				first = h
			}
		}
		delete(idx, first)
		delete(s.sessions, first)
		evicted = append(evicted, handleOf(first))
	}
	idx[keyHash] = exp
	return Created{
		ID: id, Handle: r.handle, ExpiresAt: time.Unix(exp, 0),
		AbsoluteExpiresAt: time.Unix(r.absoluteExpiry, 0), Evicted: evicted,
	}, nil
}

// Lookup returns the identity of the live session rawID. Its contract is
// RedisStore.Lookup's; it never returns an error.
func (s *MemoryStore) Lookup(_ context.Context, rawID string) (resolver.Identity, resolver.Reason, error) {
	id, err := ParseID(rawID)
	if err != nil {
		return resolver.Identity{}, resolver.ReasonMalformedSession, nil
	}
	keyHash := id.keyHash()
	now := s.o.Now().Unix()

	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.sessions[keyHash]
	if !ok {
		return resolver.Identity{}, resolver.ReasonSessionNotFound, nil
	}
	if now >= r.expiry(s.o.IdleTimeout) {
		return resolver.Identity{}, resolver.ReasonSessionExpired, nil
	}
	if r.needsTouch(now, s.o.TouchInterval) {
		r.lastAccess = now
		if idx := s.index[r.userID]; idx != nil {
			idx[keyHash] = max(idx[keyHash], r.expiry(s.o.IdleTimeout))
		}
	}
	return r.clone().identity(s.o.IdleTimeout), resolver.ReasonNone, nil
}

// Get returns the live session rawID. Its contract is RedisStore.Get's.
func (s *MemoryStore) Get(_ context.Context, rawID string) (Session, error) {
	id, err := ParseID(rawID)
	if err != nil {
		return Session{}, err
	}
	now := s.o.Now().Unix()
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.sessions[id.keyHash()]
	if !ok || now >= r.expiry(s.o.IdleTimeout) {
		return Session{}, fmt.Errorf("session: get: %w", ErrNotFound)
	}
	return r.session(s.o.IdleTimeout), nil
}

// List returns the user's live sessions, oldest first. Its contract is
// RedisStore.List's.
func (s *MemoryStore) List(_ context.Context, userID string) ([]Session, error) {
	if err := ValidateUserID(userID); err != nil {
		return nil, err
	}
	now := s.o.Now().Unix()
	s.mu.Lock()
	defer s.mu.Unlock()
	idx := s.index[userID]
	sessions := make([]Session, 0, len(idx))
	for h := range idx {
		r, ok := s.sessions[h]
		if !ok || now >= r.expiry(s.o.IdleTimeout) {
			delete(idx, h)
			continue
		}
		sessions = append(sessions, r.session(s.o.IdleTimeout))
	}
	if len(idx) == 0 {
		delete(s.index, userID)
	}
	sortSessions(sessions)
	return sessions, nil
}

// Revoke deletes the session rawID. Its contract is RedisStore.Revoke's.
func (s *MemoryStore) Revoke(_ context.Context, rawID string) (Revoked, error) {
	id, err := ParseID(rawID)
	if err != nil {
		return Revoked{}, err
	}
	keyHash := id.keyHash()
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.sessions[keyHash]
	if !ok {
		return Revoked{}, fmt.Errorf("session: revoke: %w", ErrNotFound)
	}
	delete(s.sessions, keyHash)
	if idx := s.index[r.userID]; idx != nil {
		delete(idx, keyHash)
		if len(idx) == 0 {
			delete(s.index, r.userID)
		}
	}
	return Revoked{UserID: r.userID, Handle: r.handle}, nil
}

// RevokeUser deletes every session of the user. Its contract is
// RedisStore.RevokeUser's.
func (s *MemoryStore) RevokeUser(_ context.Context, userID string) (int, error) {
	if err := ValidateUserID(userID); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for h := range s.index[userID] {
		if _, ok := s.sessions[h]; ok {
			delete(s.sessions, h)
			n++
		}
	}
	delete(s.index, userID)
	return n, nil
}

// RevokeToken revokes one JWT. Its contract is RedisStore.RevokeToken's.
func (s *MemoryStore) RevokeToken(_ context.Context, issuer, jti string, until time.Time) error {
	if err := validateTokenRevocation(issuer, jti); err != nil {
		return err
	}
	now := s.o.Now()
	if !until.After(now) {
		return nil
	}
	k := scoped{issuer, jti}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(now.Unix())
	s.jtis[k] = max(s.jtis[k], ceilUnix(until))
	return nil
}

// RevokeUserTokens revokes a user's JWTs issued before a time. Its contract
// is RedisStore.RevokeUserTokens's.
func (s *MemoryStore) RevokeUserTokens(_ context.Context, issuer, userID string, before time.Time, keep time.Duration) error {
	c, until, err := userCutoffArgs(issuer, userID, before, keep)
	if err != nil {
		return err
	}
	now := s.o.Now().Unix()
	if until <= now {
		return nil
	}
	k := scoped{issuer, userID}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(now)
	if cur, ok := s.cutoffs[k]; ok && cur.until > now {
		c, until = max(c, cur.before), max(until, cur.until)
	}
	s.cutoffs[k] = cutoff{before: c, until: until}
	return nil
}

// TokenRevoked reports whether a JWT was revoked. Its contract is
// RedisStore.TokenRevoked's; it never returns an error.
func (s *MemoryStore) TokenRevoked(_ context.Context, id resolver.Identity) (bool, error) {
	now := s.o.Now().Unix()
	// Every issuer's revocations, then id.Issuer's.
	issuers, n := [2]string{"", id.Issuer}, 1
	if id.Issuer != "" {
		n = 2
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, iss := range issuers[:n] {
		if id.TokenID != "" {
			if until, ok := s.jtis[scoped{iss, id.TokenID}]; ok && until > now {
				return true, nil
			}
		}
		if id.UserID != "" {
			c, ok := s.cutoffs[scoped{iss, id.UserID}]
			if ok && c.until > now && (id.IssuedAt.IsZero() || id.IssuedAt.Unix() < c.before) {
				return true, nil
			}
		}
	}
	return false, nil
}

// Ping always succeeds.
func (s *MemoryStore) Ping(context.Context) error { return nil }

// Close does nothing; the store stays usable.
func (s *MemoryStore) Close() error { return nil }

// sweep drops expired entries at most once per sweepInterval, the way Redis
// TTLs would. Callers hold s.mu.
func (s *MemoryStore) sweep(now int64) {
	if now-s.lastSweep < int64(sweepInterval/time.Second) {
		return
	}
	s.lastSweep = now
	for h, r := range s.sessions {
		if now >= r.expiry(s.o.IdleTimeout) {
			delete(s.sessions, h)
		}
	}
	for u, idx := range s.index {
		for h := range idx {
			if _, ok := s.sessions[h]; !ok {
				delete(idx, h)
			}
		}
		if len(idx) == 0 {
			delete(s.index, u)
		}
	}
	for j, until := range s.jtis {
		if until <= now {
			delete(s.jtis, j)
		}
	}
	for u, c := range s.cutoffs {
		if c.until <= now {
			delete(s.cutoffs, u)
		}
	}
}
