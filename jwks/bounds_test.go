package jwks_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/authresolver/authresolver/jwks"
	"github.com/authresolver/authresolver/jwks/jwkstest"
	"github.com/authresolver/authresolver/resolver"
)

// TestKeysSharingAKid: a JWKS that publishes many keys under one kid does
// not make a token cost a signature check per key; past the fourth, keys
// with that kid are ignored.
func TestKeysSharingAKid(t *testing.T) {
	var flood []*jwkstest.Key
	for range 6 {
		flood = append(flood, jwkstest.NewKey("ES256", "dup"))
	}
	srv := startServer(t, flood...)
	v := startVerifier(t, jwks.Options{URL: srv.URL(), Algorithms: []string{"ES256"}})
	for i, k := range flood {
		want := resolver.ReasonNone
		if i >= 4 {
			want = resolver.ReasonSignature
		}
		if got := verify(t, v, k.Mint(claims(nil))); got != want {
			t.Errorf("key %d of 6 sharing a kid: got %q, want %q", i+1, got, want)
		}
	}
}

// TestTooManyKeys: a set of more than 100 usable keys is refused as a
// whole and the last good set stays in use. (Each fetch of such a set
// costs a parse of 100 keys, about a second under -race on a loaded
// machine, so the test does no more of them than it must.)
func TestTooManyKeys(t *testing.T) {
	good := keys().es256
	srv := startServer(t, good)
	v := startVerifier(t, jwks.Options{URL: srv.URL(), Algorithms: []string{"ES256"}})

	var flood []*jwkstest.Key
	for i := range 101 {
		flood = append(flood, jwkstest.NewKey("ES256", fmt.Sprint("k", i)))
	}
	srv.SetKeys(flood...)
	if err := v.Refresh(context.Background()); err == nil {
		t.Error("Refresh accepted a set of 101 keys")
	}
	if got := verify(t, v, good.Mint(claims(nil))); got != resolver.ReasonNone {
		t.Errorf("last good key after a refused set: %q", got)
	}

	srv.SetKeys(flood[:100]...)
	if err := v.Refresh(context.Background()); err != nil {
		t.Errorf("Refresh of a set of 100 keys: %v", err)
	}
}

// TestRedirects: a JWKS fetch follows redirects only to the configured
// URL's scheme and host, at most three, with the built-in and with an
// injected client.
func TestRedirects(t *testing.T) {
	key := keys().es256
	elsewhere := startServer(t, key) // another host: 127.0.0.1 on another port
	file := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(file, jwkstest.JWKS(key), 0o600); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/jwks.json", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(jwkstest.JWKS(key)) })
	mux.Handle("/same", http.RedirectHandler("/jwks.json", http.StatusFound))
	mux.Handle("/other-host", http.RedirectHandler(elsewhere.URL(), http.StatusFound))
	mux.Handle("/file", http.RedirectHandler("file://"+file, http.StatusFound))
	mux.Handle("/hop3", http.RedirectHandler("/hop2", http.StatusFound))
	mux.Handle("/hop2", http.RedirectHandler("/same", http.StatusMovedPermanently))
	mux.Handle("/hop4", http.RedirectHandler("/hop3", http.StatusTemporaryRedirect))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	localhost := "http://localhost:" + srv.URL[len("http://127.0.0.1:"):]

	tests := []struct {
		path      string
		client    *http.Client
		wantReady bool
	}{
		{"/same", nil, true},
		{"/hop3", nil, true},
		{"/hop4", nil, false},
		{"/other-host", nil, false},
		{"/other-host", &http.Client{}, false},
		{"/file", nil, false},
		{"/file", &http.Client{}, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s injected=%v", tt.path, tt.client != nil), func(t *testing.T) {
			v := startVerifier(t, jwks.Options{URL: srv.URL + tt.path, Algorithms: []string{"ES256"}, HTTPClient: tt.client})
			if got := v.Ready(); got != tt.wantReady {
				t.Errorf("Ready = %v, want %v", got, tt.wantReady)
			}
		})
	}
	if got := elsewhere.Hits(); got != 0 {
		t.Errorf("the other host got %d requests, want 0", got)
	}

	// localhost and 127.0.0.1 are both loopback, but not the same host.
	mux.Handle("/to-localhost", http.RedirectHandler(localhost+"/jwks.json", http.StatusFound))
	v := startVerifier(t, jwks.Options{URL: srv.URL + "/to-localhost", Algorithms: []string{"ES256"}})
	if v.Ready() {
		t.Error("followed a redirect from 127.0.0.1 to localhost")
	}
}
