package jwks_test

import (
	"context"
	"errors"
	"github.com/authresolver/authresolver/internal/syncbuf"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/authresolver/authresolver/jwks"
	"github.com/authresolver/authresolver/resolver"
)

type countingTransport struct {
	n atomic.Int64
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(req)
}

func TestInjectedHTTPClient(t *testing.T) {
	srv := startServer(t, keys().es256)
	tr := &countingTransport{}
	v := startVerifier(t, jwks.Options{URL: srv.URL(), Algorithms: []string{"ES256"}, HTTPClient: &http.Client{Transport: tr}})
	if !v.Ready() {
		t.Fatal("not Ready")
	}
	if got := tr.n.Load(); got != 1 {
		t.Errorf("requests through the injected client: got %d, want 1", got)
	}
}

func TestClose(t *testing.T) {
	key := keys().es256
	srv := startServer(t, key)
	v := startVerifier(t, jwks.Options{URL: srv.URL(), Algorithms: []string{"ES256"}})
	v.Close()
	v.Close() // idempotent
	if err := v.Refresh(context.Background()); !errors.Is(err, jwks.ErrNotStarted) {
		t.Errorf("Refresh after Close: got %v, want ErrNotStarted", err)
	}
	if got := verify(t, v, key.Mint(claims(nil))); got != resolver.ReasonNone {
		t.Errorf("fetched keys after Close: %q", got)
	}
	if err := v.Start(context.Background()); err == nil {
		t.Error("second Start succeeded")
	}
}

func TestLogs(t *testing.T) {
	key := keys().es256
	srv := startServer(t, key)
	srv.SetStatus(http.StatusBadGateway)
	var buf syncbuf.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	v := startVerifier(t, jwks.Options{URL: srv.URL(), Algorithms: []string{"ES256"}, Logger: log})
	if !strings.Contains(buf.String(), "jwks: refresh failed") || !strings.Contains(buf.String(), `"issuer":"https://issuer.test"`) ||
		!strings.Contains(buf.String(), `"error":"`) {
		t.Errorf("no refresh failure logged with the issuer and \"error\":\n%s", buf.String())
	}

	srv.SetStatus(http.StatusOK)
	if err := v.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	tok := key.Mint(claims(nil))
	bad := key.Sign(map[string]any{"kid": "unknown"}, claims(nil))
	for _, s := range []string{tok, bad, tok[:len(tok)-3]} {
		_, _, _ = v.Verify(context.Background(), s)
	}
	logs := buf.String()
	if !strings.Contains(logs, "jwks: key set loaded") {
		t.Errorf("key set load not logged:\n%s", logs)
	}
	for _, s := range []string{tok, bad, strings.Split(tok, ".")[1], strings.Split(tok, ".")[2]} {
		if strings.Contains(logs, s) {
			t.Fatalf("logs contain a token or part of one:\n%s", logs)
		}
	}
}

// TestRefreshOutlivesStartContext: the context given to Start bounds the
// wait for the first fetch only; refreshing goes on until Close, so that a
// server draining after a signal still picks up rotated keys.
func TestRefreshOutlivesStartContext(t *testing.T) {
	old, next := keys().es256, keys().other
	srv := startServer(t, old)
	v, err := jwks.New(jwks.Options{Issuer: issuer, URL: srv.URL(), Algorithms: []string{"ES256"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := v.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	cancel()

	srv.SetKeys(next)
	if got := verify(t, v, next.Mint(claims(nil))); got != resolver.ReasonNone {
		t.Errorf("rotated-in key after the Start context ended: %q", got)
	}
	v.Close()
	if err := v.Refresh(context.Background()); !errors.Is(err, jwks.ErrNotStarted) {
		t.Errorf("Refresh after Close: got %v, want ErrNotStarted", err)
	}
}
