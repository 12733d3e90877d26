package cache_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authresolver/authresolver/cache"
	"github.com/authresolver/authresolver/resolver"
)

// The cost of a resolve answered from L1, next to the cost of serving an
// empty handler the same way (httptest.NewRecorder, a prebuilt request):
// the difference is what the resolver adds on the hot path. Target (issue
// 4): under 2 µs and at most 5 allocations over the empty handler.
//
//	go test -run '^$' -bench . -benchmem -count 6 ./cache

// benchHandler is the production resolve handler (resolver.Handler with
// metrics and L1, routing by itself as on the resolve listener) over fakes that fail the benchmark if a warm request reaches
// them.
func benchHandler(b *testing.B) http.Handler {
	b.Helper()
	exp := time.Now().Add(24 * time.Hour)
	tokens := &fakeTokens{VerifyFn: func(context.Context, string) (resolver.Identity, resolver.Reason, error) {
		return resolver.Identity{
			Credential: resolver.CredentialJWT, UserID: "alice", Issuer: "https://idp.test", TokenID: "j1",
			Verified: true, Roles: []string{"admin", "dev"}, Scopes: []string{"read"}, AMR: []string{"pwd"},
			AuthenticatedAt: time.Now(), IssuedAt: time.Now(), ExpiresAt: exp,
		}, resolver.ReasonNone, nil
	}}
	sessions := &fakeSessions{LookupFn: func(context.Context, string) (resolver.Identity, resolver.Reason, error) {
		return resolver.Identity{
			Credential: resolver.CredentialSession, UserID: "bob", SessionHandle: "h-bob",
			Verified: true, AMR: []string{"pwd"}, AuthenticatedAt: time.Now(), IssuedAt: time.Now(), ExpiresAt: exp,
		}, resolver.ReasonNone, nil
	}}
	h := resolver.New(resolver.Options{
		Tokens: tokens, Sessions: sessions, Revocations: &fakeRevocations{},
		Cache: cache.NewL1(cache.L1Options{}), SessionCookie: "session", CacheTTL: time.Hour,
		Metrics: resolver.NewMetrics(prometheus.NewRegistry()),
	})
	b.Cleanup(func() {
		if n := tokens.calls.Load() + sessions.calls.Load(); n > 2 {
			b.Errorf("%d verifications/lookups: warm requests missed L1", n)
		}
	})
	return h
}

func serveBench(b *testing.B, h http.Handler, req *http.Request, wantCode int) {
	b.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req) // warm
	if w.Code != wantCode {
		b.Fatalf("status %d, want %d", w.Code, wantCode)
	}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
}

func BenchmarkEmptyHandler(b *testing.B) {
	h := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	serveBench(b, h, bearerRequest(testToken), http.StatusOK)
}

// BenchmarkStaticHeaders is a handler that writes the same
// response headers as an L1 hit of a JWT, prepared in advance: the cost of
// emitting them (a fresh header map grown to 11 entries, and the recorder's
// snapshot of it on WriteHeader), apart from deciding what they are.
func BenchmarkStaticHeaders(b *testing.B) {
	w := httptest.NewRecorder()
	benchHandler(b).ServeHTTP(w, bearerRequest(testToken))
	type field struct {
		key string
		val []string
	}
	var fields []field
	for k, v := range w.Result().Header {
		fields = append(fields, field{k, v})
	}
	r := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hdr := w.Header()
		for _, f := range fields {
			hdr[f.key] = f.val
		}
		w.WriteHeader(http.StatusOK)
	})
	b.Logf("%d headers", len(fields))
	serveBench(b, r, bearerRequest(testToken), http.StatusOK)
}

func BenchmarkL1Hit(b *testing.B) {
	b.Run("jwt", func(b *testing.B) {
		serveBench(b, benchHandler(b), bearerRequest(testToken), http.StatusOK)
	})
	b.Run("session", func(b *testing.B) {
		serveBench(b, benchHandler(b), cookieRequest(testSession), http.StatusOK)
	})
}

// BenchmarkL1SetFull stores new verdicts into a full cache of the default
// size (200,000 entries, 3,125 per shard), none expired: the cost of
// making room, which a flood of distinct credentials pays on every miss.
func BenchmarkL1SetFull(b *testing.B) {
	c := cache.NewL1(cache.L1Options{})
	exp := time.Now().Add(time.Hour)
	vs := make([]*resolver.Verdict, 1<<16) // distinct users: short tag lists
	for i := range vs {
		vs[i] = tokenVerdict(fmt.Sprint("u", i), fmt.Sprint("j", i), exp)
	}
	n := 0
	for range cache.DefaultMaxEntries * 2 {
		n++
		c.Set(key(uint64(n), uint64(n)), vs[n%len(vs)], c.Epoch())
	}
	b.ReportAllocs()
	for b.Loop() {
		n++
		c.Set(key(uint64(n), uint64(n)), vs[n%len(vs)], c.Epoch())
	}
}
