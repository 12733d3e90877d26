package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authresolver/authresolver/resolver"
)

// Shared is the decision cache in Redis (L2), shared by replicas. It holds
// only valid identities, under the SHA-256 of the credential, never the
// credential. Every revocation bumps a generation counter; an entry written
// under an older generation is not used, so a revocation makes every L2
// entry that could predate it unusable at once without having to find them.
// It implements resolver.SharedCache.
type Shared struct {
	client redis.UniversalClient
	prefix string
	now    func() time.Time
}

var _ resolver.SharedCache = (*Shared)(nil)

// SharedOptions configure a Shared.
type SharedOptions struct {
	Prefix string           // starts every key, e.g. "authresolver:v1:"
	Now    func() time.Time // default time.Now
}

// NewShared returns the L2 tier over client.
func NewShared(client redis.UniversalClient, o SharedOptions) *Shared {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Shared{client: client, prefix: o.Prefix, now: o.Now}
}

func (s *Shared) key(cred resolver.Credential) string {
	sum := sha256.Sum256([]byte(cred.Kind + ":" + cred.Value))
	return s.prefix + "d:" + hex.EncodeToString(sum[:])
}

func (s *Shared) genKey() string { return s.prefix + "d-gen" }

// cached is an L2 value.
type cached struct {
	Gen   uint64            `json:"g"`
	Until time.Time         `json:"u"` // the writer's end of this entry
	ID    resolver.Identity `json:"id"`
}

// Get reads the entry for cred and the current generation in one round trip.
// An entry written under an older generation, or whose credential has
// expired by this process's clock, is a miss.
// The entry may be used until the earlier of the writer's entry end and the
// credential's expiry, so that a refilled L1 never outlives either.
func (s *Shared) Get(ctx context.Context, cred resolver.Credential) (resolver.Identity, time.Time, uint64, error) {
	var val, gen *redis.StringCmd
	_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		val = p.Get(ctx, s.key(cred))
		gen = p.Get(ctx, s.genKey())
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return resolver.Identity{}, time.Time{}, 0, fmt.Errorf("cache: shared get: %w", err)
	}
	current, _ := strconv.ParseUint(gen.Val(), 10, 64) // absent: generation 0
	if val.Err() != nil {
		return resolver.Identity{}, time.Time{}, current, nil
	}
	var c cached
	if err := json.Unmarshal([]byte(val.Val()), &c); err != nil || c.Gen != current {
		return resolver.Identity{}, time.Time{}, current, nil
	}
	until := c.Until
	if !c.ID.ExpiresAt.IsZero() && c.ID.ExpiresAt.Before(until) {
		until = c.ID.ExpiresAt
	}
	if !s.now().Before(until) {
		// The key's TTL ends by the writer's clock; a replica whose clock
		// is ahead must not reuse it after.
		return resolver.Identity{}, time.Time{}, current, nil
	}
	return c.ID, until, current, nil
}

// Set stores id for cred for ttl, tagged with the generation read before the
// decision was made.
func (s *Shared) Set(ctx context.Context, cred resolver.Credential, id resolver.Identity, ttl time.Duration, gen uint64) error {
	b, err := json.Marshal(cached{Gen: gen, Until: s.now().Add(ttl), ID: id})
	if err != nil {
		return fmt.Errorf("cache: shared set: %w", err)
	}
	if err := s.client.Set(ctx, s.key(cred), b, ttl).Err(); err != nil {
		return fmt.Errorf("cache: shared set: %w", err)
	}
	return nil
}

// Bump makes every entry written so far unusable.
func (s *Shared) Bump(ctx context.Context) error {
	if err := s.client.Incr(ctx, s.genKey()).Err(); err != nil {
		return fmt.Errorf("cache: shared bump: %w", err)
	}
	return nil
}
