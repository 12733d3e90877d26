package session

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authresolver/authresolver/resolver"
)

var (
	_ resolver.SessionStore      = (*RedisStore)(nil)
	_ resolver.RevocationChecker = (*RedisStore)(nil)
)

// RedisStore keeps sessions and revocations in Redis, in the layout of
// LAYOUT.md. Every key carries a TTL. It is safe for concurrent use.
//
// Methods return an error wrapping the client's error when Redis cannot be
// reached; a missing session is a Reason (Lookup) or ErrNotFound, never a
// redis.Nil.
type RedisStore struct {
	client redis.UniversalClient
	o      Options
	// single is set for a client of one server (standalone or Sentinel),
	// where multi-key commands need no shared slot.
	single bool
}

// NewRedisStore returns a store over client, which it owns from then on:
// Close closes it. It does not contact Redis (see Ping).
func NewRedisStore(client redis.UniversalClient, o Options) *RedisStore {
	_, single := client.(*redis.Client)
	return &RedisStore{client: client, o: o.withDefaults(), single: single}
}

// Key names; see LAYOUT.md. User keys share the hash tag {u:<hex>} so that a
// user's index and token cut-off live in one Cluster slot.

func (s *RedisStore) sessionKey(keyHash string) string { return s.o.Prefix + "s:" + keyHash }

func (s *RedisStore) indexKey(userID string) string {
	return s.o.Prefix + "{u:" + sha256Hex(userID) + "}:sessions"
}

// userTokensKey names a user's token cut-off: for every issuer when issuer
// is empty, else for that issuer's tokens only. Both share the user's slot.
func (s *RedisStore) userTokensKey(issuer, userID string) string {
	return withIssuer(s.o.Prefix+"{u:"+sha256Hex(userID)+"}:tokens_revoked_before", issuerHash(issuer))
}

// jtiKey names a jti's revocation: for every issuer when issuer is empty,
// else for that issuer's token only.
func (s *RedisStore) jtiKey(issuer, jti string) string {
	return withIssuer(s.o.Prefix+"jti:"+sha256Hex(jti), issuerHash(issuer))
}

// withIssuer returns the issuer-scoped form of a revocation key, given
// issuerHash(issuer); for "" (every issuer) the key itself.
func withIssuer(key, issuerHash string) string {
	if issuerHash == "" {
		return key
	}
	return key + ":iss:" + issuerHash
}

func issuerHash(issuer string) string {
	if issuer == "" {
		return ""
	}
	return sha256Hex(issuer)
}

// sessionKeyOf returns sessionKey(id.keyHash()) in one allocation (Lookup
// calls it per request); the key hash is its last 64 bytes.
func (s *RedisStore) sessionKeyOf(id ID) string {
	var in [idLength]byte // on the stack; []byte(id) would allocate
	sum := sha256.Sum256(in[:copy(in[:], id)])
	var h [keyHashLength]byte
	hex.Encode(h[:], sum[:])
	var b strings.Builder
	b.Grow(len(s.o.Prefix) + 2 + keyHashLength)
	b.WriteString(s.o.Prefix)
	b.WriteString("s:")
	b.Write(h[:])
	return b.String()
}

// indexAdd adds a session to its user's index: it drops members whose score
// (the session's expiry) has passed, adds the new one and sets the index's
// TTL to its latest score. It returns the members beyond the cap that are
// closest to expiry (never the new one) but leaves them indexed: they are
// unindexed only once their sessions are deleted, so that a failure cannot
// leave a live session that no index names.
var indexAdd = redis.NewScript(`
local idx, now, exp, member, cap = KEYS[1], ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', idx, '-inf', now)
redis.call('ZADD', idx, exp, member)
local top = redis.call('ZRANGE', idx, -1, -1, 'WITHSCORES')
redis.call('EXPIREAT', idx, top[2])
local over = redis.call('ZCARD', idx) - cap
local evict = {}
if over <= 0 then return evict end
for _, m in ipairs(redis.call('ZRANGE', idx, 0, over)) do
  if m ~= member and #evict < over then evict[#evict + 1] = m end
end
return evict
`)

// indexTouch raises a member's score to a later expiry, and the index's TTL
// with it. It returns 0 when the member is not indexed (revoked meanwhile).
var indexTouch = redis.NewScript(`
local idx, member, exp = KEYS[1], ARGV[1], tonumber(ARGV[2])
local cur = redis.call('ZSCORE', idx, member)
if not cur then return 0 end
if tonumber(cur) >= exp then return 1 end
redis.call('ZADD', idx, exp, member)
local top = redis.call('ZRANGE', idx, -1, -1, 'WITHSCORES')
redis.call('EXPIREAT', idx, top[2])
return 1
`)

// sessionTouch records a later last access and expiry on a session that
// still exists; it never recreates a deleted session.
var sessionTouch = redis.NewScript(`
local key, now, exp = KEYS[1], tonumber(ARGV[1]), ARGV[2]
if redis.call('EXISTS', key) == 0 then return 0 end
local cur = tonumber(redis.call('HGET', key, 'last_access_at') or '0')
if cur and cur >= now then return 1 end
redis.call('HSET', key, 'last_access_at', ARGV[1])
redis.call('EXPIREAT', key, exp)
return 1
`)

// userCutoff raises a user's token cut-off to ARGV[1] and keeps it at
// least until ARGV[2]: neither the cut-off nor its retention ever shrinks,
// or a token revoked earlier could come back.
var userCutoff = redis.NewScript(`
local key, cutoff, expireat = KEYS[1], tonumber(ARGV[1]), ARGV[2]
local cur = redis.call('GET', key)
if not cur then
  redis.call('SET', key, ARGV[1], 'EXAT', expireat)
  return 1
end
if (tonumber(cur) or 0) < cutoff then redis.call('SET', key, ARGV[1], 'KEEPTTL') end
redis.call('EXPIREAT', key, expireat, 'GT')
return 1
`)

// jtiRevoke keeps a jti revoked until ARGV[1] unless it already is for
// longer.
var jtiRevoke = redis.NewScript(`
local cur = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if cur >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EXAT', ARGV[1])
return 1
`)

// Create stores a new session and adds it to its user's index. It returns an
// *InvalidError (ErrInvalid) for bad params. If the user already has
// MaxSessionsPerUser sessions, the ones closest to expiry are ended and
// Created.Evicted names them. When ending them fails, the error comes with
// a Created whose Evicted names the sessions that may have ended, so that
// the caller can still drop them from caches.
func (s *RedisStore) Create(ctx context.Context, p Params) (Created, error) {
	now := s.o.Now()
	id := NewID()
	r, err := newRecord(p, id, now, s.o)
	if err != nil {
		return Created{}, err
	}
	keyHash := id.keyHash()
	key := s.sessionKey(keyHash)
	exp := r.expiry(s.o.IdleTimeout)
	// The session is written before it is indexed: a revoke-all running in
	// between misses it in the index, but the index write that follows
	// makes it visible to the next one. The reverse order could leave a
	// live session that no index names.
	_, err = s.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key, r.fields()...)
		p.ExpireAt(ctx, key, time.Unix(exp, 0))
		return nil
	})
	if err != nil {
		return Created{}, fmt.Errorf("session: create: %w", err)
	}
	evicted, err := indexAdd.Run(ctx, s.client, []string{s.indexKey(p.UserID)},
		now.Unix(), exp, keyHash, s.o.MaxSessionsPerUser).StringSlice()
	if err != nil {
		// Without an index entry the session could not be listed or
		// revoked with the user's others, so it must not live on.
		_ = s.client.Del(context.WithoutCancel(ctx), key).Err()
		return Created{}, fmt.Errorf("session: create: index: %w", err)
	}
	var handles []string
	for _, h := range evicted {
		handles = append(handles, handleOf(h))
	}
	if len(evicted) > 0 {
		if _, err := s.unindex(ctx, p.UserID, evicted); err != nil {
			return Created{Evicted: handles}, fmt.Errorf("session: create: evict: %w", err)
		}
	}
	return Created{
		ID: id, Handle: r.handle, ExpiresAt: time.Unix(exp, 0),
		AbsoluteExpiresAt: time.Unix(r.absoluteExpiry, 0), Evicted: handles,
	}, nil
}

// load reads a session by key hash. It returns ErrNotFound when absent and
// an error wrapping errCorrupt when it cannot be decoded.
func (s *RedisStore) load(ctx context.Context, keyHash string) (record, error) {
	return s.loadKey(ctx, s.sessionKey(keyHash))
}

func (s *RedisStore) loadKey(ctx context.Context, key string) (record, error) {
	m, err := s.client.HGetAll(ctx, key).Result()
	if err != nil {
		return record{}, err
	}
	if len(m) == 0 {
		return record{}, ErrNotFound
	}
	return decodeRecord(m, key[len(key)-keyHashLength:])
}

// Lookup returns the identity of the live session rawID. A malformed ID,
// a missing session and an expired one are Reasons; the error is non-nil
// only when Redis cannot be reached. Identity.SessionHandle is the handle,
// never the ID. At most once per TouchInterval per session it records the
// access, which extends the idle timeout.
func (s *RedisStore) Lookup(ctx context.Context, rawID string) (resolver.Identity, resolver.Reason, error) {
	id, err := ParseID(rawID)
	if err != nil {
		return resolver.Identity{}, resolver.ReasonMalformedSession, nil
	}
	key := s.sessionKeyOf(id)
	keyHash := key[len(key)-keyHashLength:]
	r, err := s.loadKey(ctx, key)
	switch {
	case errors.Is(err, ErrNotFound):
		return resolver.Identity{}, resolver.ReasonSessionNotFound, nil
	case errors.Is(err, errCorrupt):
		// Denied like a missing session (the user logs in again), but a
		// writer is producing bad records: say so, by handle only.
		s.o.Logger.WarnContext(ctx, "session: corrupt stored session", "handle", handleOf(keyHash), "error", err)
		return resolver.Identity{}, resolver.ReasonSessionNotFound, nil
	case err != nil:
		return resolver.Identity{}, resolver.ReasonNone, fmt.Errorf("session: lookup: %w", err)
	}
	now := s.o.Now().Unix()
	if now >= r.expiry(s.o.IdleTimeout) {
		return resolver.Identity{}, resolver.ReasonSessionExpired, nil
	}
	if r.needsTouch(now, s.o.TouchInterval) {
		if err := s.touch(ctx, keyHash, &r, now); err != nil {
			// The session was valid when read; a lost refresh only
			// shortens its idle timeout.
			s.o.Logger.WarnContext(ctx, "session: refresh last access", "handle", r.handle, "error", err)
		}
	}
	return r.identity(s.o.IdleTimeout), resolver.ReasonNone, nil
}

// touch records an access at now. The index is raised first: its score must
// never fall below the session's expiry, or pruning would drop a live
// session from it.
func (s *RedisStore) touch(ctx context.Context, keyHash string, r *record, now int64) error {
	next := *r
	next.lastAccess = now
	exp := next.expiry(s.o.IdleTimeout)
	indexed, err := indexTouch.Run(ctx, s.client, []string{s.indexKey(r.userID)}, keyHash, exp).Int()
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	if indexed == 0 {
		return nil // revoked meanwhile; let it end
	}
	if err := sessionTouch.Run(ctx, s.client, []string{s.sessionKey(keyHash)}, now, exp).Err(); err != nil {
		return fmt.Errorf("session: %w", err)
	}
	*r = next
	return nil
}

// Get returns the live session rawID. It returns an *InvalidError for a
// malformed ID and ErrNotFound when the session is missing or expired. It
// does not record an access.
func (s *RedisStore) Get(ctx context.Context, rawID string) (Session, error) {
	id, err := ParseID(rawID)
	if err != nil {
		return Session{}, err
	}
	r, err := s.load(ctx, id.keyHash())
	if err != nil {
		return Session{}, fmt.Errorf("session: get: %w", err)
	}
	if s.o.Now().Unix() >= r.expiry(s.o.IdleTimeout) {
		return Session{}, fmt.Errorf("session: get: %w", ErrNotFound)
	}
	return r.session(s.o.IdleTimeout), nil
}

// List returns the user's live sessions, oldest first. It drops expired and
// vanished sessions from the user's index on the way. It returns an
// *InvalidError for an invalid user ID.
func (s *RedisStore) List(ctx context.Context, userID string) ([]Session, error) {
	if err := ValidateUserID(userID); err != nil {
		return nil, err
	}
	now := s.o.Now().Unix()
	idx := s.indexKey(userID)
	var members *redis.StringSliceCmd
	_, err := s.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRemRangeByScore(ctx, idx, "-inf", strconv.FormatInt(now, 10))
		members = p.ZRange(ctx, idx, 0, -1)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("session: list: %w", err)
	}
	hashes := members.Val()
	cmds := make([]*redis.MapStringStringCmd, len(hashes))
	if len(hashes) > 0 {
		_, err = s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, h := range hashes {
				cmds[i] = p.HGetAll(ctx, s.sessionKey(h))
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("session: list: %w", err)
		}
	}
	sessions := make([]Session, 0, len(hashes))
	var gone []any
	for i, cmd := range cmds {
		m := cmd.Val()
		if len(m) == 0 {
			gone = append(gone, hashes[i])
			continue
		}
		r, err := decodeRecord(m, hashes[i])
		if err != nil {
			return nil, fmt.Errorf("session: list: %w", err)
		}
		if now >= r.expiry(s.o.IdleTimeout) {
			continue
		}
		sessions = append(sessions, r.session(s.o.IdleTimeout))
	}
	if len(gone) > 0 {
		if err := s.client.ZRem(ctx, idx, gone...).Err(); err != nil {
			return nil, fmt.Errorf("session: list: %w", err)
		}
	}
	sortSessions(sessions)
	return sessions, nil
}

// Revoke deletes the session rawID and returns whose it was. It returns an
// *InvalidError for a malformed ID and ErrNotFound when there is no such
// session.
func (s *RedisStore) Revoke(ctx context.Context, rawID string) (Revoked, error) {
	id, err := ParseID(rawID)
	if err != nil {
		return Revoked{}, err
	}
	keyHash := id.keyHash()
	key := s.sessionKey(keyHash)
	var user *redis.StringCmd
	_, err = s.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		user = p.HGet(ctx, key, fieldUserID)
		p.Del(ctx, key)
		return nil
	})
	if errors.Is(err, redis.Nil) {
		return Revoked{}, fmt.Errorf("session: revoke: %w", ErrNotFound)
	}
	if err != nil {
		return Revoked{}, fmt.Errorf("session: revoke: %w", err)
	}
	if err := s.client.ZRem(ctx, s.indexKey(user.Val()), keyHash).Err(); err != nil {
		return Revoked{}, fmt.Errorf("session: revoke: index: %w", err)
	}
	return Revoked{UserID: user.Val(), Handle: handleOf(keyHash)}, nil
}

// RevokeUser deletes every session of the user and returns how many there
// were. The index entries are removed only after their sessions, so a
// failed call can be retried. It returns an *InvalidError for an invalid
// user ID.
//
// Lookup keeps no per-user cut-off for sessions: since a session is written
// before it is indexed and a lookup never recreates a deleted one, every
// session either is in the index when RevokeUser reads it or was created
// after that read. A cut-off would need the user ID before the session is
// read, i.e. a second round trip on every lookup.
func (s *RedisStore) RevokeUser(ctx context.Context, userID string) (int, error) {
	if err := ValidateUserID(userID); err != nil {
		return 0, err
	}
	idx := s.indexKey(userID)
	hashes, err := s.client.ZRange(ctx, idx, 0, -1).Result()
	if err != nil {
		return 0, fmt.Errorf("session: revoke user: %w", err)
	}
	if len(hashes) == 0 {
		return 0, nil
	}
	n, err := s.unindex(ctx, userID, hashes)
	if err != nil {
		return 0, fmt.Errorf("session: revoke user: %w", err)
	}
	return n, nil
}

// unindex deletes the user's sessions with these key hashes and then their
// index entries, and returns how many sessions existed. Deleting first lets
// a failed call be retried from the index.
func (s *RedisStore) unindex(ctx context.Context, userID string, keyHashes []string) (int, error) {
	n, err := s.deleteSessions(ctx, keyHashes)
	if err != nil {
		return 0, err
	}
	members := make([]any, len(keyHashes))
	for i, h := range keyHashes {
		members[i] = h
	}
	if err := s.client.ZRem(ctx, s.indexKey(userID), members...).Err(); err != nil {
		return 0, err
	}
	return n, nil
}

// deleteSessions deletes session keys one by one in a pipeline (they live
// in different Cluster slots) and returns how many existed.
func (s *RedisStore) deleteSessions(ctx context.Context, keyHashes []string) (int, error) {
	cmds := make([]*redis.IntCmd, len(keyHashes))
	_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, h := range keyHashes {
			cmds[i] = p.Del(ctx, s.sessionKey(h))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, c := range cmds {
		n += int(c.Val())
	}
	return n, nil
}

// RevokeToken revokes the JWT with this jti until the time it would expire
// anyway (callers pass now plus the longest token lifetime when they do not
// know; either way plus the verifier's leeway). An empty issuer revokes the
// jti of every issuer; otherwise only that issuer's token. A time in the
// past stores nothing; a revocation already kept longer stays. It returns
// an *InvalidError for an invalid issuer or jti.
func (s *RedisStore) RevokeToken(ctx context.Context, issuer, jti string, until time.Time) error {
	if err := validateTokenRevocation(issuer, jti); err != nil {
		return err
	}
	now := s.o.Now()
	if !until.After(now) {
		return nil
	}
	if err := jtiRevoke.Run(ctx, s.client, []string{s.jtiKey(issuer, jti)}, ceilUnix(until)).Err(); err != nil {
		return fmt.Errorf("session: revoke token: %w", err)
	}
	return nil
}

func validateTokenRevocation(issuer, jti string) error {
	if issuer != "" {
		if err := ValidateIssuer(issuer); err != nil {
			return err
		}
	}
	return ValidateJTI(jti)
}

// RevokeUserTokens revokes every JWT of the user issued before the given
// time (to the second, rounded up), remembering it for keep after that time:
// the longest lifetime a token of the user can have plus the verifier's
// leeway. An empty issuer revokes the user's tokens from every issuer;
// otherwise only that issuer's. A later cut-off already stored wins, and a
// longer retention already stored stays. It returns an *InvalidError for an
// invalid issuer or user ID, or keep <= 0.
func (s *RedisStore) RevokeUserTokens(ctx context.Context, issuer, userID string, before time.Time, keep time.Duration) error {
	cutoff, until, err := userCutoffArgs(issuer, userID, before, keep)
	if err != nil {
		return err
	}
	if until <= s.o.Now().Unix() {
		return nil
	}
	if err := userCutoff.Run(ctx, s.client, []string{s.userTokensKey(issuer, userID)}, cutoff, until).Err(); err != nil {
		return fmt.Errorf("session: revoke user tokens: %w", err)
	}
	return nil
}

func userCutoffArgs(issuer, userID string, before time.Time, keep time.Duration) (cutoff, until int64, err error) {
	if issuer != "" {
		if err := ValidateIssuer(issuer); err != nil {
			return 0, 0, err
		}
	}
	if err := ValidateUserID(userID); err != nil {
		return 0, 0, err
	}
	if keep <= 0 {
		return 0, 0, invalid("keep", "must be positive")
	}
	cutoff = ceilUnix(before)
	return cutoff, cutoff + int64((keep+time.Second-1)/time.Second), nil
}

// TokenRevoked reports whether the JWT id was revoked by its jti
// (id.TokenID) or by a cut-off of its user (id.UserID) later than its
// id.IssuedAt, each either for every issuer or for id.Issuer; a token
// without iat counts as issued before any cut-off. It makes one round trip
// and returns an error only when Redis cannot be reached.
func (s *RedisStore) TokenRevoked(ctx context.Context, id resolver.Identity) (bool, error) {
	// Positions: jti (all issuers), jti (this issuer), cut-off (all),
	// cut-off (this issuer). An empty name is not read.
	var keys [4]string
	iss := issuerHash(id.Issuer)
	if id.TokenID != "" {
		keys[0] = s.jtiKey("", id.TokenID)
		if iss != "" {
			keys[1] = withIssuer(keys[0], iss)
		}
	}
	if id.UserID != "" {
		keys[2] = s.userTokensKey("", id.UserID)
		if iss != "" {
			keys[3] = withIssuer(keys[2], iss)
		}
	}
	var vals [4]optString
	if err := s.getKeys(ctx, keys[:], vals[:]); err != nil {
		return false, fmt.Errorf("session: token revoked: %w", err)
	}
	now := s.o.Now().Unix()
	// Unreadable values fail closed: someone meant to revoke something.
	for _, jti := range vals[:2] {
		if !jti.ok {
			continue
		}
		until, err := strconv.ParseInt(jti.val, 10, 64)
		if err != nil || until > now {
			return true, nil
		}
	}
	for _, user := range vals[2:] {
		if !user.ok {
			continue
		}
		cutoff, err := strconv.ParseInt(user.val, 10, 64)
		if err != nil || id.IssuedAt.IsZero() || id.IssuedAt.Unix() < cutoff {
			return true, nil
		}
	}
	return false, nil
}

// optString is a string value that may be missing.
type optString struct {
	val string
	ok  bool
}

// getKeys reads the (at most four) string keys named in keys into out (same positions; an
// empty name is skipped and stays missing) in one round trip. On one server
// that is one MGET; in Cluster, where the keys live in different slots, GETs
// in a pipeline (MGET would fail with CROSSSLOT), which go-redis sends to
// the nodes concurrently.
func (s *RedisStore) getKeys(ctx context.Context, keys []string, out []optString) error {
	var names [4]string
	var pos [4]int
	n := 0
	for i, k := range keys {
		if k != "" {
			names[n], pos[n] = k, i
			n++
		}
	}
	switch {
	case n == 0:
		return nil
	case n == 1:
		v, err := s.client.Get(ctx, names[0]).Result()
		if errors.Is(err, redis.Nil) {
			return nil
		}
		if err != nil {
			return err
		}
		out[pos[0]] = optString{v, true}
		return nil
	case s.single:
		vals, err := s.client.MGet(ctx, names[:n]...).Result()
		if err != nil {
			return err
		}
		for i, v := range vals {
			out[pos[i]].val, out[pos[i]].ok = v.(string)
		}
		return nil
	}
	var cmds [4]*redis.StringCmd
	_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range names[:n] {
			cmds[i] = p.Get(ctx, k)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	// Pipelined reports only the first failure, which may be a redis.Nil
	// ahead of a real one.
	for i, c := range cmds[:n] {
		switch err := c.Err(); {
		case err == nil:
			out[pos[i]] = optString{c.Val(), true}
		case !errors.Is(err, redis.Nil):
			return err
		}
	}
	return nil
}

// Ping checks that Redis answers.
func (s *RedisStore) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("session: ping: %w", err)
	}
	return nil
}

// Close closes the Redis client.
func (s *RedisStore) Close() error { return s.client.Close() }

func sortSessions(ss []Session) {
	slices.SortFunc(ss, func(a, b Session) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.Handle, b.Handle)
	})
}
