package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/authresolver/authresolver/resolver"
)

func TestConfigDefaults(t *testing.T) {
	cfg, err := loadConfig(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	got := []string{cfg.ListenAddr, cfg.AdminAddr, cfg.SessionCookie, cfg.CacheTTL.String(), cfg.HeaderPrefix,
		strings.Join(cfg.JWTAlgorithms, ","), cfg.JWTLeeway.String(), cfg.SessionIdleTimeout.String(), cfg.SessionLifetime.String()}
	want := []string{":8080", "127.0.0.1:9090", "session", "5s", "X-Auth-", "RS256,ES256,EdDSA", "30s", "720h0m0s", "8760h0m0s"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

func TestConfigIssuers(t *testing.T) {
	cfg, err := loadConfig(map[string]string{
		"AUTHRESOLVER_JWT_ISSUER":    "https://a.example",
		"AUTHRESOLVER_JWT_JWKS_URL":  "https://a.example/jwks",
		"AUTHRESOLVER_JWT_AUDIENCE":  "api,web",
		"AUTHRESOLVER_ISSUERS":       `[{"issuer":"https://b.example","jwks_url":"file:///etc/jwks.json","algorithms":["ES256"],"leeway":"5s","typ":"at+jwt"}]`,
		"AUTHRESOLVER_CLAIM_HEADERS": "email=Email, https://authgear.com/claims/user/roles=User-Roles-Raw",
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, is := range cfg.issuers {
		got = append(got, is.Issuer+" "+is.JWKSURL+" "+strings.Join(is.Audiences, ",")+" "+strings.Join(is.Algorithms, ",")+" "+is.leeway.String()+" "+is.Type)
	}
	want := []string{
		"https://a.example https://a.example/jwks api,web RS256,ES256,EdDSA 30s ",
		"https://b.example file:///etc/jwks.json  ES256 5s at+jwt",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("issuers (-want +got):\n%s", diff)
	}
	wantClaims := []resolver.ClaimHeader{{Claim: "email", Header: "Email"}, {Claim: "https://authgear.com/claims/user/roles", Header: "User-Roles-Raw"}}
	if diff := cmp.Diff(wantClaims, cfg.claims); diff != "" {
		t.Errorf("claims (-want +got):\n%s", diff)
	}
}

func TestConfigLogin(t *testing.T) {
	cfg, err := loadConfig(map[string]string{
		"AUTHRESOLVER_LOGIN_URL":           "https://auth.example.com/login",
		"AUTHRESOLVER_LOGIN_ALLOWED_HOSTS": "app.example.com, .apps.example.com",
	})
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{"X-Original-Url": {"https://a.apps.example.com/x"}}
	got, err := cfg.login.Target(h)
	if want := "https://auth.example.com/login?redirect_uri=https%3A%2F%2Fa.apps.example.com%2Fx"; err != nil || got != want {
		t.Errorf("Target = %q, %v; want %q", got, err, want)
	}
	if cfg, err := loadConfig(map[string]string{}); err != nil || cfg.login != nil {
		t.Errorf("without LOGIN_URL: login = %v, %v; want nil", cfg.login, err)
	}
}

// TestConfigErrors: every bad value names its variable.
func TestConfigErrors(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"AUTHRESOLVER_CACHE_TTL": "5"}, "AUTHRESOLVER_CACHE_TTL: not a duration"},
		{map[string]string{"AUTHRESOLVER_CACHE_TTL": "-1s"}, "AUTHRESOLVER_CACHE_TTL: -1s is out of range"},
		{map[string]string{"AUTHRESOLVER_FLIGHT_TIMEOUT": "0s"}, "AUTHRESOLVER_FLIGHT_TIMEOUT: 0s is out of range"},
		{map[string]string{"AUTHRESOLVER_JWT_LEEWAY": "1h"}, "AUTHRESOLVER_JWT_LEEWAY: 1h0m0s is out of range"},
		{map[string]string{"AUTHRESOLVER_LISTEN_ADDR": "8080"}, "AUTHRESOLVER_LISTEN_ADDR: want host:port"},
		{map[string]string{"AUTHRESOLVER_GRPC_ADDR": "9000"}, "AUTHRESOLVER_GRPC_ADDR: want host:port"},
		{map[string]string{"AUTHRESOLVER_ADMIN_TOKEN": "t", "AUTHRESOLVER_ADMIN_TOKEN_FILE": "/etc/hostname"}, "AUTHRESOLVER_ADMIN_TOKEN_FILE: set together with AUTHRESOLVER_ADMIN_TOKEN"},
		{map[string]string{"AUTHRESOLVER_ADMIN_TOKEN_FILE": "/nonexistent/token"}, "AUTHRESOLVER_ADMIN_TOKEN_FILE: open /nonexistent/token"},
		{map[string]string{"AUTHRESOLVER_REDIS_URL": "http://x"}, "AUTHRESOLVER_REDIS_URL: want redis://"},
		{map[string]string{"AUTHRESOLVER_REDIS_MASTER_NAME": "m"}, "AUTHRESOLVER_REDIS_MASTER_NAME: needs"},
		{map[string]string{"AUTHRESOLVER_JWT_ISSUER": "http://idp.example"}, "AUTHRESOLVER_JWT_ISSUER: no jwks_url, and the issuer cannot be discovered"},
		{map[string]string{"AUTHRESOLVER_JWT_JWKS_URL": "https://a/jwks"}, "AUTHRESOLVER_JWT_ISSUER: is empty"},
		{map[string]string{"AUTHRESOLVER_JWT_ISSUER": "https://a", "AUTHRESOLVER_JWT_JWKS_URL": "http://idp.example/jwks"}, "AUTHRESOLVER_JWT_JWKS_URL: JWKS URL \"http://idp.example/jwks\": http:// is allowed for loopback hosts only"},
		{map[string]string{"AUTHRESOLVER_JWT_ISSUER": "https://a", "AUTHRESOLVER_JWT_JWKS_URL": "ftp://a/jwks"}, "AUTHRESOLVER_JWT_JWKS_URL: JWKS URL \"ftp://a/jwks\": want https://"},
		{map[string]string{"AUTHRESOLVER_JWT_ALGORITHMS": "HS256"}, "AUTHRESOLVER_JWT_ALGORITHMS: \"HS256\" is not supported"},
		{map[string]string{"AUTHRESOLVER_JWT_ALGORITHMS": "none"}, "AUTHRESOLVER_JWT_ALGORITHMS: \"none\" is not supported"},
		{map[string]string{"AUTHRESOLVER_ISSUERS": `{"issuer":"x"}`}, "AUTHRESOLVER_ISSUERS: not a JSON array"},
		{map[string]string{"AUTHRESOLVER_ISSUERS": `[{"jwks_url":"https://x/j"}]`}, "AUTHRESOLVER_ISSUERS: entry 0: issuer is required"},
		{map[string]string{"AUTHRESOLVER_ISSUERS": `[{"issuer":"x"}]`}, "AUTHRESOLVER_ISSUERS: no jwks_url, and the issuer cannot be discovered"},
		{map[string]string{"AUTHRESOLVER_ISSUERS": `[{"issuer":"x","jwks_url":"https://x/j","algorithms":["HS256"]}]`}, "AUTHRESOLVER_ISSUERS: entry 0: \"HS256\" is not supported"},
		{map[string]string{"AUTHRESOLVER_ISSUERS": `[{"issuer":"x","jwks_url":"https://x/j","leeway":"10"}]`}, "AUTHRESOLVER_ISSUERS: entry 0: leeway \"10\""},
		{map[string]string{"AUTHRESOLVER_ISSUERS": `[{"issuer":"x","jwks_url":"https://x/j","typo":1}]`}, "AUTHRESOLVER_ISSUERS: not a JSON array of issuers: json: unknown field \"typo\""},
		{map[string]string{"AUTHRESOLVER_ISSUERS": `[{"issuer":"x","jwks_url":"https://x/j"},{"issuer":"x","jwks_url":"https://x/k"}]`}, "AUTHRESOLVER_ISSUERS: issuer \"x\" is configured twice"},
		{map[string]string{"AUTHRESOLVER_HEADER_PREFIX": "X Auth"}, "AUTHRESOLVER_HEADER_PREFIX: \"X Auth\" is not a valid header name prefix"},
		{map[string]string{"AUTHRESOLVER_TOKEN_HEADERS": "Cookie"}, "AUTHRESOLVER_TOKEN_HEADERS: \"Cookie\" is read already"},
		{map[string]string{"AUTHRESOLVER_SESSION_COOKIE": "a;b"}, "AUTHRESOLVER_SESSION_COOKIE: \"a;b\" is not a valid cookie name"},
		{map[string]string{"AUTHRESOLVER_CLAIM_HEADERS": "email"}, "AUTHRESOLVER_CLAIM_HEADERS: \"email\": want claim=Header"},
		{map[string]string{"AUTHRESOLVER_CLAIM_HEADERS": "email=Bad Header"}, "AUTHRESOLVER_CLAIM_HEADERS: \"email=Bad Header\": want claim=Header, the header of letters, digits and '-'"},
		{map[string]string{"AUTHRESOLVER_LOG_LEVEL": "loud"}, "AUTHRESOLVER_LOG_LEVEL: want debug"},
		{map[string]string{"AUTHRESOLVER_ASSERTION_KEY_FILE": "/k.pem"}, "AUTHRESOLVER_ASSERTION_ISSUER: is empty"},
		{map[string]string{"AUTHRESOLVER_ASSERTION_KEY_FILE": "/k.pem", "AUTHRESOLVER_ASSERTION_ISSUER": "https://a"}, "AUTHRESOLVER_ASSERTION_AUDIENCE: is empty"},
		{map[string]string{"AUTHRESOLVER_ASSERTION_ISSUER": "https://a", "AUTHRESOLVER_ASSERTION_AUDIENCE": "app"}, "AUTHRESOLVER_ASSERTION_KEY_FILE: is empty"},
		{map[string]string{"AUTHRESOLVER_ASSERTION_AUDIENCE": " "}, "AUTHRESOLVER_ASSERTION_KEY_FILE: is empty"},

		// One JWKS URL validator (the verifier's), naming the variable.
		{single("file://etc/jwks.json"), `AUTHRESOLVER_JWT_JWKS_URL: JWKS URL "file://etc/jwks.json": want file:///absolute/path`},
		{single("file:jwks.json"), `AUTHRESOLVER_JWT_JWKS_URL: JWKS URL "file:jwks.json": want file:///absolute/path`},
		{single("https:///jwks"), `AUTHRESOLVER_JWT_JWKS_URL: JWKS URL "https:///jwks" has no host`},
		{single("http://localhost.evil.example/jwks"), `AUTHRESOLVER_JWT_JWKS_URL: JWKS URL "http://localhost.evil.example/jwks": http:// is allowed for loopback hosts only`},
		{map[string]string{"AUTHRESOLVER_ISSUERS": `[{"issuer":"x","jwks_url":"file://etc/jwks.json"}]`}, `AUTHRESOLVER_ISSUERS: entry 0: JWKS URL "file://etc/jwks.json": want file:///absolute/path`},
		{map[string]string{"AUTHRESOLVER_ISSUERS": `[{"issuer":"x","jwks_url":"https://x/j","audiences":["a",""]}]`}, "AUTHRESOLVER_ISSUERS: entry 0: empty audience"},

		// Comma lists: an empty entry is refused.
		{withSingle(map[string]string{"AUTHRESOLVER_JWT_AUDIENCE": "a,,b"}), `AUTHRESOLVER_JWT_AUDIENCE: empty entry in the comma list "a,,b"`},
		{withSingle(map[string]string{"AUTHRESOLVER_JWT_AUDIENCE": "a, "}), `AUTHRESOLVER_JWT_AUDIENCE: empty entry in the comma list "a,"`},
		{map[string]string{"AUTHRESOLVER_JWT_ALGORITHMS": "ES256,"}, `AUTHRESOLVER_JWT_ALGORITHMS: empty entry in the comma list "ES256,"`},
		{map[string]string{"AUTHRESOLVER_TOKEN_HEADERS": "X-Token, ,X-Other"}, `AUTHRESOLVER_TOKEN_HEADERS: empty entry`},
		{map[string]string{"AUTHRESOLVER_TOKEN_HEADERS": "X-Token,x-token"}, `AUTHRESOLVER_TOKEN_HEADERS: "x-token" is listed twice`},
		{map[string]string{"AUTHRESOLVER_REDIS_ADDRS": "a:1,,b:2"}, `AUTHRESOLVER_REDIS_ADDRS: empty entry`},

		// A claim header never takes an identity header's name.
		{map[string]string{"AUTHRESOLVER_CLAIM_HEADERS": "email=User-Id"}, `AUTHRESOLVER_CLAIM_HEADERS: "User-Id" is the name of an identity header`},
		{map[string]string{"AUTHRESOLVER_CLAIM_HEADERS": "email=user-id"}, `AUTHRESOLVER_CLAIM_HEADERS: "user-id" is the name of an identity header`},
		{map[string]string{"AUTHRESOLVER_CLAIM_HEADERS": "x=Error"}, `AUTHRESOLVER_CLAIM_HEADERS: "Error" is the name of an identity header`},
		{map[string]string{"AUTHRESOLVER_CLAIM_HEADERS": "sid=SESSION-ID"}, `AUTHRESOLVER_CLAIM_HEADERS: "SESSION-ID" is the name of an identity header`},
		{map[string]string{"AUTHRESOLVER_CLAIM_HEADERS": "a=Assertion"}, `AUTHRESOLVER_CLAIM_HEADERS: "Assertion" is the name of an identity header`},
		{map[string]string{"AUTHRESOLVER_CLAIM_HEADERS": "v=session-valid"}, `AUTHRESOLVER_CLAIM_HEADERS: "session-valid" is the name of an identity header`},
		{map[string]string{"AUTHRESOLVER_CLAIM_HEADERS": "a=Email,b=EMAIL"}, `AUTHRESOLVER_CLAIM_HEADERS: header "EMAIL" is mapped twice`},
		{map[string]string{"AUTHRESOLVER_CLAIM_HEADERS": "a=User_Id"}, `AUTHRESOLVER_CLAIM_HEADERS: "a=User_Id": want claim=Header`},
		{map[string]string{"AUTHRESOLVER_CLAIM_HEADERS": "a=User.Id"}, `AUTHRESOLVER_CLAIM_HEADERS: "a=User.Id": want claim=Header`},
		{map[string]string{"AUTHRESOLVER_CLAIM_HEADERS": "email=Email,"}, `AUTHRESOLVER_CLAIM_HEADERS: "": want claim=Header`},
		{map[string]string{"AUTHRESOLVER_CLAIM_HEADERS": " =Email"}, `AUTHRESOLVER_CLAIM_HEADERS: "=Email": want claim=Header`},
		{map[string]string{"AUTHRESOLVER_LOGIN_URL": "http://auth.example.com/login", "AUTHRESOLVER_LOGIN_ALLOWED_HOSTS": "app.example.com"}, "AUTHRESOLVER_LOGIN_URL: \"http://auth.example.com/login\": http:// is only allowed for a loopback host"},
		{map[string]string{"AUTHRESOLVER_LOGIN_URL": "/login", "AUTHRESOLVER_LOGIN_ALLOWED_HOSTS": "app.example.com"}, "AUTHRESOLVER_LOGIN_URL: \"/login\": want an absolute URL"},
		{map[string]string{"AUTHRESOLVER_LOGIN_URL": "javascript:alert(1)", "AUTHRESOLVER_LOGIN_ALLOWED_HOSTS": "app.example.com"}, "AUTHRESOLVER_LOGIN_URL: \"javascript:alert(1)\": want an absolute URL"},
		{map[string]string{"AUTHRESOLVER_LOGIN_URL": "https://auth.example.com/login"}, "AUTHRESOLVER_LOGIN_ALLOWED_HOSTS: empty"},
		{map[string]string{"AUTHRESOLVER_LOGIN_URL": "https://auth.example.com/login", "AUTHRESOLVER_LOGIN_ALLOWED_HOSTS": "*.example.com"}, "AUTHRESOLVER_LOGIN_ALLOWED_HOSTS: \"*.example.com\": want a host name"},
		{map[string]string{"AUTHRESOLVER_LOGIN_URL": "https://auth.example.com/login", "AUTHRESOLVER_LOGIN_ALLOWED_HOSTS": "app.example.com", "AUTHRESOLVER_LOGIN_REDIRECT_PARAM": "a=b"}, "AUTHRESOLVER_LOGIN_REDIRECT_PARAM: \"a=b\": want"},
		{map[string]string{"AUTHRESOLVER_LOGIN_ALLOWED_HOSTS": "app.example.com"}, "AUTHRESOLVER_LOGIN_ALLOWED_HOSTS: is set but AUTHRESOLVER_LOGIN_URL is empty"},
		{map[string]string{"AUTHRESOLVER_LOGIN_REDIRECT_PARAM": "return_to"}, "AUTHRESOLVER_LOGIN_REDIRECT_PARAM: is set but AUTHRESOLVER_LOGIN_URL is empty"},
	}
	for _, tt := range tests {
		_, err := loadConfig(tt.env)
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("loadConfig(%v) = %v, want an error starting %q", tt.env, err, tt.want)
		}
	}
}

// single is the single-issuer configuration with jwksURL.
func single(jwksURL string) map[string]string {
	return map[string]string{"AUTHRESOLVER_JWT_ISSUER": "https://a.example", "AUTHRESOLVER_JWT_JWKS_URL": jwksURL}
}

// withSingle adds a valid single-issuer configuration to env.
func withSingle(env map[string]string) map[string]string {
	out := single("https://a.example/jwks")
	for k, v := range env {
		out[k] = v
	}
	return out
}

// TestConfigLists: comma lists are trimmed around their entries.
func TestConfigLists(t *testing.T) {
	cfg, err := loadConfig(withSingle(map[string]string{
		"AUTHRESOLVER_JWT_AUDIENCE":   " a , b",
		"AUTHRESOLVER_JWT_ALGORITHMS": "ES256, EdDSA ",
		"AUTHRESOLVER_TOKEN_HEADERS":  "X-Token , X-Other",
		"AUTHRESOLVER_REDIS_ADDRS":    "127.0.0.1:1, 127.0.0.1:2",
		"AUTHRESOLVER_CLAIM_HEADERS":  " email = Email , https://example.com/claims/tier=Tier",
	}))
	if err != nil {
		t.Fatal(err)
	}
	got := [][]string{cfg.issuers[0].Audiences, cfg.issuers[0].Algorithms, cfg.TokenHeaders, cfg.RedisAddrs}
	want := [][]string{{"a", "b"}, {"ES256", "EdDSA"}, {"X-Token", "X-Other"}, {"127.0.0.1:1", "127.0.0.1:2"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("lists (-want +got):\n%s", diff)
	}
	wantClaims := []resolver.ClaimHeader{{Claim: "email", Header: "Email"}, {Claim: "https://example.com/claims/tier", Header: "Tier"}}
	if diff := cmp.Diff(wantClaims, cfg.claims); diff != "" {
		t.Errorf("claims (-want +got):\n%s", diff)
	}
}

// TestRunRefusesClaimHeaderCollision: the user-visible contract for a
// claim header that would overwrite an identity header: one line naming
// the variable, exit 2, nothing served.
func TestRunRefusesClaimHeaderCollision(t *testing.T) {
	var stdout, stderr bytes.Buffer
	// Should it start after all, it stops when the test gives up.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	code := run(ctx, []string{"serve"}, map[string]string{
		"AUTHRESOLVER_LISTEN_ADDR":   "127.0.0.1:0",
		"AUTHRESOLVER_ADMIN_ADDR":    "127.0.0.1:0",
		"AUTHRESOLVER_CLAIM_HEADERS": "email=User-Id",
	}, &stdout, &stderr)
	if code != 2 {
		t.Errorf("exit code = %d, want 2", code)
	}
	want := "authresolver: AUTHRESOLVER_CLAIM_HEADERS: \"User-Id\" is the name of an identity header; pick another\n"
	if got := stderr.String(); got != want {
		t.Errorf("stderr = %q, want %q", got, want)
	}
}

func TestConfigAdminTokenFile(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name, content, want, err string
	}{
		{"plain", "s3cret", "s3cret", ""},
		{"trailing newline", "s3cret\n", "s3cret", ""},
		{"CRLF", "s3cret\r\n", "s3cret", ""},
		{"empty", "\n", "", "want one line"},
		{"two lines", "a\nb\n", "", "want one line"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := loadConfig(map[string]string{"AUTHRESOLVER_ADMIN_TOKEN_FILE": path})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || strings.Contains(err.Error(), "s3cret") {
					t.Errorf("err = %v, want one naming the variable with %q", err, tt.err)
				}
				return
			}
			if err != nil || cfg.AdminToken != tt.want {
				t.Errorf("AdminToken = %q, %v; want %q", cfg.AdminToken, err, tt.want)
			}
		})
	}
}

// TestRunBadConfigExits2 checks the user-visible contract: one line, exit 2.
func TestRunBadConfigExits2(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"serve"}, map[string]string{"AUTHRESOLVER_CACHE_TTL": "soon"}, &stdout, &stderr)
	if code != 2 {
		t.Errorf("exit code = %d, want 2", code)
	}
	if got, want := stderr.String(), "authresolver: AUTHRESOLVER_CACHE_TTL: not a duration with a unit (e.g. 30s, 5m, 720h)\n"; got != want {
		t.Errorf("stderr = %q, want %q", got, want)
	}
}

func TestRunUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"frobnicate"}, nil, &stdout, &stderr); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
	stdout.Reset()
	if code := run(context.Background(), []string{"version"}, nil, &stdout, &stderr); code != 0 || !strings.HasPrefix(stdout.String(), "authresolver ") {
		t.Errorf("version: exit %d, output %q", code, stdout.String())
	}
}

// TestRunBadAssertionKeyExits2: a key file that is not a usable key stops
// start-up with one line naming the variable.
func TestRunBadAssertionKeyExits2(t *testing.T) {
	key := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(key, []byte("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{key, filepath.Join(t.TempDir(), "missing.pem")} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), []string{"serve"}, map[string]string{
			"AUTHRESOLVER_LISTEN_ADDR":        "127.0.0.1:0",
			"AUTHRESOLVER_ADMIN_ADDR":         "127.0.0.1:0",
			"AUTHRESOLVER_LOG_LEVEL":          "error",
			"AUTHRESOLVER_ASSERTION_KEY_FILE": file,
			"AUTHRESOLVER_ASSERTION_ISSUER":   "https://authresolver.test",
			"AUTHRESOLVER_ASSERTION_AUDIENCE": "app",
		}, &stdout, &stderr)
		if code != 2 {
			t.Errorf("%s: exit code = %d, want 2", filepath.Base(file), code)
		}
		if got := stderr.String(); !strings.HasPrefix(got, "authresolver: AUTHRESOLVER_ASSERTION_KEY_FILE: ") || strings.Count(got, "\n") != 1 {
			t.Errorf("%s: stderr = %q, want one line naming AUTHRESOLVER_ASSERTION_KEY_FILE", filepath.Base(file), got)
		}
	}
}
