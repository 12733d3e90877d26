package jwks_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/authresolver/authresolver/internal/testclock"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/authresolver/authresolver/jwks"
	"github.com/authresolver/authresolver/jwks/jwkstest"
	"github.com/authresolver/authresolver/resolver"
)

// verify returns the reason for tok, failing the test on an error.
func verify(tb testing.TB, v resolver.TokenVerifier, tok string) resolver.Reason {
	tb.Helper()
	_, reason, err := v.Verify(context.Background(), tok)
	if err != nil {
		tb.Fatalf("Verify: %v", err)
	}
	return reason
}

func TestRotation(t *testing.T) {
	old, next := jwkstest.NewKey("ES256", "old"), jwkstest.NewKey("ES256", "next")
	srv := startServer(t, old)
	v := startVerifier(t, jwks.Options{URL: srv.URL(), Algorithms: []string{"ES256"}, MinRefresh: time.Hour, MaxRefresh: time.Hour})

	oldTok, nextTok := old.Mint(claims(nil)), next.Mint(claims(nil))
	if got := verify(t, v, oldTok); got != resolver.ReasonNone {
		t.Fatalf("old key before rotation: %q", got)
	}

	// A new kid verifies without restart: the unknown kid forces a refetch.
	srv.SetKeys(old, next)
	if got := verify(t, v, nextTok); got != resolver.ReasonNone {
		t.Fatalf("rotated-in key: %q", got)
	}

	// A removed key stops verifying after the next refresh.
	srv.SetKeys(next)
	if err := v.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := verify(t, v, oldTok), resolver.ReasonUnknownKey; got != want {
		t.Errorf("removed key: got %q, want %q", got, want)
	}
	if got := verify(t, v, nextTok); got != resolver.ReasonNone {
		t.Errorf("current key: %q", got)
	}
}

func TestUnknownKidRefetchIsCollapsedAndRateLimited(t *testing.T) {
	key := keys().es256
	srv := startServer(t, key)
	clk := testclock.New(time.Now())
	reg := prometheus.NewRegistry()
	v := startVerifier(t, jwks.Options{
		URL: srv.URL(), Algorithms: []string{"ES256"}, MinRefresh: time.Hour, MaxRefresh: time.Hour,
		RefetchCooldown: time.Minute, Now: clk.Now, Metrics: jwks.NewMetrics(reg),
	})
	before := srv.Hits()

	storm := func() {
		var wg sync.WaitGroup
		for range 1000 {
			wg.Go(func() {
				tok := key.Sign(map[string]any{"kid": fmt.Sprintf("random-%d", rand.Uint64())}, claims(nil))
				_, reason, err := v.Verify(context.Background(), tok)
				if err != nil || reason != resolver.ReasonUnknownKey {
					t.Errorf("Verify: %q, %v; want %q", reason, err, resolver.ReasonUnknownKey)
				}
			})
		}
		wg.Wait()
	}
	storm()
	if got := srv.Hits() - before; got != 1 {
		t.Errorf("fetches during the first cooldown: got %d, want 1", got)
	}
	storm()
	if got := srv.Hits() - before; got != 1 {
		t.Errorf("fetches still within the cooldown: got %d, want 1", got)
	}
	clk.Advance(time.Minute)
	storm()
	if got := srv.Hits() - before; got != 2 {
		t.Errorf("fetches after the cooldown: got %d, want 2", got)
	}
	forced := func(outcome string) float64 {
		return metricValue(t, reg, "authresolver_jwks_forced_refetch_total", issuer, outcome)
	}
	if got := metricValue(t, reg, "authresolver_jwks_refresh_total", issuer, "success"); got != 3 {
		t.Errorf("successful fetches (first and two forced): got %v, want 3", got)
	}
	if got := forced("success"); got != 2 {
		t.Errorf("forced refetch successes: got %v, want 2", got)
	}
	// Callers that joined a fetch in flight are not counted as rate-limited;
	// most of the 3000 are.
	if got := forced("rate_limited"); got < 1 || got > 2998 {
		t.Errorf("rate-limited refetches: got %v", got)
	}
}

// metricValue returns the value of the counter or gauge name{labels} in
// reg, in the order the labels are declared, or -1 if there is none.
func metricValue(tb testing.TB, reg *prometheus.Registry, name string, labels ...string) float64 {
	tb.Helper()
	families, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			for i, l := range m.GetLabel() {
				if i >= len(labels) || l.GetValue() != labels[i] {
					continue series
				}
			}
			return m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return -1
}

func TestOutage(t *testing.T) {
	key := keys().es256
	srv := startServer(t, key)
	srv.SetStatus(http.StatusServiceUnavailable)
	clk := testclock.New(time.Now())
	reg := prometheus.NewRegistry()
	v := startVerifier(t, jwks.Options{
		URL: srv.URL(), Algorithms: []string{"ES256"}, MinRefresh: time.Hour, MaxRefresh: time.Hour,
		MaxStaleness: 24 * time.Hour, Now: clk.Now, Metrics: jwks.NewMetrics(reg),
	})
	// Tokens must outlive the clock moves below.
	tok := key.Mint(jwkstest.Claims(issuer, "user-1", 48*time.Hour))

	// The IdP is down at start: the process starts, not ready, 503.
	if v.Ready() {
		t.Error("Ready with the JWKS down at start")
	}
	if _, _, err := v.Verify(context.Background(), tok); !errors.Is(err, jwks.ErrNoKeys) {
		t.Errorf("Verify with no keys: got %v, want ErrNoKeys", err)
	}

	// The IdP comes back; a Verify alone is enough to fetch the keys once
	// the refetch cooldown has passed.
	srv.SetStatus(http.StatusOK)
	clk.Advance(time.Minute)
	if got := verify(t, v, tok); got != resolver.ReasonNone {
		t.Fatalf("after recovery: %q", got)
	}
	if !v.Ready() {
		t.Error("not Ready after a successful fetch")
	}

	// The IdP fails again: 500, then gone. Stale keys keep working.
	srv.SetStatus(http.StatusInternalServerError)
	clk.Advance(10 * time.Hour)
	if err := v.Refresh(context.Background()); err == nil {
		t.Error("Refresh against a failing JWKS succeeded")
	}
	srv.Close()
	clk.Advance(13 * time.Hour)
	if err := v.Refresh(context.Background()); err == nil {
		t.Error("Refresh against a closed JWKS server succeeded")
	}
	if got := verify(t, v, tok); got != resolver.ReasonNone {
		t.Errorf("stale keys within MaxStaleness: %q", got)
	}
	if !v.Ready() {
		t.Error("not Ready within MaxStaleness")
	}
	want := `
# HELP authresolver_jwks_forced_refetch_total JWKS refetches forced by an unknown key id or missing keys, by issuer and outcome (success, error, rate_limited).
# TYPE authresolver_jwks_forced_refetch_total counter
authresolver_jwks_forced_refetch_total{issuer="https://issuer.test",outcome="error"} 1
authresolver_jwks_forced_refetch_total{issuer="https://issuer.test",outcome="rate_limited"} 0
authresolver_jwks_forced_refetch_total{issuer="https://issuer.test",outcome="success"} 1
# HELP authresolver_jwks_keys Usable signature keys in the issuer's current key set.
# TYPE authresolver_jwks_keys gauge
authresolver_jwks_keys{issuer="https://issuer.test"} 1
# HELP authresolver_jwks_keyset_age_seconds Seconds since the issuer's key set was last fetched successfully.
# TYPE authresolver_jwks_keyset_age_seconds gauge
authresolver_jwks_keyset_age_seconds{issuer="https://issuer.test"} 82800
# HELP authresolver_jwks_refresh_total JWKS fetches (background and forced) by issuer and outcome.
# TYPE authresolver_jwks_refresh_total counter
authresolver_jwks_refresh_total{issuer="https://issuer.test",outcome="error"} 4
authresolver_jwks_refresh_total{issuer="https://issuer.test",outcome="success"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Errorf("metrics after failures within MaxStaleness (start 503, refetch 503, 500, closed; age 23h):\n%v", err)
	}

	// Past MaxStaleness: not ready, and Verify cannot decide.
	clk.Advance(2 * time.Hour)
	if v.Ready() {
		t.Error("Ready past MaxStaleness")
	}
	if _, _, err := v.Verify(context.Background(), tok); !errors.Is(err, jwks.ErrStale) {
		t.Errorf("Verify past MaxStaleness: got %v, want ErrStale", err)
	}
	// A bad token is still a denial, not an error.
	if _, reason, err := v.Verify(context.Background(), "garbage"); err != nil || reason != resolver.ReasonMalformedToken {
		t.Errorf("garbage past MaxStaleness: %q, %v", reason, err)
	}
}

func TestStartWithUnreachableJWKS(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/jwks.json"
	srv.Close() // connection refused from now on

	v := startVerifier(t, jwks.Options{URL: url, Algorithms: []string{"ES256"}})
	if v.Ready() {
		t.Error("Ready without keys")
	}
	_, _, err := v.Verify(context.Background(), keys().es256.Mint(claims(nil)))
	if !errors.Is(err, jwks.ErrNoKeys) {
		t.Errorf("Verify: got %v, want ErrNoKeys", err)
	}
}

func TestRefetchHonoursContext(t *testing.T) {
	key := keys().es256
	release := make(chan struct{})
	var mu sync.Mutex
	block := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		b := block
		mu.Unlock()
		if b {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		_, _ = w.Write(jwkstest.JWKS(key))
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	v := startVerifier(t, jwks.Options{URL: srv.URL, Algorithms: []string{"ES256"}})

	mu.Lock()
	block = true
	mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := v.Verify(ctx, key.Sign(map[string]any{"kid": "unknown"}, claims(nil)))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Verify with a hanging refetch: got %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Verify waited %s past its context", d)
	}
}

func TestCacheControl(t *testing.T) {
	tests := []struct {
		header string
		want   time.Duration
	}{
		{"public, max-age=120", 2 * time.Minute},
		{"max-age=5", time.Minute},   // below MinRefresh
		{"max-age=86400", time.Hour}, // above MaxRefresh
		{"", time.Minute},            // none: MinRefresh
		{"no-store", time.Minute},    // no max-age: MinRefresh
		{"max-age=600, private", 10 * time.Minute},
	}
	key := keys().es256
	for _, tt := range tests {
		t.Run(tt.header, func(t *testing.T) {
			srv := startServer(t, key)
			srv.SetHeader("Cache-Control", tt.header)
			v := startVerifier(t, jwks.Options{URL: srv.URL(), Algorithms: []string{"ES256"}, MinRefresh: time.Minute, MaxRefresh: time.Hour})
			if err := v.Refresh(context.Background()); err != nil {
				t.Fatal(err)
			}
			got := time.Until(v.NextRefresh())
			if got > tt.want || got < tt.want-5*time.Second {
				t.Errorf("next refresh in %s, want %s", got.Round(time.Second), tt.want)
			}
		})
	}
}

func TestBackgroundRefresh(t *testing.T) {
	old, next := jwkstest.NewKey("ES256", "old"), jwkstest.NewKey("ES256", "next")
	srv := startServer(t, old)
	srv.SetHeader("Cache-Control", "max-age=1")
	v := startVerifier(t, jwks.Options{
		URL: srv.URL(), Algorithms: []string{"ES256"}, MinRefresh: time.Second, MaxRefresh: time.Second,
		RefetchCooldown: time.Hour,
	})
	// Use up the forced refetch, so that only the background can help.
	if got := verify(t, v, jwkstest.NewKey("ES256", "nobody").Mint(claims(nil))); got != resolver.ReasonUnknownKey {
		t.Fatalf("unknown key: %q", got)
	}
	srv.SetKeys(next)
	tok := next.Mint(claims(nil))
	deadline := time.Now().Add(10 * time.Second)
	for verify(t, v, tok) != resolver.ReasonNone {
		if time.Now().After(deadline) {
			t.Fatalf("background refresh did not pick up the new key; %d fetches", srv.Hits())
		}
		time.Sleep(50 * time.Millisecond) // polling for an outcome, not timing one
	}
}

func TestFileURL(t *testing.T) {
	key := keys().es256
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, jwkstest.JWKS(key), 0o600); err != nil {
		t.Fatal(err)
	}
	v := startVerifier(t, jwks.Options{URL: "file://" + path, Algorithms: []string{"ES256"}})
	if !v.Ready() {
		t.Fatal("not Ready with a file JWKS")
	}
	if got := verify(t, v, key.Mint(claims(nil))); got != resolver.ReasonNone {
		t.Errorf("file JWKS: %q", got)
	}

	// Files are refreshed like URLs.
	next := jwkstest.NewKey("ES256", "next")
	if err := os.WriteFile(path, jwkstest.JWKS(next), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := verify(t, v, next.Mint(claims(nil))); got != resolver.ReasonNone {
		t.Errorf("file JWKS after change: %q", got)
	}

	missing := startVerifier(t, jwks.Options{URL: "file://" + path + ".missing", Algorithms: []string{"ES256"}})
	if missing.Ready() {
		t.Error("Ready with a missing JWKS file")
	}
}

func TestSet(t *testing.T) {
	a, b := jwkstest.NewKey("ES256", "a-key"), jwkstest.NewKey("ES256", "b-key")
	srvA, srvB := startServer(t, a), startServer(t, b)
	const issA, issB = "https://a.test", "https://b.test"
	va := startVerifier(t, jwks.Options{Issuer: issA, URL: srvA.URL(), Algorithms: []string{"ES256"}, Audiences: []string{"api-a"}})
	vb := startVerifier(t, jwks.Options{Issuer: issB, URL: srvB.URL(), Algorithms: []string{"ES256"}})
	set := jwks.NewSet(va, vb)

	forIss := func(iss string, edit func(map[string]any)) map[string]any {
		c := jwkstest.Claims(iss, "user-1", time.Hour)
		if edit != nil {
			edit(c)
		}
		return c
	}
	withAud := func(c map[string]any) { c["aud"] = "api-a" }
	tests := []struct {
		name   string
		token  string
		want   resolver.Reason
		wantID string // Issuer of the identity
	}{
		{"A", a.Mint(forIss(issA, withAud)), resolver.ReasonNone, issA},
		{"B", b.Mint(forIss(issB, nil)), resolver.ReasonNone, issB},
		{"A's options apply to A", a.Mint(forIss(issA, nil)), resolver.ReasonAudience, ""},
		{"iss A signed by B's key", b.Mint(forIss(issA, withAud)), resolver.ReasonUnknownKey, ""},
		{"iss A signed by B's key under A's kid", b.Sign(map[string]any{"kid": "a-key"}, forIss(issA, withAud)), resolver.ReasonSignature, ""},
		{"iss B signed by A's key", a.Mint(forIss(issB, nil)), resolver.ReasonUnknownKey, ""},
		{"unknown issuer", a.Mint(forIss("https://c.test", nil)), resolver.ReasonUnknownIssuer, ""},
		{"no issuer", a.Mint(forIss("", nil)), resolver.ReasonUnknownIssuer, ""},
		{"garbage", "x.y.z", resolver.ReasonMalformedToken, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, got, err := set.Verify(context.Background(), tt.token)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("reason (-want +got):\n%s", diff)
			}
			if id.Issuer != tt.wantID {
				t.Errorf("identity issuer: got %q, want %q", id.Issuer, tt.wantID)
			}
		})
	}

	if !set.Ready() {
		t.Error("Set not Ready with both JWKS up")
	}
	down := startVerifier(t, jwks.Options{Issuer: "https://down.test", URL: "file:///nonexistent/jwks.json"})
	if !jwks.NewSet(va, down).Ready() {
		t.Error("Set not Ready with one of two JWKS up")
	}
	if jwks.NewSet(down).Ready() {
		t.Error("Set Ready with every JWKS down")
	}
	if jwks.NewSet().Ready() {
		t.Error("empty Set Ready")
	}
}

func TestNewSetPanicsOnDuplicateIssuer(t *testing.T) {
	v1 := must(jwks.New(jwks.Options{Issuer: issuer, URL: "https://idp.test/jwks"}))
	v2 := must(jwks.New(jwks.Options{Issuer: issuer, URL: "https://idp.test/other"}))
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), issuer) {
			t.Errorf("recovered %v, want a panic naming the issuer", r)
		}
	}()
	jwks.NewSet(v1, v2)
}
