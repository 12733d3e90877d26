package main

// In-process benchmarks of the resolve hot paths, for pprof. They wire the
// resolver as cmd/authresolver does (jwks verifier over a file:// JWKS, L1,
// metrics, the chi routes) and call it without the network, so that a
// profile shows the resolver's own work:
//
//	go test ./bench -run '^$' -bench 'Resolve/jwt-l1-hit' -benchmem \
//	    -cpuprofile bench/out/cpu.prof -memprofile bench/out/mem.prof
//	go tool pprof -top bench/out/cpu.prof
//	go test ./bench -run '^$' -bench CachedDecisions -benchtime 1x -memprofile bench/out/heap.prof
//	go tool pprof -sample_index=inuse_space -top bench/out/heap.prof

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authresolver/authresolver/cache"
	"github.com/authresolver/authresolver/internal/loadgen"
	"github.com/authresolver/authresolver/internal/mint"
	"github.com/authresolver/authresolver/internal/redistest"
	"github.com/authresolver/authresolver/jwks"
	"github.com/authresolver/authresolver/resolver"
	"github.com/authresolver/authresolver/session"
	"github.com/prometheus/client_golang/prometheus"
)

type hotpath struct {
	is      *mint.Issuer
	handler http.Handler
	store   *session.MemoryStore
}

// newHotpath wires a resolver like serve.go does. redisURL "" keeps
// sessions and revocations in memory and turns the shared cache off.
func newHotpath(tb testing.TB, cacheTTL time.Duration, redisURL string) *hotpath {
	tb.Helper()
	is, err := mint.New("https://issuer.bench.test", "bench-1")
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(tb.TempDir(), "jwks.json")
	if err := os.WriteFile(path, is.JWKS(), 0o644); err != nil {
		tb.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	v, err := jwks.New(jwks.Options{
		Issuer: is.URL, URL: "file://" + path, Algorithms: []string{"ES256"},
		Leeway: 30 * time.Second, Metrics: jwks.NewMetrics(reg),
	})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	if err := v.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(v.Close)

	opts := resolver.Options{
		Tokens:        jwks.NewSet(v),
		SessionCookie: "session",
		CacheTTL:      cacheTTL,
		Metrics:       resolver.NewMetrics(reg),
	}
	h := &hotpath{is: is}
	if redisURL == "" {
		h.store = session.NewMemoryStore(session.Options{})
		opts.Sessions, opts.Revocations = h.store, h.store
	} else {
		client, err := session.NewRedisClient(session.RedisConfig{URL: redisURL})
		if err != nil {
			tb.Fatal(err)
		}
		rs := session.NewRedisStore(client, session.Options{})
		tb.Cleanup(func() { rs.Close() })
		opts.Sessions, opts.Revocations = rs, rs
		if cacheTTL > 0 {
			opts.Shared = cache.NewShared(client, cache.SharedOptions{Prefix: session.DefaultPrefix})
		}
	}
	if cacheTTL > 0 {
		l1 := cache.NewL1(cache.L1Options{})
		cache.NewMetrics(reg, l1)
		opts.Cache = l1
	}
	h.handler = resolver.New(opts)
	return h
}

// writer is a ResponseWriter that keeps only the status. Its header map is
// cleared, not reallocated, between requests: net/http's per-response map is
// the same for the ceiling and not the resolver's to save.
type writer struct {
	h      http.Header
	status int
}

func (w *writer) Header() http.Header         { return w.h }
func (w *writer) Write(b []byte) (int, error) { return len(b), nil }
func (w *writer) WriteHeader(status int)      { w.status = status }

func (h *hotpath) serve(tb testing.TB, w *writer, r *http.Request) {
	clear(w.h)
	w.status = 0
	h.handler.ServeHTTP(w, r)
	if w.status != http.StatusOK || len(w.h) < 11 {
		tb.Fatalf("status %d, %d headers: %v", w.status, len(w.h), w.h)
	}
}

func BenchmarkResolve(b *testing.B) {
	b.Run("jwt-l1-hit", func(b *testing.B) {
		h := newHotpath(b, 5*time.Second, "")
		r := httptest.NewRequest("GET", "/resolve", nil)
		r.Header.Set("Authorization", "Bearer "+h.is.Token("user-1", "jti-1", time.Now()))
		w := &writer{h: http.Header{}}
		h.serve(b, w, r) // fill the cache
		b.ReportAllocs()
		for b.Loop() {
			h.serve(b, w, r)
		}
	})
	b.Run("session-l1-hit", func(b *testing.B) {
		h := newHotpath(b, 5*time.Second, "")
		c, err := h.store.Create(context.Background(), session.Params{
			UserID: "user-1", Verified: true, Roles: []string{"reader", "writer"}, AMR: []string{"pwd", "otp"},
		})
		if err != nil {
			b.Fatal(err)
		}
		r := httptest.NewRequest("GET", "/resolve", nil)
		r.Header.Set("Cookie", "session="+string(c.ID))
		w := &writer{h: http.Header{}}
		h.serve(b, w, r)
		b.ReportAllocs()
		for b.Loop() {
			h.serve(b, w, r)
		}
	})
	// Every request a token never seen, as scenario 3: full verification
	// and a cache fill. With redis, the L2 cache and the revocation check go
	// to a real redis-server as in production.
	for _, backend := range []string{"memory", "redis"} {
		b.Run("jwt-fresh-"+backend, func(b *testing.B) {
			url := ""
			if backend == "redis" {
				url = redistest.Start(b).URL()
			}
			h := newHotpath(b, 5*time.Second, url)
			toks := h.is.Many(b.N, fmt.Sprintf("n%d", b.N))
			reqs := make([]*http.Request, b.N)
			for i, tok := range toks {
				reqs[i] = httptest.NewRequest("GET", "/resolve", nil)
				reqs[i].Header.Set("Authorization", "Bearer "+tok)
			}
			w := &writer{h: http.Header{}}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				h.serve(b, w, reqs[i])
			}
		})
	}
}

// sink keeps the last BenchmarkCachedDecisions handler alive, so that an
// inuse_space heap profile written at the end shows its cache.
var sink *hotpath

// BenchmarkCachedDecisions reports the heap that live cached decisions keep:
// the in-process share of "RSS with 100,000 cached decisions".
func BenchmarkCachedDecisions(b *testing.B) {
	const n = 100_000
	h := newHotpath(b, time.Hour, "")
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	toks := h.is.Many(n, "heap")
	w := &writer{h: http.Header{}}
	b.ResetTimer()
	for _, tok := range toks {
		r := httptest.NewRequest("GET", "/resolve", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		h.serve(b, w, r)
	}
	b.StopTimer()
	toks = nil
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heap-B/decision")
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "heap-MiB")
	sink = h
}

// BenchmarkServe puts the resolver (and, for comparison, the ceiling's
// handler) behind a real net/http server on loopback with the resolver's
// server settings, driven by the harness's client over 32 connections. One
// iteration is one request. Profile with -cpuprofile and look at the
// server's share with -focus 'http.\(\*conn\).serve'.
func BenchmarkServe(b *testing.B) {
	h := newHotpath(b, 5*time.Second, "")
	token := h.is.Token("user-1", "jti-1", time.Now())
	ceiling := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hdr := w.Header()
		for k, v := range ceilingHeaders {
			hdr[k] = v
		}
		w.WriteHeader(http.StatusOK)
	})
	for _, c := range []struct {
		name    string
		handler http.Handler
	}{{"ceiling", ceiling}, {"jwt-l1-hit", h.handler}} {
		b.Run(c.name, func(b *testing.B) {
			srv := httptest.NewUnstartedServer(c.handler)
			srv.Config.ReadHeaderTimeout = 5 * time.Second
			srv.Config.ReadTimeout = 10 * time.Second
			srv.Config.WriteTimeout = 10 * time.Second
			srv.Config.IdleTimeout = 120 * time.Second
			srv.Config.MaxHeaderBytes = 64 << 10
			srv.Start()
			defer srv.Close()
			addr := srv.Listener.Addr().String()
			var n atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			for range 32 {
				wg.Go(func() {
					cl := &loadgen.Client{Addr: addr}
					defer cl.Close()
					req := request(nil, "/resolve", "Authorization: Bearer "+token)
					for n.Add(1) <= int64(b.N) {
						if status, _, err := cl.RoundTrip(req); err != nil || status != 200 {
							b.Errorf("status %d: %v", status, err)
							return
						}
					}
				})
			}
			wg.Wait()
		})
	}
}
