package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/authresolver/authresolver/jwks/jwkstest"
	"github.com/authresolver/authresolver/profile/stacktest"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigSecretFiles(t *testing.T) {
	cfg, err := loadConfig(map[string]string{
		"AUTHRESOLVER_ADMIN_TOKEN_FILE":                 writeFile(t, "admin-secret\n"),
		"AUTHRESOLVER_INTROSPECTION_URL":                "https://idp.example/introspect",
		"AUTHRESOLVER_INTROSPECTION_CLIENT_ID":          "resolver",
		"AUTHRESOLVER_INTROSPECTION_CLIENT_SECRET_FILE": writeFile(t, "client-secret"),
		"AUTHRESOLVER_STACK_PROJECT_ID":                 "proj-1",
		"AUTHRESOLVER_STACK_SECRET_SERVER_KEY_FILE":     writeFile(t, "ssk_key\r\n"),
	})
	if err != nil {
		t.Fatal(err)
	}
	got := []string{cfg.AdminToken, cfg.IntrospectionClientSecret, cfg.StackSecretServerKey}
	if diff := cmp.Diff([]string{"admin-secret", "client-secret", "ssk_key"}, got); diff != "" {
		t.Errorf("secrets (-want +got):\n%s", diff)
	}
}

func TestConfigRemoteErrors(t *testing.T) {
	secret := writeFile(t, "s3cr3t-value")
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"AUTHRESOLVER_STACK_PROJECT_ID": "p", "AUTHRESOLVER_STACK_SECRET_SERVER_KEY": "a", "AUTHRESOLVER_STACK_SECRET_SERVER_KEY_FILE": secret}, "AUTHRESOLVER_STACK_SECRET_SERVER_KEY_FILE: set, and so is"},
		{map[string]string{"AUTHRESOLVER_INTROSPECTION_CLIENT_SECRET_FILE": "/nonexistent/secret"}, "AUTHRESOLVER_INTROSPECTION_CLIENT_SECRET_FILE: open /nonexistent/secret"},
		{map[string]string{"AUTHRESOLVER_STACK_SECRET_SERVER_KEY_FILE": writeFile(t, "\n")}, "AUTHRESOLVER_STACK_SECRET_SERVER_KEY_FILE: "},
		{map[string]string{"AUTHRESOLVER_INTROSPECTION_URL": "http://idp.example/i", "AUTHRESOLVER_INTROSPECTION_CLIENT_ID": "c", "AUTHRESOLVER_INTROSPECTION_CLIENT_SECRET": "s"}, "AUTHRESOLVER_INTROSPECTION_URL: URL \"http://idp.example/i\": http:// is only allowed"},
		{map[string]string{"AUTHRESOLVER_INTROSPECTION_URL": "https://idp.example/i", "AUTHRESOLVER_INTROSPECTION_CLIENT_SECRET": "s"}, "AUTHRESOLVER_INTROSPECTION_CLIENT_ID: is empty"},
		{map[string]string{"AUTHRESOLVER_INTROSPECTION_URL": "https://idp.example/i", "AUTHRESOLVER_INTROSPECTION_CLIENT_ID": "c"}, "AUTHRESOLVER_INTROSPECTION_CLIENT_SECRET: is empty"},
		{map[string]string{"AUTHRESOLVER_INTROSPECTION": "true", "AUTHRESOLVER_INTROSPECTION_CLIENT_ID": "c", "AUTHRESOLVER_INTROSPECTION_CLIENT_SECRET": "s"}, "AUTHRESOLVER_INTROSPECTION: true needs AUTHRESOLVER_JWT_ISSUER"},
		{map[string]string{"AUTHRESOLVER_INTROSPECTION": "yes"}, "AUTHRESOLVER_INTROSPECTION: "},
		{map[string]string{"AUTHRESOLVER_INTROSPECTION_CLIENT_ID": "c"}, "AUTHRESOLVER_INTROSPECTION_URL: is empty, but"},
		{map[string]string{"AUTHRESOLVER_STACK_SECRET_SERVER_KEY": "k"}, "AUTHRESOLVER_STACK_SECRET_SERVER_KEY: is set but"},
		{map[string]string{"AUTHRESOLVER_STACK_PROJECT_ID": "a/b"}, "AUTHRESOLVER_STACK_PROJECT_ID: \"a/b\" is not a project ID"},
		{map[string]string{"AUTHRESOLVER_STACK_PROJECT_ID": "p", "AUTHRESOLVER_STACK_API_URL": "http://stack.example"}, "AUTHRESOLVER_STACK_API_URL: "},
		{map[string]string{"AUTHRESOLVER_ISSUERS": `[{"issuer":"https://a","jwks_url":"https://a/j","profile":"sometimes"}]`}, "AUTHRESOLVER_ISSUERS: issuer \"https://a\": profile \"sometimes\""},
		{map[string]string{"AUTHRESOLVER_ISSUERS": `[{"issuer":"https://a","jwks_url":"https://a/j","profile":"always"}]`}, "AUTHRESOLVER_ISSUERS: issuer \"https://a\": profile \"always\" needs"},
		{map[string]string{"AUTHRESOLVER_ISSUERS": `[{"issuer":"https://a","jwks_url":"https://a/j","userinfo_url":"http://a.example/u"}]`}, "AUTHRESOLVER_ISSUERS: issuer \"https://a\": userinfo_url"},
		{map[string]string{"AUTHRESOLVER_ISSUERS": `[{"issuer":"https://a","jwks_url":"https://a/j","stack_project_id":"p"}]`}, "AUTHRESOLVER_ISSUERS: issuer \"https://a\": stack_project_id needs stack_secret_server_key"},
		{map[string]string{"AUTHRESOLVER_REMOTE_TIMEOUT": "2m"}, "AUTHRESOLVER_REMOTE_TIMEOUT: 2m0s is out of range"},
	}
	for _, tt := range tests {
		_, err := loadConfig(tt.env)
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("loadConfig(%v) = %v, want an error starting %q", tt.env, err, tt.want)
			continue
		}
		if strings.Contains(err.Error(), "s3cr3t-value") || strings.Contains(err.Error(), "\n") {
			t.Errorf("error %q: a secret or more than one line", err)
		}
	}
}

func TestConfigStack(t *testing.T) {
	for _, anon := range []string{"true", "false"} {
		cfg, err := loadConfig(map[string]string{
			"AUTHRESOLVER_STACK_PROJECT_ID":        "proj-1",
			"AUTHRESOLVER_STACK_SECRET_SERVER_KEY": "ssk_1",
			"AUTHRESOLVER_STACK_ALLOW_ANONYMOUS":   anon,
		})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, is := range cfg.issuers {
			got = append(got, is.Issuer+" "+is.JWKSURL+" "+strings.Join(is.Audiences, ",")+" "+strings.Join(is.Algorithms, ","))
		}
		want := []string{"https://api.stack-auth.com/api/v1/projects/proj-1 https://api.stack-auth.com/api/v1/projects/proj-1/.well-known/jwks.json proj-1 ES256"}
		if anon == "true" {
			want = append(want, "https://api.stack-auth.com/api/v1/projects-anonymous-users/proj-1 https://api.stack-auth.com/api/v1/projects/proj-1/.well-known/jwks.json?include_anonymous=true proj-1:anon ES256")
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("anonymous %s: issuers (-want +got):\n%s", anon, diff)
		}
		if diff := cmp.Diff([]string{"X-Stack-Access-Token"}, cfg.TokenHeaders); diff != "" {
			t.Errorf("token headers (-want +got):\n%s", diff)
		}
	}
}

// TestServeStack runs the Stack Auth preset end to end against Stack's
// API on httptest, with ES256 tokens in Stack's iss/aud format.
func TestServeStack(t *testing.T) {
	stack := stacktest.New("proj-1", "ssk_secret")
	t.Cleanup(stack.Close)
	env := map[string]string{
		"AUTHRESOLVER_STACK_PROJECT_ID":        stack.ProjectID,
		"AUTHRESOLVER_STACK_SECRET_SERVER_KEY": stack.ServerKey,
		"AUTHRESOLVER_STACK_API_URL":           stack.URL,
		"AUTHRESOLVER_CLAIM_HEADERS":           "primary_email=Email,display_name=Name",
	}
	s := startServer(t, env)
	waitFor(t, 10*time.Second, "ready", func() bool { c, _, _ := get(t, s.resolve+"/readyz", nil); return c == 200 })

	alice := stack.Mint(stacktest.User{ID: "u-alice", Email: "alice@example.com", EmailVerified: true, DisplayName: "Alice"}, time.Hour)
	anon := stack.Mint(stacktest.User{ID: "u-anon", Anonymous: true}, time.Hour)
	restricted := stack.Mint(stacktest.User{ID: "u-r", Email: "r@example.com", EmailVerified: true, Restricted: true}, time.Hour)
	tests := []struct {
		name, route, header, token string
		code                       int
		want                       map[string]string
	}{
		{"JWT locally", "/resolve", "X-Stack-Access-Token", alice, 200, map[string]string{"X-Auth-User-Id": "u-alice", "X-Auth-User-Verified": "true", "X-Auth-Name": ""}},
		{"Bearer", "/resolve", "Authorization", "Bearer " + alice, 200, map[string]string{"X-Auth-User-Id": "u-alice"}},
		{"REST profile", "/resolve?profile=true", "X-Stack-Access-Token", alice, 200, map[string]string{"X-Auth-Email": "alice@example.com", "X-Auth-Name": "Alice"}},
		{"anonymous", "/resolve", "X-Stack-Access-Token", anon, 200, map[string]string{"X-Auth-User-Anonymous": "true"}},
		{"anonymous refused by the route", "/resolve?anonymous=false", "X-Stack-Access-Token", anon, 403, map[string]string{"X-Auth-Error": "insufficient_authentication"}},
		{"restricted is not verified", "/resolve?verified=true", "X-Stack-Access-Token", restricted, 403, map[string]string{"X-Auth-Error": "insufficient_verification"}},
		{"restricted, REST profile", "/resolve?profile=true&verified=true", "X-Stack-Access-Token", restricted, 403, map[string]string{"X-Auth-Error": "insufficient_verification"}},
	}
	for _, tt := range tests {
		code, h, _ := get(t, s.resolve+tt.route, map[string]string{tt.header: tt.token})
		if code != tt.code {
			t.Errorf("%s: status %d, want %d", tt.name, code, tt.code)
		}
		for k, v := range tt.want {
			if h.Get(k) != v {
				t.Errorf("%s: %s = %q, want %q", tt.name, k, h.Get(k), v)
			}
		}
	}

	// Signed out at Stack: the REST route refuses at once (its cached
	// profile aside: a fresh token here), local verification does not.
	bob := stack.Mint(stacktest.User{ID: "u-bob"}, time.Hour)
	stack.Revoke(bob)
	if code, h, _ := get(t, s.resolve+"/resolve?profile=true", map[string]string{"X-Stack-Access-Token": bob}); code != 401 || h.Get("X-Auth-Error") != "token_rejected" {
		t.Errorf("signed out, REST: status %d, error %q; want 401 token_rejected", code, h.Get("X-Auth-Error"))
	}
	if code, _, _ := get(t, s.resolve+"/resolve", map[string]string{"X-Stack-Access-Token": bob}); code != 200 {
		t.Errorf("signed out, JWT: status %d, want 200", code)
	}
	// Stack down: 503 where the profile is needed, 200 elsewhere.
	stack.Status.Store(502)
	carol := stack.Mint(stacktest.User{ID: "u-carol"}, time.Hour)
	if code, _, _ := get(t, s.resolve+"/resolve?profile=true", map[string]string{"X-Stack-Access-Token": carol}); code != 503 {
		t.Errorf("Stack down, REST: status %d, want 503", code)
	}
	if code, _, _ := get(t, s.resolve+"/resolve", map[string]string{"X-Stack-Access-Token": carol}); code != 200 {
		t.Errorf("Stack down, JWT: status %d, want 200", code)
	}

	for _, secret := range []string{stack.ServerKey, alice, bob, carol} {
		if strings.Contains(s.logs.String(), secret) {
			t.Error("the log carries a secret or a token")
		}
	}

	// Anonymous users refused by the operator: their issuer is not trusted.
	env["AUTHRESOLVER_STACK_ALLOW_ANONYMOUS"] = "false"
	s2 := startServer(t, env)
	waitFor(t, 10*time.Second, "ready", func() bool { c, _, _ := get(t, s2.resolve+"/readyz", nil); return c == 200 })
	if code, h, _ := get(t, s2.resolve+"/resolve", map[string]string{"X-Stack-Access-Token": anon}); code != 401 || h.Get("X-Auth-Error") != "unknown_issuer" {
		t.Errorf("anonymous not allowed: status %d, error %q; want 401 unknown_issuer", code, h.Get("X-Auth-Error"))
	}
}

// TestServeDiscovery: an issuer configured by its URL alone, whose
// provider is down at start-up: /readyz fails and tokens get 503 until
// the provider is up, then it works without a restart. A document naming
// another issuer is never used.
func TestServeDiscovery(t *testing.T) {
	key := jwkstest.NewKey("ES256", "k1")
	var down atomic.Bool
	down.Store(true)
	var wrongIssuer atomic.Bool
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			iss := srv.URL
			if wrongIssuer.Load() {
				iss = "https://evil.example"
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"issuer": iss, "jwks_uri": srv.URL + "/keys"})
		case "/keys":
			_, _ = w.Write(jwkstest.JWKS(key))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	s := startServer(t, map[string]string{"AUTHRESOLVER_JWT_ISSUER": srv.URL})
	tok := key.Mint(jwkstest.Claims(srv.URL, "alice", time.Hour))
	bearer := map[string]string{"Authorization": "Bearer " + tok}
	if code, _, _ := get(t, s.resolve+"/readyz", nil); code != 503 {
		t.Errorf("/readyz while the provider is down: %d, want 503", code)
	}
	if code, _, _ := get(t, s.resolve+"/resolve", bearer); code != 503 {
		t.Errorf("resolve while the provider is down: %d, want 503", code)
	}
	down.Store(false)
	waitFor(t, 15*time.Second, "/readyz 200 once the provider is up", func() bool {
		code, _, _ := get(t, s.resolve+"/readyz", nil)
		return code == 200
	})
	if code, h, _ := get(t, s.resolve+"/resolve", bearer); code != 200 || h.Get("X-Auth-User-Id") != "alice" {
		t.Errorf("resolve after discovery: %d, user %q", code, h.Get("X-Auth-User-Id"))
	}

	wrongIssuer.Store(true)
	s2 := startServer(t, map[string]string{"AUTHRESOLVER_JWT_ISSUER": srv.URL})
	waitFor(t, 10*time.Second, "the mismatch logged", func() bool {
		return strings.Contains(s2.logs.String(), "not the configured one")
	})
	if code, _, _ := get(t, s2.resolve+"/readyz", nil); code != 503 {
		t.Errorf("/readyz with a mismatched issuer: %d, want 503", code)
	}
	if code, _, _ := get(t, s2.resolve+"/resolve", bearer); code != 503 {
		t.Errorf("resolve with a mismatched issuer: %d, want 503", code)
	}
}

// TestServeIntrospection: opaque tokens through an RFC 7662 endpoint,
// and an admin revocation applying to them.
func TestServeIntrospection(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if id, secret, _ := r.BasicAuth(); id != "resolver" || secret != "client-secret" || r.FormValue("token") != "opaque-token-1" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"active":false}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"active": true, "sub": "alice", "aud": "api",
			"iat": time.Now().Add(-time.Minute).Unix(), "exp": time.Now().Add(time.Hour).Unix()})
	}))
	t.Cleanup(srv.Close)
	s := startServer(t, map[string]string{
		"AUTHRESOLVER_INTROSPECTION_URL":                srv.URL,
		"AUTHRESOLVER_INTROSPECTION_CLIENT_ID":          "resolver",
		"AUTHRESOLVER_INTROSPECTION_CLIENT_SECRET_FILE": writeFile(t, "client-secret\n"),
		"AUTHRESOLVER_INTROSPECTION_AUDIENCE":           "api",
		"AUTHRESOLVER_ADMIN_TOKEN":                      "admin-token",
	})
	code, h, _ := get(t, s.resolve+"/resolve", map[string]string{"Authorization": "Bearer opaque-token-1"})
	if code != 200 || h.Get("X-Auth-Credential") != "opaque" || h.Get("X-Auth-User-Id") != "alice" {
		t.Errorf("opaque: %d, credential %q, user %q", code, h.Get("X-Auth-Credential"), h.Get("X-Auth-User-Id"))
	}
	if code, h, _ := get(t, s.resolve+"/resolve", map[string]string{"Authorization": "Bearer opaque-token-2"}); code != 401 || h.Get("X-Auth-Error") != "token_inactive" {
		t.Errorf("inactive: %d, error %q", code, h.Get("X-Auth-Error"))
	}
	req, _ := http.NewRequest("POST", s.admin+"/v1/revocations", strings.NewReader(`{"user_id":"alice"}`))
	req.Header.Set("Authorization", "Bearer admin-token")
	req.Header.Set("Content-Type", "application/json")
	if code := do(t, req); code != 204 {
		t.Fatalf("revocation: %d", code)
	}
	if code, h, _ := get(t, s.resolve+"/resolve", map[string]string{"Authorization": "Bearer opaque-token-1"}); code != 401 || h.Get("X-Auth-Error") != "token_revoked" {
		t.Errorf("after revocation: %d, error %q; want 401 token_revoked", code, h.Get("X-Auth-Error"))
	}
}
