package e2e

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTraefikLoginContract sends the resolver what Traefik's forwardAuth
// sends for the login middleware of traefik/dynamic.yml: a navigation
// without a session is answered 302 to the login page with the URL rebuilt
// from X-Forwarded-*, which Traefik passes on; nothing else redirects.
func TestTraefikLoginContract(t *testing.T) {
	t.Parallel()
	dynamic, err := os.ReadFile(filepath.Join(repoRoot, "traefik", "dynamic.yml"))
	if err != nil {
		t.Fatal(err)
	}
	const addr = "address: http://authresolver:8080/resolve?login=redirect\n"
	if !strings.Contains(string(dynamic), addr) {
		t.Fatalf("traefik/dynamic.yml: no %q", strings.TrimSpace(addr))
	}
	e := newEnv(t, map[string]string{
		"AUTHRESOLVER_LOGIN_URL":           "https://auth.example.com/login",
		"AUTHRESOLVER_LOGIN_ALLOWED_HOSTS": "app.example.com",
	})
	const browserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	traefik := func(t *testing.T, host, uri, accept string, headers ...string) *response {
		t.Helper()
		h := []string{
			"X-Forwarded-Method", "GET",
			"X-Forwarded-Proto", "https",
			"X-Forwarded-Host", host,
			"X-Forwarded-Uri", uri,
			"X-Forwarded-For", "203.0.113.7",
			"X-Forwarded-Port", "443",
			"Accept", accept,
		}
		return get(t, e.Resolver.ResolveURL()+"/resolve?login=redirect", append(h, headers...)...)
	}
	t.Run("navigation", func(t *testing.T) {
		r := traefik(t, "app.example.com", "/orders?draft=1&x=%2F", browserAccept, "Sec-Fetch-Mode", "navigate")
		wantStatus(t, r, http.StatusFound)
		want := "https://auth.example.com/login?redirect_uri=" + url.QueryEscape("https://app.example.com/orders?draft=1&x=%2F")
		wantHeaders(t, r.Header, "Location", want, "X-Auth-Session-Valid", "false", "Cache-Control", "no-store")
	})
	t.Run("revoked session", func(t *testing.T) {
		s := e.Resolver.createSession(t, map[string]any{"user_id": "u1"})
		e.Resolver.admin(t, http.MethodDelete, "/v1/sessions/"+s.ID, nil)
		r := traefik(t, "app.example.com", "/", browserAccept, "Cookie", sessionCookie(t, s))
		wantStatus(t, r, http.StatusFound)
	})
	t.Run("signed in", func(t *testing.T) {
		s := e.Resolver.createSession(t, map[string]any{"user_id": "u2"})
		r := traefik(t, "app.example.com", "/", browserAccept, "Cookie", sessionCookie(t, s))
		wantStatus(t, r, http.StatusOK)
		wantHeaders(t, r.Header, "X-Auth-User-Id", "u2")
	})
	for _, tt := range []struct {
		name, host, uri, accept string
		headers                 []string
	}{
		{"API call", "app.example.com", "/api", "application/json", nil},
		{"fetch", "app.example.com", "/api", "*/*", []string{"Sec-Fetch-Mode", "cors"}},
		{"XHR", "app.example.com", "/api", browserAccept, []string{"X-Requested-With", "XMLHttpRequest"}},
		{"foreign host", "evil.example", "/", browserAccept, nil},
		{"protocol-relative path", "app.example.com", "//evil.example/", browserAccept, nil},
		{"encoded CRLF", "app.example.com", "/%0d%0aSet-Cookie:%20a=b", browserAccept, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := traefik(t, tt.host, tt.uri, tt.accept, tt.headers...)
			wantStatus(t, r, http.StatusUnauthorized)
			absent(t, r.Header, "Location")
		})
	}
}
