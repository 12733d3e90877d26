package e2e

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
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

// TestAuthgearNginxConfig runs Authgear's documented NGINX configuration
// (testdata/authgear-nginx.conf) against authresolver with the X-Authgear-
// prefix: /_resolver/resolve answers as Authgear's resolver does (200 with
// Session-Valid: false for anonymous visitors, the app decides), and
// ?optional=false there gives /resolve's answers.
func TestAuthgearNginxConfig(t *testing.T) {
	t.Parallel()
	e := newEnv(t, map[string]string{"AUTHRESOLVER_HEADER_PREFIX": "X-Authgear-"})
	s := e.Resolver.createSession(t, map[string]any{"user_id": "user-ag", "verified": true, "amr": []string{"pwd"}})
	cookie := sessionCookie(t, s)

	for _, tt := range []struct {
		name     string
		resolver string // what replaces <YOUR_AUTHGEAR_ENDPOINT>/_resolver/resolve
	}{
		{"as documented", e.Resolver.ResolveURL() + "/_resolver/resolve"},
		{"optional=false", e.Resolver.ResolveURL() + "/_resolver/resolve?optional=false"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			base := startSite(t, filepath.Join(repoRoot, "e2e", "testdata", "authgear-nginx.conf"), map[string]string{
				"<YOUR_AUTHGEAR_ENDPOINT>/_resolver/resolve": tt.resolver,
				"<YOUR_AUTHGEAR_ENDPOINT_HOST>":              e.Resolver.ResolveAddr,
				"http://www.mycompany.com":                   e.Upstream.URL,
			})
			r := get(t, base+"/x", "X-Authgear-User-Id", "forged")
			if tt.name == "optional=false" {
				wantStatus(t, r, http.StatusUnauthorized)
			} else {
				got := r.echo(t).Header
				wantHeaders(t, got, "X-Authgear-Session-Valid", "false", "X-Authgear-User-Id", "")
			}
			got := get(t, base+"/x", "Cookie", cookie, "X-Authgear-User-Id", "forged").echo(t).Header
			wantHeaders(t, got, "X-Authgear-Session-Valid", "true", "X-Authgear-User-Id", "user-ag",
				"X-Authgear-User-Verified", "true", "X-Authgear-Session-Amr", "pwd", "X-Authgear-User-Anonymous", "false")
			if got.Get("X-Authgear-Session-Authenticated-At") == "" {
				t.Error("no X-Authgear-Session-Authenticated-At")
			}
		})
	}
}

// startSite runs nginx with one server block read from file, after
// replacing each key of subst (which must occur) and its listen line, and
// returns the base URL.
func startSite(tb testing.TB, file string, subst map[string]string) string {
	tb.Helper()
	bin := lookPath(tb, "nginx", "nginx")
	b, err := os.ReadFile(file)
	if err != nil {
		tb.Fatal(err)
	}
	site := string(b)
	for old, new := range subst {
		if !strings.Contains(site, old) {
			tb.Fatalf("%s: no %q", filepath.Base(file), old)
		}
		site = strings.ReplaceAll(site, old, new)
	}
	dir := tb.TempDir()
	port := onFreePort(tb, "nginx", func(port int) *process {
		conf := fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log stderr notice;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
%[2]s
}
`, dir, strings.Replace(site, "listen 80;", "listen 127.0.0.1:"+strconv.Itoa(port)+";", 1))
		path := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil { //nolint:gosec // G703: the test's temporary directory
			tb.Fatal(err)
		}
		p, err := startProcess(tb, "nginx", exec.Command(bin, "-p", dir, "-c", path, "-e", "stderr"), nil)
		if err != nil {
			tb.Fatal(err)
		}
		return p
	}, func(p *process, port int) error {
		return waitListening(p, "127.0.0.1:"+strconv.Itoa(port))
	})
	return "http://127.0.0.1:" + strconv.Itoa(port)
}

// waitListening waits until addr accepts connections or p exits.
func waitListening(p *process, addr string) error {
	deadline := time.Now().Add(startTimeout)
	for {
		if !p.running() {
			return fmt.Errorf("%s exited: %v", p.name, p.err)
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not listen on %s within %v", p.name, addr, startTimeout)
		}
		time.Sleep(20 * time.Millisecond) // polling a process we started
	}
}
