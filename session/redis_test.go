package session

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/authresolver/authresolver/internal/redistest"
	"github.com/authresolver/authresolver/resolver"
)

var prefixSeq atomic.Int64

// uniquePrefix lets the stores of many subtests share one Redis.
func uniquePrefix() string { return fmt.Sprintf("test%d:v1:", prefixSeq.Add(1)) }

// newClient returns a client for a real or miniredis server at addr.
func newClient(t testing.TB, addr string) redis.UniversalClient {
	t.Helper()
	c, err := NewRedisClient(RedisConfig{URL: "redis://" + addr + "/0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// redisStores returns a conformance factory over client.
func redisStores(client redis.UniversalClient) newStoreFunc {
	return func(_ *testing.T, o Options) store {
		o.Prefix = uniquePrefix()
		// The suite never closes a store, so stores share the client.
		return NewRedisStore(client, o)
	}
}

func TestRedisStore(t *testing.T) {
	srv := redistest.Start(t)
	testConformance(t, redisStores(newClient(t, srv.Addr())))
}

func TestRedisStoreMiniredis(t *testing.T) {
	m := miniredis.RunT(t)
	testConformance(t, redisStores(newClient(t, m.Addr())))
}

func TestRedisStoreCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster start takes seconds")
	}
	addrs := redistest.StartCluster(t)
	client, err := NewRedisClient(RedisConfig{Addrs: addrs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	if _, ok := client.(*redis.ClusterClient); !ok {
		t.Fatalf("NewRedisClient with Addrs returned %T, want *redis.ClusterClient", client)
	}
	testConformance(t, redisStores(client))
}

// TestRedisStoreSentinel runs the suite through a Sentinel, configured the
// way cmd/authresolver does from AUTHRESOLVER_REDIS_ADDRS and
// AUTHRESOLVER_REDIS_MASTER_NAME.
func TestRedisStoreSentinel(t *testing.T) {
	master := redistest.Start(t)
	sentinel := redistest.StartSentinel(t, "mymaster", master)
	client, err := NewRedisClient(RedisConfig{Addrs: []string{sentinel}, MasterName: "mymaster"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	if err := client.Ping(t.Context()).Err(); err != nil {
		t.Fatalf("PING through Sentinel: %v", err)
	}
	testConformance(t, redisStores(client))
}

// backend is a Redis to inspect directly in Redis-specific tests.
type backend struct {
	name   string
	client redis.UniversalClient
	real   bool // a real redis-server (PEXPIRETIME, INFO commandstats, DUMP)
}

func backends(t *testing.T) []backend {
	t.Helper()
	srv := redistest.Start(t)
	m := miniredis.RunT(t)
	return []backend{
		{name: "redis-server", client: newClient(t, srv.Addr()), real: true},
		{name: "miniredis", client: newClient(t, m.Addr())},
	}
}

// TestRedisTTLFollowsExpiry checks that the TTL Redis holds is the computed
// expiry, and that Lookup refuses by the injected clock even while Redis
// still holds the key.
func TestRedisTTLFollowsExpiry(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			c := newClock()
			o := Options{Prefix: uniquePrefix(), Now: c.Now, IdleTimeout: time.Hour, Lifetime: 3 * time.Hour}
			s := NewRedisStore(b.client, o)
			created := mustCreate(t, s, Params{UserID: "alice"})
			key := s.sessionKey(created.ID.keyHash())
			idx := s.indexKey("alice")
			start := c.Now()

			checkExpiry := func(wantExp time.Time) {
				t.Helper()
				for _, k := range []string{key, idx} {
					got, err := b.client.ExpireTime(ctx, k).Result()
					if err != nil {
						t.Fatalf("EXPIRETIME %s: %v", k, err)
					}
					if want := time.Duration(wantExp.Unix()) * time.Second; got != want {
						t.Errorf("EXPIRETIME %s = +%v, want +%v", k, time.Unix(int64(got/time.Second), 0).Sub(start), wantExp.Sub(start))
					}
				}
				// PTTL counts from Redis's own clock, which is close to
				// the injected one at the start of the test.
				pttl, err := b.client.PTTL(ctx, key).Result()
				if err != nil {
					t.Fatalf("PTTL: %v", err)
				}
				if want := time.Until(wantExp); pttl < want-2*time.Second || pttl > want+2*time.Second {
					t.Errorf("PTTL = %v, want about %v", pttl, want)
				}
			}
			checkExpiry(start.Add(time.Hour))

			c.Advance(40 * time.Minute) // lookup touches: idle timer restarts
			wantReason(t, s, created.ID, resolver.ReasonNone)
			checkExpiry(start.Add(100 * time.Minute))

			c.Advance(50 * time.Minute) // touches again
			wantReason(t, s, created.ID, resolver.ReasonNone)
			checkExpiry(start.Add(150 * time.Minute))

			c.Advance(50 * time.Minute) // and again; the lifetime caps it
			wantReason(t, s, created.ID, resolver.ReasonNone)
			checkExpiry(start.Add(3 * time.Hour))

			c.Advance(50 * time.Minute) // past the lifetime by the injected clock
			wantReason(t, s, created.ID, resolver.ReasonSessionExpired)
			if n, err := b.client.Exists(ctx, key).Result(); err != nil || n != 1 {
				t.Errorf("EXISTS session key = %d, %v; want Redis to still hold it", n, err)
			}
		})
	}
}

// writeCounter counts the write commands a client sends.
type writeCounter struct {
	mu     sync.Mutex
	counts map[string]int
}

var readCommands = map[string]bool{
	"hgetall": true, "get": true, "ping": true, "hello": true, "client": true,
	"zrange": true, "info": true, "expiretime": true, "pttl": true, "exists": true,
}

func (w *writeCounter) count(cmds ...redis.Cmder) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range cmds {
		if name := c.Name(); !readCommands[name] {
			w.counts[name]++
		}
	}
}

func (w *writeCounter) total() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, c := range w.counts {
		n += c
	}
	return n
}

func (w *writeCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (w *writeCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		// Script.Run tries EVALSHA first; a NOSCRIPT answer ran nothing.
		if !redis.HasErrorPrefix(err, "NOSCRIPT") {
			w.count(cmd)
		}
		return err
	}
}

func (w *writeCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		w.count(cmds...)
		return next(ctx, cmds)
	}
}

// commandCalls returns the calls of each command from INFO commandstats,
// which counts commands run inside scripts too.
func commandCalls(t *testing.T, c redis.UniversalClient) map[string]int {
	t.Helper()
	info, err := c.Info(t.Context(), "commandstats").Result()
	if err != nil {
		t.Fatalf("INFO commandstats: %v", err)
	}
	calls := map[string]int{}
	for line := range strings.SplitSeq(info, "\r\n") {
		name, rest, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":calls=")
		if !ok {
			continue
		}
		n, _, _ := strings.Cut(rest, ",")
		calls[name], _ = strconv.Atoi(n)
	}
	return calls
}

// TestRedisTouchThrottled checks that lookups do not write per request: a
// thousand lookups within a minute cause one refresh of the last access.
func TestRedisTouchThrottled(t *testing.T) {
	srv := redistest.Start(t)
	client := newClient(t, srv.Addr())
	wc := &writeCounter{counts: map[string]int{}}
	client.AddHook(wc)
	c := newClock()
	s := NewRedisStore(client, Options{Now: c.Now, TouchInterval: time.Minute})
	created := mustCreate(t, s, Params{UserID: "alice"})

	writes := []string{"hset", "expireat", "zadd", "set", "del", "zrem"}
	sum := func(calls map[string]int) int {
		n := 0
		for _, w := range writes {
			n += calls[w]
		}
		return n
	}
	for _, round := range []struct {
		name        string
		advance     time.Duration
		wantScripts int // touch = one script on the index, one on the session
		wantWrites  int // hset + expireat on the session, zadd + expireat on the index
	}{
		{"within the first minute", 0, 0, 0},
		{"after TouchInterval", time.Minute, 2, 4},
		{"again after TouchInterval", time.Minute, 2, 4},
	} {
		t.Run(round.name, func(t *testing.T) {
			before, clientBefore := commandCalls(t, client), wc.total()
			c.Advance(round.advance)
			for range 1000 {
				if _, reason, err := s.Lookup(t.Context(), string(created.ID)); err != nil || reason != resolver.ReasonNone {
					t.Fatalf("Lookup = %q, %v", reason, err)
				}
				c.Advance(50 * time.Millisecond) // 1000 lookups in 50 s
			}
			after := commandCalls(t, client)
			if got := wc.total() - clientBefore; got != round.wantScripts {
				t.Errorf("client sent %d write commands, want %d (%v)", got, round.wantScripts, wc.counts)
			}
			if got := sum(after) - sum(before); got != round.wantWrites {
				t.Errorf("Redis ran %d writes (%v), want %d", got, writes, round.wantWrites)
			}
		})
		c.Advance(10 * time.Second) // end the minute that started with the round
	}
}

// TestRedisIndexBounded checks that expired sessions leave the user's index
// and that the index's TTL is its latest expiry.
func TestRedisIndexBounded(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			c := newClock()
			s := NewRedisStore(b.client, Options{Prefix: uniquePrefix(), Now: c.Now, IdleTimeout: time.Hour, MaxSessionsPerUser: 5})
			idx := s.indexKey("alice")
			for range 20 {
				mustCreate(t, s, Params{UserID: "alice", TTL: time.Minute})
			}
			if n, err := b.client.ZCard(ctx, idx).Result(); err != nil || n != 5 {
				t.Errorf("ZCARD after 20 creates with cap 5 = %d, %v; want 5", n, err)
			}
			c.Advance(2 * time.Minute)
			last := mustCreate(t, s, Params{UserID: "alice", TTL: 10 * time.Minute})
			members, err := b.client.ZRange(ctx, idx, 0, -1).Result()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{last.ID.keyHash()}, members); diff != "" {
				t.Errorf("index after expiry (-want +got):\n%s", diff)
			}
			if got, err := b.client.ExpireTime(ctx, idx).Result(); err != nil || got != time.Duration(last.ExpiresAt.Unix())*time.Second {
				t.Errorf("index EXPIRETIME = %v, %v; want %v", got, err, last.ExpiresAt.Unix())
			}
			// Evicted sessions are deleted, not only unindexed.
			keys, err := b.client.Keys(ctx, s.o.Prefix+"s:*").Result()
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) > 6 {
				t.Errorf("%d session keys left, want at most 5 live + 1 new", len(keys))
			}
		})
	}
}

// TestRedisStoreNoRawID scans every key and value after creating sessions
// and looks for the IDs, in text or as raw bytes.
func TestRedisStoreNoRawID(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			if err := b.client.FlushAll(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			s := NewRedisStore(b.client, Options{})
			var ids []ID
			for i := range 20 {
				c := mustCreate(t, s, Params{UserID: fmt.Sprint("user", i%3), Roles: []string{"r"}, Attributes: map[string]string{"a": "b"}})
				ids = append(ids, c.ID)
			}
			for range 50 { // lookups touch nothing here, but must not store either
				lookup(t, s, ids[0])
			}
			if _, err := s.Revoke(ctx, string(ids[1])); err != nil {
				t.Fatal(err)
			}
			if err := s.RevokeToken(ctx, "", "jti", time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if err := s.RevokeUserTokens(ctx, "", "user1", time.Now(), time.Hour); err != nil {
				t.Fatal(err)
			}

			var dump strings.Builder
			iter := b.client.Scan(ctx, 0, "*", 100).Iterator()
			nkeys := 0
			for iter.Next(ctx) {
				key := iter.Val()
				nkeys++
				dump.WriteString(key + "\n")
				typ, err := b.client.Type(ctx, key).Result()
				if err != nil {
					t.Fatal(err)
				}
				switch typ {
				case "hash":
					m, err := b.client.HGetAll(ctx, key).Result()
					if err != nil {
						t.Fatal(err)
					}
					for k, v := range m {
						dump.WriteString(k + "=" + v + "\n")
					}
				case "zset":
					zs, err := b.client.ZRangeWithScores(ctx, key, 0, -1).Result()
					if err != nil {
						t.Fatal(err)
					}
					for _, z := range zs {
						fmt.Fprintf(&dump, "%v %v\n", z.Member, z.Score)
					}
				case "string":
					v, err := b.client.Get(ctx, key).Result()
					if err != nil {
						t.Fatal(err)
					}
					dump.WriteString(v + "\n")
				default:
					t.Errorf("key %s has unexpected type %s", key, typ)
				}
				if b.real {
					d, err := b.client.Dump(ctx, key).Result()
					if err != nil {
						t.Fatal(err)
					}
					dump.WriteString(d + "\n")
				}
			}
			if err := iter.Err(); err != nil {
				t.Fatal(err)
			}
			if want := 19 + 3 + 1 + 1; nkeys != want { // sessions, indexes, jti, cut-off
				t.Errorf("scanned %d keys, want %d", nkeys, want)
			}
			all := dump.String()
			for _, id := range ids {
				raw, _ := decodeID(id)
				if strings.Contains(all, string(id)) || strings.Contains(all, string(raw)) {
					t.Fatalf("Redis holds a raw session ID")
				}
			}
		})
	}
}

// TestRedisLayout writes a session the way LAYOUT.md tells a login service
// to, with plain commands, and reads it back through the store; and checks
// that Create writes exactly the documented fields.
func TestRedisLayout(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			c := newClock()
			now := c.Now().Unix()
			s := NewRedisStore(b.client, Options{Now: c.Now})

			// As a login service in another language would.
			id := "Xq3ZbN1c0lC7yq1mCk8rW0bWl1O0uYcJ2a9bfq8w5tA" // 43 chars, canonical
			sum := sha256Hex(id)
			key := "authresolver:v1:s:" + sum
			idx := "authresolver:v1:{u:" + sha256Hex("user-42") + "}:sessions"
			exp := now + 3600
			if err := b.client.HSet(ctx, key,
				"user_id", "user-42",
				"created_at", now-60,
				"authenticated_at", now-120,
				"absolute_expires_at", now+86400,
				"last_access_at", now-60,
				"anonymous", "0",
				"verified", "1",
				"roles", "admin,editor",
				"amr", "pwd,mfa",
				"attributes", `{"email":"u42@example.com"}`,
			).Err(); err != nil {
				t.Fatal(err)
			}
			for _, cmd := range [][]any{
				{"EXPIREAT", key, exp},
				{"ZADD", idx, exp, sum},
				{"EXPIREAT", idx, exp, "NX"},
				{"EXPIREAT", idx, exp, "GT"},
			} {
				if err := b.client.Do(ctx, cmd...).Err(); err != nil {
					t.Fatalf("%v: %v", cmd, err)
				}
			}
			if got, err := b.client.ExpireTime(ctx, idx).Result(); err != nil || got != time.Duration(exp)*time.Second {
				t.Errorf("index EXPIRETIME after NX+GT = %v, %v; want %d", got, err, exp)
			}

			got, reason := lookup(t, s, ID(id))
			want := resolver.Identity{
				Credential: resolver.CredentialSession, UserID: "user-42", SessionHandle: ID(id).Handle(),
				Verified: true, Roles: []string{"admin", "editor"}, AMR: []string{"pwd", "mfa"},
				AuthenticatedAt: time.Unix(now-120, 0), IssuedAt: time.Unix(now-60, 0),
				ExpiresAt: time.Unix(now+86400, 0), // absolute_expires_at comes before the idle timeout
				Claims:    map[string]string{"email": "u42@example.com"},
			}
			if reason != resolver.ReasonNone {
				t.Fatalf("Lookup of hand-written session: reason %q", reason)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Lookup of hand-written session (-want +got):\n%s", diff)
			}
			if n, err := s.RevokeUser(ctx, "user-42"); err != nil || n != 1 {
				t.Errorf("RevokeUser of hand-written session = %d, %v; want 1", n, err)
			}

			// What Create writes.
			created := mustCreate(t, s, Params{UserID: "user-7", Verified: true, Roles: []string{"a", "b"}, AMR: []string{"pwd"}, Attributes: map[string]string{"k": "v"}})
			m, err := b.client.HGetAll(ctx, "authresolver:v1:s:"+sha256Hex(string(created.ID))).Result()
			if err != nil {
				t.Fatal(err)
			}
			n := strconv.FormatInt(now, 10)
			wantFields := map[string]string{ // defaults left out
				"user_id": "user-7", "created_at": n,
				"absolute_expires_at": strconv.FormatInt(now+int64(DefaultLifetime/time.Second), 10),
				"verified":            "1", "roles": "a,b", "amr": "pwd", "attributes": `{"k":"v"}`,
			}
			if diff := cmp.Diff(wantFields, m); diff != "" {
				t.Errorf("session hash (-want +got):\n%s", diff)
			}
			score, err := b.client.ZScore(ctx, "authresolver:v1:{u:"+sha256Hex("user-7")+"}:sessions", sha256Hex(string(created.ID))).Result()
			if err != nil || int64(score) != created.ExpiresAt.Unix() {
				t.Errorf("index score = %v, %v; want %d", score, err, created.ExpiresAt.Unix())
			}

			// Revocation keys.
			if err := s.RevokeToken(ctx, "", "the-jti", c.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if v, err := b.client.Get(ctx, "authresolver:v1:jti:"+sha256Hex("the-jti")).Result(); err != nil || v != strconv.FormatInt(now+3600, 10) {
				t.Errorf("jti key = %q, %v; want %d", v, err, now+3600)
			}
			if err := s.RevokeUserTokens(ctx, "", "user-7", c.Now(), time.Hour); err != nil {
				t.Fatal(err)
			}
			if v, err := b.client.Get(ctx, "authresolver:v1:{u:"+sha256Hex("user-7")+"}:tokens_revoked_before").Result(); err != nil || v != n {
				t.Errorf("user cut-off key = %q, %v; want %s", v, err, n)
			}

			// Issuer-scoped revocation keys, written by hand as LAYOUT.md
			// says, and read back through the store.
			const iss = "https://idp.example"
			jtiKey := "authresolver:v1:jti:" + sha256Hex("iss-jti") + ":iss:" + sha256Hex(iss)
			userKey := "authresolver:v1:{u:" + sha256Hex("user-8") + "}:tokens_revoked_before:iss:" + sha256Hex(iss)
			for _, cmd := range [][]any{
				{"SET", jtiKey, now + 3600, "EXAT", now + 3600},
				{"SET", userKey, now, "EXAT", now + 3600},
			} {
				if err := b.client.Do(ctx, cmd...).Err(); err != nil {
					t.Fatalf("%v: %v", cmd, err)
				}
			}
			iat := c.Now().Add(-time.Minute)
			for _, tc := range []struct {
				id   resolver.Identity
				want bool
			}{
				{resolver.Identity{Issuer: iss, TokenID: "iss-jti", UserID: "x", IssuedAt: iat}, true},
				{resolver.Identity{Issuer: "https://other.example", TokenID: "iss-jti", UserID: "x", IssuedAt: iat}, false},
				{resolver.Identity{Issuer: iss, UserID: "user-8", IssuedAt: iat}, true},
				{resolver.Identity{Issuer: "https://other.example", UserID: "user-8", IssuedAt: iat}, false},
			} {
				if got, err := s.TokenRevoked(ctx, tc.id); err != nil || got != tc.want {
					t.Errorf("TokenRevoked(%+v) = %v, %v; want %v", tc.id, got, err, tc.want)
				}
			}
			// What the store writes for them.
			if err := s.RevokeToken(ctx, iss, "iss-jti-2", c.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if err := s.RevokeUserTokens(ctx, iss, "user-9", c.Now(), time.Hour); err != nil {
				t.Fatal(err)
			}
			for key, want := range map[string]int64{
				"authresolver:v1:jti:" + sha256Hex("iss-jti-2") + ":iss:" + sha256Hex(iss):                    now + 3600,
				"authresolver:v1:{u:" + sha256Hex("user-9") + "}:tokens_revoked_before:iss:" + sha256Hex(iss): now,
			} {
				if v, err := b.client.Get(ctx, key).Int64(); err != nil || v != want {
					t.Errorf("%s = %d, %v; want %d", key, v, err, want)
				}
				if got, err := b.client.ExpireTime(ctx, key).Result(); err != nil || got != time.Duration(now+3600)*time.Second {
					t.Errorf("EXPIRETIME %s = %v, %v; want %d", key, got, err, now+3600)
				}
			}
		})
	}
}

// TestRedisCorruptSession checks that an undecodable session is denied as
// missing by Lookup and reported by Get.
func TestRedisCorruptSession(t *testing.T) {
	m := miniredis.RunT(t)
	client := newClient(t, m.Addr())
	s := NewRedisStore(client, Options{})
	id := NewID()
	for _, fields := range [][]any{
		{"user_id", "u"},
		{"created_at", "1", "absolute_expires_at", "99999999999"},
		{"user_id", "u", "created_at", "x", "absolute_expires_at", "1"},
		{"user_id", "u", "created_at", "1", "absolute_expires_at", "99999999999", "verified", "yes"},
		{"user_id", "u", "created_at", "1", "absolute_expires_at", "99999999999", "attributes", "[1]"},
	} {
		client.Del(t.Context(), s.sessionKey(id.keyHash()))
		client.HSet(t.Context(), s.sessionKey(id.keyHash()), fields...)
		wantReason(t, s, id, resolver.ReasonSessionNotFound)
		if _, err := s.Get(t.Context(), string(id)); !errors.Is(err, errCorrupt) {
			t.Errorf("Get(%v) error = %v, want errCorrupt", fields, err)
		}
	}
}

// TestRedisRestart stops Redis under a store: lookups fail with an error
// (the resolver answers 503), not a denial, and work again once Redis is
// back, without a new store.
func TestRedisRestart(t *testing.T) {
	srv := redistest.Start(t)
	client, err := NewRedisClient(RedisConfig{URL: srv.URL(), DialTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s := NewRedisStore(client, Options{})
	t.Cleanup(func() { s.Close() })
	created := mustCreate(t, s, Params{UserID: "alice"})
	wantReason(t, s, created.ID, resolver.ReasonNone)

	srv.Stop()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, reason, err := s.Lookup(ctx, string(created.ID))
	if err == nil || reason != resolver.ReasonNone {
		t.Errorf("Lookup with Redis down = %q, %v; want an error and no reason", reason, err)
	}
	if ok, err := s.TokenRevoked(ctx, resolver.Identity{TokenID: "j", UserID: "alice"}); err == nil {
		t.Errorf("TokenRevoked with Redis down = %v, nil; want an error", ok)
	}
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping with Redis down succeeded")
	}

	srv.Restart() // nothing persisted: the old session is gone
	wantReason(t, s, created.ID, resolver.ReasonSessionNotFound)
	again := mustCreate(t, s, Params{UserID: "alice"})
	wantReason(t, s, again.ID, resolver.ReasonNone)
}

func decodeID(id ID) ([]byte, error) {
	return base64RawURL.DecodeString(string(id))
}

// TestRedisUserCutoffRetention checks that neither the stored cut-off nor
// how long it is kept ever shrinks.
func TestRedisUserCutoffRetention(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			c := newClock()
			s := NewRedisStore(b.client, Options{Prefix: uniquePrefix(), Now: c.Now})
			key := s.userTokensKey("", "alice")
			now := c.Now()
			for _, step := range []struct {
				before     time.Time
				keep       time.Duration
				wantValue  time.Time
				wantExpire time.Time
			}{
				{now, time.Hour, now, now.Add(time.Hour)},
				{now.Add(-time.Minute), 2 * time.Hour, now, now.Add(119 * time.Minute)}, // later cut-off kept, kept longer
				{now.Add(-time.Minute), 10 * time.Minute, now, now.Add(119 * time.Minute)},
				{now.Add(time.Minute), time.Minute, now.Add(time.Minute), now.Add(119 * time.Minute)}, // later cut-off, retention stays
				{now.Add(2 * time.Minute), 3 * time.Hour, now.Add(2 * time.Minute), now.Add(182 * time.Minute)},
			} {
				if err := s.RevokeUserTokens(ctx, "", "alice", step.before, step.keep); err != nil {
					t.Fatal(err)
				}
				v, err := b.client.Get(ctx, key).Int64()
				if err != nil || v != step.wantValue.Unix() {
					t.Errorf("cut-off = %d, %v; want %d", v, err, step.wantValue.Unix())
				}
				exp, err := b.client.ExpireTime(ctx, key).Result()
				if err != nil || exp != time.Duration(step.wantExpire.Unix())*time.Second {
					t.Errorf("EXPIRETIME = %v, %v; want %d", exp, err, step.wantExpire.Unix())
				}
			}
		})
	}
}

// roundTrips counts the calls a client makes to Redis: each command or
// pipeline sent is one round trip.
type roundTrips struct{ n atomic.Int64 }

func (r *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmd)
	}
}
func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmds)
	}
}

// TestRedisTokenRevokedOneRoundTrip checks that the revocation check of a
// JWT reads its four keys (jti and user cut-off, each for every issuer and
// for its issuer) in one round trip.
func TestRedisTokenRevokedOneRoundTrip(t *testing.T) {
	srv := redistest.Start(t)
	client := newClient(t, srv.Addr())
	s := NewRedisStore(client, Options{Prefix: uniquePrefix()})
	if err := s.RevokeUserTokens(t.Context(), "https://idp.example", "alice", time.Now(), time.Hour); err != nil {
		t.Fatal(err)
	}
	rt := &roundTrips{}
	client.AddHook(rt)
	id := resolver.Identity{Issuer: "https://idp.example", TokenID: "j", UserID: "alice", IssuedAt: time.Now().Add(-time.Hour)}
	if got, err := s.TokenRevoked(t.Context(), id); err != nil || !got {
		t.Fatalf("TokenRevoked = %v, %v; want true", got, err)
	}
	if got := rt.n.Load(); got != 1 {
		t.Errorf("TokenRevoked made %d round trips, want 1", got)
	}
}

// failLast makes the last command of every pipeline fail after it ran, as
// a lost connection to one Cluster node does.
type failLast struct{}

func (failLast) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (failLast) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (failLast) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		cmds[len(cmds)-1].SetErr(errors.New("connection lost"))
		return err
	}
}

// TestRedisTokenRevokedPipelineError checks the Cluster read path: a key
// that could not be read is an error (503), even when an earlier key of the
// pipeline was merely missing (go-redis then reports only redis.Nil).
func TestRedisTokenRevokedPipelineError(t *testing.T) {
	srv := redistest.Start(t)
	client := newClient(t, srv.Addr())
	s := NewRedisStore(client, Options{Prefix: uniquePrefix()})
	s.single = false // read as in Cluster: GETs in a pipeline
	if err := s.RevokeUserTokens(t.Context(), "https://idp.example", "alice", time.Now(), time.Hour); err != nil {
		t.Fatal(err)
	}
	id := resolver.Identity{Issuer: "https://idp.example", TokenID: "j", UserID: "alice", IssuedAt: time.Now().Add(-time.Hour)}
	if got, err := s.TokenRevoked(t.Context(), id); err != nil || !got {
		t.Fatalf("TokenRevoked = %v, %v; want true", got, err)
	}
	client.AddHook(failLast{})
	if got, err := s.TokenRevoked(t.Context(), id); err == nil {
		t.Errorf("TokenRevoked with the revoking key unreadable = %v, nil; want an error", got)
	}
}
