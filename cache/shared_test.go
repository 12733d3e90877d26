package cache_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/authresolver/authresolver/cache"
	"github.com/authresolver/authresolver/internal/redistest"
	"github.com/authresolver/authresolver/internal/testclock"
	"github.com/authresolver/authresolver/resolver"
)

const testPrefix = "authresolver:test:"

func newRedis(t *testing.T) (*redistest.Server, *redis.Client) {
	t.Helper()
	srv := redistest.Start(t)
	client := redis.NewClient(&redis.Options{
		Addr: srv.Addr(), DialTimeout: 200 * time.Millisecond,
		ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond,
		MaxRetries: -1, ContextTimeoutEnabled: true,
	})
	t.Cleanup(func() { client.Close() })
	return srv, client
}

func sharedIdentity(exp time.Time) resolver.Identity {
	return resolver.Identity{
		Credential: resolver.CredentialJWT, UserID: "alice", Issuer: "https://idp.test", TokenID: "j1",
		Verified: true, Roles: []string{"admin"}, Scopes: []string{"read", "write"}, AMR: []string{"pwd"},
		AuthenticatedAt: time.Unix(1_700_000_000, 0), IssuedAt: time.Unix(1_700_000_100, 0), ExpiresAt: exp,
		Claims: map[string]string{"email": "alice@example.com"},
	}
}

func TestShared(t *testing.T) {
	srv, client := newRedis(t)
	ctx := context.Background()
	s := cache.NewShared(client, cache.SharedOptions{Prefix: testPrefix})
	cred := resolver.Credential{Kind: resolver.CredentialJWT, Value: testToken}
	id := sharedIdentity(time.Now().Add(time.Hour).Truncate(time.Second))

	_, until, gen, err := s.Get(ctx, cred)
	if err != nil || !until.IsZero() {
		t.Fatalf("Get on an empty Redis = %v, %v; want a miss", until, err)
	}
	if err := s.Set(ctx, cred, id, 10*time.Second, gen); err != nil {
		t.Fatal(err)
	}
	got, until, gen2, err := s.Get(ctx, cred)
	if err != nil || until.IsZero() || gen2 != gen {
		t.Fatalf("Get after Set = %v, gen %d, %v; want a hit at gen %d", until, gen2, err, gen)
	}
	if left := time.Until(until); left <= 0 || left > 10*time.Second {
		t.Errorf("entry usable for %s, want at most the 10s it was set for", left)
	}
	if diff := cmp.Diff(id, got); diff != "" {
		t.Errorf("identity round trip (-want +got):\n%s", diff)
	}

	t.Run("never stores the credential", func(t *testing.T) {
		keys, err := client.Keys(ctx, "*").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			v, _ := client.Get(ctx, k).Result()
			if strings.Contains(k, testToken) || strings.Contains(v, testToken) {
				t.Errorf("key %q or its value holds the credential", k)
			}
			if !strings.HasPrefix(k, testPrefix) {
				t.Errorf("key %q lacks the prefix", k)
			}
		}
	})

	t.Run("lifetime", func(t *testing.T) {
		ttl, err := client.PTTL(ctx, testPrefix+"d:"+sha256Hex("jwt:"+testToken)).Result()
		if err != nil || ttl <= 0 || ttl > 10*time.Second {
			t.Errorf("PTTL = %v, %v; want (0, 10s]", ttl, err)
		}
	})

	t.Run("kind is part of the key", func(t *testing.T) {
		if _, until, _, _ := s.Get(ctx, resolver.Credential{Kind: resolver.CredentialSession, Value: testToken}); !until.IsZero() {
			t.Error("a session cookie with a cached token's value hit")
		}
	})

	t.Run("bump", func(t *testing.T) {
		_, _, before, _ := s.Get(ctx, cred) // a fill reads the generation
		if err := s.Bump(ctx); err != nil {
			t.Fatal(err)
		}
		if _, until, _, _ := s.Get(ctx, cred); !until.IsZero() {
			t.Error("Get hit after Bump")
		}
		// A fill that read the generation before the revocation stores
		// under it: not usable.
		if err := s.Set(ctx, cred, id, 10*time.Second, before); err != nil {
			t.Fatal(err)
		}
		if _, until, _, _ := s.Get(ctx, cred); !until.IsZero() {
			t.Error("an entry written under the generation before Bump is used")
		}
		_, _, now, _ := s.Get(ctx, cred)
		if now != before+1 {
			t.Errorf("generation %d after Bump from %d", now, before)
		}
		if err := s.Set(ctx, cred, id, 10*time.Second, now); err != nil {
			t.Fatal(err)
		}
		if _, until, _, _ := s.Get(ctx, cred); until.IsZero() {
			t.Error("an entry written under the current generation is not used")
		}
	})

	t.Run("expired credential", func(t *testing.T) {
		// Written by a replica whose clock is behind: the key outlives
		// the credential by this process's clock.
		c := resolver.Credential{Kind: resolver.CredentialSession, Value: testSession}
		_, _, gen, _ := s.Get(ctx, c)
		if err := s.Set(ctx, c, sharedIdentity(time.Now().Add(-time.Second)), 10*time.Second, gen); err != nil {
			t.Fatal(err)
		}
		if _, until, _, _ := s.Get(ctx, c); !until.IsZero() {
			t.Error("Get hit for a credential that has expired")
		}
	})

	t.Run("corrupt entry", func(t *testing.T) {
		c := resolver.Credential{Kind: resolver.CredentialJWT, Value: "corrupt"}
		client.Set(ctx, testPrefix+"d:"+sha256Hex("jwt:corrupt"), "{not json", time.Minute)
		if _, until, _, err := s.Get(ctx, c); !until.IsZero() || err != nil {
			t.Errorf("Get of a corrupt entry = %v, %v; want a miss", until, err)
		}
	})

	t.Run("redis down", func(t *testing.T) { // last: Redis stays down
		srv.Stop()
		if _, until, _, err := s.Get(ctx, cred); err == nil || !until.IsZero() {
			t.Errorf("Get with Redis down = %v, %v; want an error", until, err)
		}
		if err := s.Set(ctx, cred, id, time.Second, 0); err == nil {
			t.Error("Set with Redis down: no error")
		}
		if err := s.Bump(ctx); err == nil {
			t.Error("Bump with Redis down: no error")
		}
	})
}

// TestSharedUsesClock: the end of an entry is written and checked by the
// injected clock.
func TestSharedUsesClock(t *testing.T) {
	_, client := newRedis(t)
	ctx := context.Background()
	clk := testclock.New(time.Now())
	s := cache.NewShared(client, cache.SharedOptions{Prefix: testPrefix, Now: clk.Now})
	cred := resolver.Credential{Kind: resolver.CredentialJWT, Value: testToken}
	_, _, gen, err := s.Get(ctx, cred)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, cred, sharedIdentity(clk.Now().Add(time.Hour)), 10*time.Second, gen); err != nil {
		t.Fatal(err)
	}
	_, until, _, _ := s.Get(ctx, cred)
	if want := clk.Now().Add(10 * time.Second); !until.Equal(want) {
		t.Errorf("until = %v, want %v (the injected clock + ttl)", until, want)
	}
	clk.Advance(10 * time.Second) // the key still lives in Redis
	if _, until, _, _ := s.Get(ctx, cred); !until.IsZero() {
		t.Errorf("Get at the entry's end by the injected clock hit (until %v)", until)
	}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
