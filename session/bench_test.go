package session

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authresolver/authresolver/internal/redistest"
	"github.com/authresolver/authresolver/resolver"
)

// BenchmarkLookup compares the per-request store calls with a plain GET of
// a small key on the same client and redis-server: one round trip each,
// so the ratios show what decoding and hashing add.
//
//	go test -run '^$' -bench Lookup -benchmem -count 5 ./session
func BenchmarkLookup(b *testing.B) {
	client, s, created, token := benchStore(b)
	ctx := b.Context()

	b.Run("bare-get", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := client.Get(ctx, "bench:small").Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("session", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, reason, err := s.Lookup(ctx, string(created.ID)); err != nil || reason != resolver.ReasonNone {
				b.Fatalf("Lookup = %q, %v", reason, err)
			}
		}
	})
	b.Run("jwt-revocation-check", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if revoked, err := s.TokenRevoked(ctx, token); err != nil || revoked {
				b.Fatalf("TokenRevoked = %v, %v", revoked, err)
			}
		}
	})
}

// BenchmarkLookupParallel runs the same calls from 32 goroutines, as a
// server under load does: the cores stay busy, so the time per call is CPU
// (client and redis-server), not the idle machine's wake-up latency that
// dominates one call at a time on a quiet VM.
//
//	go test -run '^$' -bench LookupParallel -benchmem -count 8 ./session
func BenchmarkLookupParallel(b *testing.B) {
	client, s, created, token := benchStore(b)
	ctx := b.Context()
	for _, bc := range []struct {
		name string
		call func() error
	}{
		{"bare-get", func() error { return client.Get(ctx, "bench:small").Err() }},
		{"session", func() error { _, _, err := s.Lookup(ctx, string(created.ID)); return err }},
		{"jwt-revocation-check", func() error { _, err := s.TokenRevoked(ctx, token); return err }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := bc.call(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// benchStore starts a real redis-server with a small key, one session and a
// user cut-off, and returns the client, the store, the session and a JWT
// identity of that user issued after the cut-off.
func benchStore(b *testing.B) (redis.UniversalClient, *RedisStore, Created, resolver.Identity) {
	b.Helper()
	srv := redistest.Start(b)
	client := newClient(b, srv.Addr())
	now := time.Now().Truncate(time.Second)
	s := NewRedisStore(client, Options{Now: func() time.Time { return now }})
	ctx := b.Context()
	if err := client.Set(ctx, "bench:small", "1700000000", 0).Err(); err != nil {
		b.Fatal(err)
	}
	created, err := s.Create(ctx, Params{
		UserID: "user-1234567890", Verified: true,
		Roles: []string{"admin", "editor"}, AMR: []string{"pwd", "mfa"},
		Attributes: map[string]string{"email": "user@example.com"},
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.RevokeUserTokens(ctx, "", "user-1234567890", now.Add(-time.Hour), 2*time.Hour); err != nil {
		b.Fatal(err)
	}
	token := resolver.Identity{Issuer: "https://idp.example", TokenID: "0b7f2c1e-6a4d-4c83-9d1e-2f5a7c9e1b3d", UserID: "user-1234567890", IssuedAt: now}
	return client, s, created, token
}
