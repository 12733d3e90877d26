package introspect_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/authresolver/authresolver/introspect"
	"github.com/authresolver/authresolver/resolver"
)

// The uncached introspection path against a bare HTTP round trip to the
// same endpoint (BENCHMARKS.md):
//
//	go test -run '^$' -bench 'IntrospectPath|BareRoundTrip' -benchmem -count 6 ./introspect | benchstat -
//
// Both report cpu-ns/op: the process's user+system CPU time per call
// (client, loopback and the endpoint, which is the same for both), which
// other load on a shared machine disturbs less than wall time.

// benchEndpoint answers every introspection with the same active token.
func benchEndpoint(b *testing.B) *httptest.Server {
	b.Helper()
	exp := strconv.FormatInt(time.Now().Add(2*time.Hour).Unix(), 10)
	body := []byte(`{"active":true,"sub":"user-1","iss":"https://idp.bench.test","aud":"api","iat":1767225600,"exp":` + exp +
		`,"jti":"j1","email_verified":true,"roles":["reader","writer"],"amr":["pwd","otp"],"scope":"openid profile","client_id":"app","token_type":"Bearer"}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.PostForm.Get("token") == "" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		w.Header()["Content-Type"] = []string{"application/json"}
		_, _ = w.Write(body)
	}))
	b.Cleanup(srv.Close)
	return srv
}

// BenchmarkIntrospectPath is a full resolve of an opaque token the cache
// has not seen: extraction, introspection call, answer validation,
// identity headers; every request a distinct token, no cache.
func BenchmarkIntrospectPath(b *testing.B) {
	srv := benchEndpoint(b)
	c, err := introspect.New(introspect.Options{URL: srv.URL, ClientID: "bench", ClientSecret: "bench-secret", Audiences: []string{"api"}})
	if err != nil {
		b.Fatal(err)
	}
	h := resolver.New(resolver.Options{Introspector: c, CacheTTL: 5 * time.Second})
	var n atomic.Int64
	b.ReportAllocs()
	defer reportCPU(b)()
	u, _ := url.Parse("/resolve")
	b.RunParallel(func(pb *testing.PB) {
		// The incoming request is built directly: httptest.NewRequest
		// parses text and allocates a 4 KiB reader, which a bare round trip
		// does not pay either.
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			r := (&http.Request{Method: http.MethodGet, URL: u, Header: http.Header{
				"Authorization": {"Bearer opaque-" + strconv.FormatInt(n.Add(1), 10)},
			}}).WithContext(context.Background())
			clear(w.h)
			h.ServeHTTP(w, r)
			if w.code != http.StatusOK {
				b.Fatalf("status %d", w.code)
			}
		}
	})
}

// discardWriter keeps the status and reuses one header map.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

// BenchmarkBareRoundTrip is the same POST to the same endpoint with the
// standard library's client, reading the answer and nothing else.
func BenchmarkBareRoundTrip(b *testing.B) {
	srv := benchEndpoint(b)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var n atomic.Int64
	b.ReportAllocs()
	defer reportCPU(b)()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			form := url.Values{"token": {"opaque-" + strconv.FormatInt(n.Add(1), 10)}}
			req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, srv.URL, strings.NewReader(form.Encode()))
			req.SetBasicAuth("bench", "bench-secret")
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			res, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				b.Fatalf("status %d", res.StatusCode)
			}
		}
	})
}

// reportCPU measures the process's CPU time from now until the returned
// function runs, and reports it per operation as cpu-ns/op.
func reportCPU(b *testing.B) func() {
	start := cpuTime(b)
	return func() {
		b.ReportMetric(float64((cpuTime(b)-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
