package session

import (
	"testing"
	"time"

	"github.com/authresolver/authresolver/internal/redistest"
)

func BenchmarkRaw(b *testing.B) {
	srv := redistest.Start(b)
	client := newClient(b, srv.Addr())
	now := time.Now().Truncate(time.Second)
	s := NewRedisStore(noClose{client}, Options{Now: func() time.Time { return now }})
	ctx := b.Context()
	client.Set(ctx, "bench:small", "1700000000", 0)
	created, _ := s.Create(ctx, Params{UserID: "user-1234567890", Verified: true, Roles: []string{"admin", "editor"}, AMR: []string{"pwd", "mfa"}, Attributes: map[string]string{"email": "user@example.com"}})
	key := s.sessionKey(created.ID.keyHash())
	m, _ := client.HGetAll(ctx, key).Result()
	r, _ := decodeRecord(m)
	_ = r
	client.Set(ctx, "bench:big", string(make([]byte, 300)), 0)
	client.HSet(ctx, "h5", "user_id", "user-1234567890", "t", "1700000000 1700000000 1700000000 1700000000", "f", "01", "roles", "admin,editor", "amr", "pwd,mfa")
	client.HSet(ctx, "h3", "user_id", "user-1234567890", "t", "1700000000 1700000000 1700000000 1700000000", "f", "01")
	b.Run("hgetall5", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			client.HGetAll(ctx, "h5")
		}
	})
	b.Run("hgetall3", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			client.HGetAll(ctx, "h3")
		}
	})
	b.Run("get", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			client.Get(ctx, "bench:small")
		}
	})
	b.Run("get300", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			client.Get(ctx, "bench:big")
		}
	})
	b.Run("hgetall", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			client.HGetAll(ctx, key)
		}
	})
	b.Run("hmget", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			client.HMGet(ctx, key, "user_id", "handle", "created_at", "authenticated_at", "last_access_at", "absolute_expires_at", "anonymous", "verified", "roles", "amr", "attributes")
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r, _ := decodeRecord(m)
			_ = r.identity(created.ID.Handle(), time.Hour)
		}
	})
	b.Run("parse+hash", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			id, _ := ParseID(string(created.ID))
			_ = s.sessionKey(id.keyHash())
			_ = id.Handle()
		}
	})
}
