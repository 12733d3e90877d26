package e2e

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestTraefikForwardAuthContract sends the resolver what Traefik's
// forwardAuth middleware sends (traefik/dynamic.yml): a GET to the
// configured address, with every client header, X-Forwarded-Method, -Proto,
// -Host, -Uri, -For and -Port, and no body whatever the client sent.
func TestTraefikForwardAuthContract(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	is := e.Issuer
	plain := is.token(t, "user-plain", nil)
	admin := is.token(t, "user-admin", claims{"roles": []string{"admin"}})

	dynamic, err := os.ReadFile(filepath.Join(repoRoot, "traefik", "dynamic.yml"))
	if err != nil {
		t.Fatal(err)
	}
	// Traefik copies to the upstream request the answer's headers matching
	// authResponseHeadersRegex (Go regexp against canonical names), and
	// removes the client's headers that match it first.
	m := regexp.MustCompile(`(?m)^\s*authResponseHeadersRegex:\s*"?([^"\n]+?)"?\s*$`).FindSubmatch(dynamic)
	if m == nil {
		t.Fatal("traefik/dynamic.yml: no authResponseHeadersRegex")
	}
	copyRe := regexp.MustCompile(string(m[1]))
	if !strings.Contains(string(dynamic), "trustForwardHeader: false") {
		t.Error("traefik/dynamic.yml: want trustForwardHeader: false")
	}
	for _, addr := range []string{"address: http://authresolver:8080/resolve\n", "address: http://authresolver:8080/resolve?role=admin\n"} {
		if !strings.Contains(string(dynamic), addr) {
			t.Errorf("traefik/dynamic.yml: no %q", strings.TrimSpace(addr))
		}
	}

	traefik := func(t *testing.T, query, method, uri string, headers ...string) *response {
		t.Helper()
		h := []string{
			"X-Forwarded-Method", method,
			"X-Forwarded-Proto", "https",
			"X-Forwarded-Host", "app.example.com",
			"X-Forwarded-Uri", uri,
			"X-Forwarded-For", "203.0.113.7",
			"X-Forwarded-Port", "443",
			"User-Agent", "Mozilla/5.0",
			"Accept", "application/json",
			"Content-Type", "application/json", // the client's, its body stripped
			"X-Auth-User-Id", "forged-user", // the client's, as Traefik forwards it
			"X-Auth-User-Roles", "admin",
		}
		return get(t, e.Resolver.ResolveURL()+"/resolve"+query, append(h, headers...)...)
	}

	t.Run("allow", func(t *testing.T) {
		r := traefik(t, "", http.MethodPost, "/orders?draft=1", "Authorization", "Bearer "+plain)
		wantStatus(t, r, http.StatusOK)
		wantHeaders(t, r.Header, "X-Auth-Session-Valid", "true", "X-Auth-User-Id", "user-plain", "X-Auth-Credential", "jwt")
		absent(t, r.Header, "X-Auth-User-Roles")
		for _, name := range identityHeaders {
			if r.Header.Get(name) != "" && !copyRe.MatchString(name) {
				t.Errorf("authResponseHeadersRegex %q does not copy %s", copyRe, name)
			}
		}
		for name := range r.Header {
			if copyRe.MatchString(name) && !strings.HasPrefix(name, "X-Auth-") {
				t.Errorf("authResponseHeadersRegex %q would copy %s to the upstream", copyRe, name)
			}
		}
		// Client-sent identity headers are removed by the regex, so one
		// the resolver leaves out (no roles) cannot survive.
		if !copyRe.MatchString("X-Auth-User-Roles") {
			t.Errorf("authResponseHeadersRegex %q does not strip a client's X-Auth-User-Roles", copyRe)
		}
		cc := r.Header.Get("Cache-Control")
		if !strings.HasPrefix(cc, "private, max-age=") {
			t.Errorf("Cache-Control %q, want private, max-age=N", cc)
		} else if n, err := strconv.Atoi(strings.TrimPrefix(cc, "private, max-age=")); err != nil || n < 0 || n > 5 {
			t.Errorf("Cache-Control %q, want max-age within the 5s cache TTL", cc)
		}
	})

	t.Run("deny", func(t *testing.T) {
		r := traefik(t, "", http.MethodGet, "/orders")
		wantStatus(t, r, http.StatusUnauthorized)
		wantHeaders(t, r.Header, "X-Auth-Session-Valid", "false")
		if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("WWW-Authenticate %q, want Bearer", r.Header.Get("WWW-Authenticate"))
		}
		r = traefik(t, "", http.MethodGet, "/orders", "Authorization", "Bearer "+plain+"x")
		wantStatus(t, r, http.StatusUnauthorized)
		if r.Header.Get("X-Auth-Error") == "" {
			t.Error("invalid token: no X-Auth-Error")
		}
	})

	t.Run("role middleware", func(t *testing.T) {
		r := traefik(t, "?role=admin", http.MethodDelete, "/admin/users/1", "Authorization", "Bearer "+plain)
		wantStatus(t, r, http.StatusForbidden)
		wantHeaders(t, r.Header, "X-Auth-Session-Valid", "true", "X-Auth-Error", "insufficient_role")
		r = traefik(t, "?role=admin", http.MethodDelete, "/admin/users/1", "Authorization", "Bearer "+admin)
		wantStatus(t, r, http.StatusOK)
		wantHeaders(t, r.Header, "X-Auth-User-Id", "user-admin", "X-Auth-User-Roles", "admin")
	})

	t.Run("forwarded headers do not change the decision", func(t *testing.T) {
		// X-Forwarded-Uri is the client's path and query: it must not be
		// read for requirements.
		r := traefik(t, "", http.MethodGet, "/resolve?optional=true")
		wantStatus(t, r, http.StatusUnauthorized)
		r = traefik(t, "?role=admin", http.MethodGet, "/x?role=user", "Authorization", "Bearer "+plain)
		wantStatus(t, r, http.StatusForbidden)
	})

	t.Run("session cookie", func(t *testing.T) {
		s := e.Resolver.createSession(t, map[string]any{"user_id": "user-session"})
		r := traefik(t, "", http.MethodGet, "/", "Cookie", "theme=dark; "+sessionCookie(t, s))
		wantStatus(t, r, http.StatusOK)
		wantHeaders(t, r.Header, "X-Auth-User-Id", "user-session", "X-Auth-Credential", "session", "X-Auth-Session-Id", s.Handle)
	})

	t.Run("Authgear path", func(t *testing.T) {
		r := get(t, e.Resolver.ResolveURL()+"/_resolver/resolve?role=admin", "Authorization", "Bearer "+admin)
		wantStatus(t, r, http.StatusOK)
		wantHeaders(t, r.Header, "X-Auth-User-Id", "user-admin")
		r = get(t, e.Resolver.ResolveURL()+"/_resolver/resolve?role=admin", "Authorization", "Bearer "+plain)
		wantStatus(t, r, http.StatusForbidden)
	})
}

// TestEnvoyExtAuthzContract sends the resolver what Envoy's HTTP ext_authz
// filter sends (envoy/envoy.yaml): the client's method on path_prefix
// /resolve + the client's path and query, no body, the allowed headers, and
// X-Authresolver-Require set by the gateway (headers_to_add).
func TestEnvoyExtAuthzContract(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	is := e.Issuer
	plain := is.token(t, "user-plain", claims{"email_verified": false})
	admin := is.token(t, "user-admin", claims{"roles": []string{"admin"}, "email_verified": true})

	conf, err := os.ReadFile(filepath.Join(repoRoot, "envoy", "envoy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"path_prefix: /resolve", "key: X-Authresolver-Require", "prefix: x-auth-"} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("envoy/envoy.yaml: no %q", want)
		}
	}

	envoy := func(t *testing.T, method, pathAndQuery, require string, headers ...string) *response {
		t.Helper()
		h := []string{"Content-Length", "0", "X-Forwarded-Proto", "https", "X-Request-Id", randomString(t)}
		if require != "" {
			h = append(h, "X-Authresolver-Require", require)
		}
		return do(t, method, e.Resolver.ResolveURL()+"/resolve"+pathAndQuery, nil, append(h, headers...)...)
	}

	t.Run("allow is exactly 200 for every method", func(t *testing.T) {
		for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions} {
			r := envoy(t, method, "/orders/7?expand=items", "", "Authorization", "Bearer "+plain)
			if r.Status != http.StatusOK {
				t.Errorf("%s: status %d, want exactly 200 (Envoy denies any other 2xx)", method, r.Status)
				continue
			}
			wantHeaders(t, r.Header, "X-Auth-Session-Valid", "true", "X-Auth-User-Id", "user-plain", "X-Auth-Credential", "jwt", "X-Auth-Issuer", is.Issuer)
		}
		r := envoy(t, http.MethodHead, "/orders", "", "Authorization", "Bearer "+plain)
		wantStatus(t, r, http.StatusOK)
	})

	t.Run("deny", func(t *testing.T) {
		r := envoy(t, http.MethodPost, "/orders", "")
		wantStatus(t, r, http.StatusUnauthorized)
		if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("WWW-Authenticate %q, want Bearer", r.Header.Get("WWW-Authenticate"))
		}
	})

	t.Run("requirements from the gateway header", func(t *testing.T) {
		r := envoy(t, http.MethodDelete, "/admin/users/1", "role=admin", "Authorization", "Bearer "+plain)
		wantStatus(t, r, http.StatusForbidden)
		wantHeaders(t, r.Header, "X-Auth-Error", "insufficient_role")
		r = envoy(t, http.MethodDelete, "/admin/users/1", "role=admin&verified=true", "Authorization", "Bearer "+admin)
		wantStatus(t, r, http.StatusOK)
		wantHeaders(t, r.Header, "X-Auth-User-Roles", "admin", "X-Auth-User-Verified", "true")
		r = envoy(t, http.MethodGet, "/admin", "role=admin&verified=true", "Authorization", "Bearer "+plain)
		wantStatus(t, r, http.StatusForbidden)
	})

	t.Run("client query is never a requirement", func(t *testing.T) {
		// Envoy appends the client path, which always starts with "/".
		for _, path := range []string{"/", "/x", "/resolve"} {
			for _, query := range []string{"optional=true", "optional=true&role=admin", "a=1&optional=true&anonymous=true"} {
				r := envoy(t, http.MethodPost, path+"?"+query, "")
				if r.Status != http.StatusUnauthorized {
					t.Errorf("/resolve%s?%s without credential: %d, want 401", path, query, r.Status)
				}
				r = envoy(t, http.MethodGet, "/admin"+path+"?"+query, "role=admin", "Authorization", "Bearer "+plain)
				if r.Status != http.StatusForbidden {
					t.Errorf("/resolve/admin%s?%s with role=admin required: %d, want 403", path, query, r.Status)
				}
			}
		}
		// A requirement in the client's query is ignored as well.
		r := envoy(t, http.MethodGet, "/x?role=admin", "", "Authorization", "Bearer "+plain)
		wantStatus(t, r, http.StatusOK)
	})

	t.Run("optional is not accepted from the header", func(t *testing.T) {
		// headers_to_add overrides a client's copy in Envoy; even if one got
		// through, optional must not be honoured from it.
		r := envoy(t, http.MethodGet, "/x", "optional=true")
		if r.Status == http.StatusOK {
			t.Errorf("X-Authresolver-Require: optional=true without credential: 200, want a denial")
		}
	})

	t.Run("resolve ignores the gateway header", func(t *testing.T) {
		r := get(t, e.Resolver.ResolveURL()+"/resolve", "X-Authresolver-Require", "role=admin", "Authorization", "Bearer "+plain)
		wantStatus(t, r, http.StatusOK)
	})

	t.Run("session cookie", func(t *testing.T) {
		s := e.Resolver.createSession(t, map[string]any{"user_id": "user-session", "roles": []string{"admin"}})
		r := envoy(t, http.MethodPut, "/admin/settings", "role=admin", "Cookie", sessionCookie(t, s))
		wantStatus(t, r, http.StatusOK)
		wantHeaders(t, r.Header, "X-Auth-User-Id", "user-session", "X-Auth-Session-Id", s.Handle)
	})
}

// TestHealthcheck runs the subcommand the Docker HEALTHCHECK uses.
func TestHealthcheck(t *testing.T) {
	t.Parallel()
	needBinary(t)
	r := startResolver(t, nil)
	run := func(addr string) error {
		cmd := exec.Command(binary, "healthcheck")
		cmd.Env = []string{"AUTHRESOLVER_LISTEN_ADDR=" + addr}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Logf("healthcheck %s: %s", addr, out)
		}
		return err
	}
	if err := run(r.ResolveAddr); err != nil {
		t.Errorf("healthcheck against a running server: %v, want exit 0", err)
	}
	r.stop()
	err := run(r.ResolveAddr)
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 1 {
		t.Errorf("healthcheck against a stopped server: %v, want exit 1", err)
	}
}

// TestVersion checks that -X main.version stamps the binary, as the
// Dockerfile does.
func TestVersion(t *testing.T) {
	t.Parallel()
	needBinary(t)
	out, err := exec.Command(binary, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != "authresolver "+testVersion {
		t.Errorf("version: %q, want %q", got, "authresolver "+testVersion)
	}
}

// TestShutdown checks that SIGTERM stops the server cleanly and promptly.
func TestShutdown(t *testing.T) {
	t.Parallel()
	r := startResolver(t, nil)
	start := time.Now()
	r.stop()
	if r.err != nil {
		t.Errorf("exit after SIGTERM: %v, want 0", r.err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("shutdown took %v", d)
	}
}
