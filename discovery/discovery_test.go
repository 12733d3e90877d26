package discovery_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/authresolver/authresolver/discovery"
)

// provider serves a configuration document built by doc from its own URL.
func provider(t *testing.T, doc func(url string) map[string]any) *httptest.Server {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/realms/main/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(doc(srv.URL))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func standard(url string) map[string]any {
	iss := url + "/realms/main"
	return map[string]any{
		"issuer": iss, "jwks_uri": iss + "/certs", "userinfo_endpoint": iss + "/userinfo",
		"introspection_endpoint": iss + "/introspect", "token_endpoint": iss + "/token",
	}
}

func TestFetch(t *testing.T) {
	srv := provider(t, standard)
	iss := srv.URL + "/realms/main"
	got, err := discovery.Fetch(context.Background(), discovery.Options{Issuer: iss})
	if err != nil {
		t.Fatal(err)
	}
	want := discovery.Document{Issuer: iss, JWKSURI: iss + "/certs", UserinfoEndpoint: iss + "/userinfo", IntrospectionEndpoint: iss + "/introspect"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("document (-want +got):\n%s", diff)
	}
}

func TestFetchRefuses(t *testing.T) {
	tests := []struct {
		name string
		edit func(url string, doc map[string]any)
		want error
	}{
		{"issuer mismatch", func(_ string, d map[string]any) { d["issuer"] = "https://evil.example/realms/main" }, discovery.ErrIssuerMismatch},
		{"issuer with trailing slash", func(url string, d map[string]any) { d["issuer"] = url + "/realms/main/" }, discovery.ErrIssuerMismatch},
		{"issuer case", func(url string, d map[string]any) { d["issuer"] = url + "/realms/MAIN" }, discovery.ErrIssuerMismatch},
		{"no issuer", func(_ string, d map[string]any) { delete(d, "issuer") }, discovery.ErrIssuerMismatch},
		{"no jwks_uri", func(_ string, d map[string]any) { delete(d, "jwks_uri") }, discovery.ErrInvalidDocument},
		{"jwks_uri over plain http", func(_ string, d map[string]any) { d["jwks_uri"] = "http://keys.example/certs" }, discovery.ErrInvalidDocument},
		{"introspection over plain http", func(_ string, d map[string]any) { d["introspection_endpoint"] = "http://idp.example/i" }, discovery.ErrInvalidDocument},
		{"jwks_uri not a string", func(_ string, d map[string]any) { d["jwks_uri"] = 7 }, discovery.ErrInvalidDocument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := provider(t, func(url string) map[string]any {
				d := standard(url)
				tt.edit(url, d)
				return d
			})
			_, err := discovery.Fetch(context.Background(), discovery.Options{Issuer: srv.URL + "/realms/main"})
			if !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
		})
	}
}

func TestFetchAnswers(t *testing.T) {
	tests := []struct {
		name   string
		status int
		ctype  string
		body   string
	}{
		{"500", 500, "application/json", `{}`},
		{"redirect", 302, "application/json", ``},
		{"HTML", 200, "text/html", `<html></html>`},
		{"array", 200, "application/json", `[]`},
		{"duplicate issuer", 200, "application/json", `{"issuer":"x","issuer":"y"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", tt.ctype)
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			t.Cleanup(srv.Close)
			if _, err := discovery.Fetch(context.Background(), discovery.Options{Issuer: srv.URL}); err == nil {
				t.Error("accepted")
			}
		})
	}
}

func TestFetchRefusesPlainHTTPIssuer(t *testing.T) {
	if _, err := discovery.Fetch(context.Background(), discovery.Options{Issuer: "http://idp.example"}); err == nil {
		t.Error("accepted http:// to a non-loopback host")
	}
}

// TestRunProviderDownAtStartUp: Run retries until the provider answers,
// then hands over the document once.
func TestRunProviderDownAtStartUp(t *testing.T) {
	var up atomic.Bool
	var attempts atomic.Int32
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if attempts.Add(1) == 3 {
			up.Store(true)
		}
		if !up.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": srv.URL, "jwks_uri": srv.URL + "/jwks"})
	}))
	t.Cleanup(srv.Close)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan discovery.Document, 2)
	done := make(chan struct{})
	go func() {
		defer close(done)
		discovery.Run(ctx, discovery.Options{Issuer: srv.URL, RetryMin: time.Millisecond, RetryMax: 4 * time.Millisecond},
			func(_ context.Context, d discovery.Document) { got <- d })
	}()
	select {
	case d := <-got:
		if d.JWKSURI != srv.URL+"/jwks" {
			t.Errorf("jwks_uri %q", d.JWKSURI)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no document after the provider came up")
	}
	<-done
	if n := attempts.Load(); n != 3 {
		t.Errorf("%d attempts, want 3 (two failures, one success)", n)
	}
	if len(got) != 0 {
		t.Error("ready called twice")
	}
}

func TestRunStopsWithContext(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusBadGateway)
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		discovery.Run(ctx, discovery.Options{Issuer: srv.URL, RetryMin: time.Millisecond}, func(context.Context, discovery.Document) {
			t.Error("ready called for a provider that is down")
		})
	}()
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop with its context")
	}
}
