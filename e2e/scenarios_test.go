package e2e

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// proxyBehaviour is what differs between the proxies in the shared
// scenarios: the answers they give themselves, without the upstream.
type proxyBehaviour struct {
	// bigHeader is the status for a request with a 16 KiB header line
	// and a valid token. NGINX refuses header lines longer than one
	// large_client_header_buffers buffer (8k by default) with 400 before
	// auth_request runs; Caddy (Go's 1 MiB limit) passes it on and the
	// resolver (64 KiB limit) allows the token: 200.
	bigHeader int
	// bigToken is the status for an Authorization header carrying a 16 KiB
	// token: NGINX 400 as above; through Caddy the resolver refuses a token
	// over its 16 KiB limit: 401.
	bigToken int
	// stripsUnlisted says whether client-sent X-Auth-* headers outside the
	// identity headers (e.g. claim headers) are removed too. Caddy and
	// Traefik remove by prefix; NGINX cannot, and replaces only the headers
	// listed in nginx/authresolver-headers.conf.
	stripsUnlisted bool
	// unavailable is the status when the resolver answers 503 (Redis
	// down): NGINX's auth_request turns any status but 2xx/401/403 into
	// 500, Caddy passes the 503 through.
	unavailable int
}

// runProxyScenarios drives base, a proxy in front of e, through the
// scenarios every proxy must pass. Subtests run in order and share e; each
// uses its own users and credentials. The last one stops Redis.
func runProxyScenarios(t *testing.T, e *env, base string, pb proxyBehaviour) {
	is := e.Issuer
	plain := is.token(t, "user-plain", claims{"email_verified": true, "amr": []string{"pwd", "otp"}})
	admin := is.token(t, "user-admin", claims{"roles": []string{"admin", "ops"}})

	t.Run("allow", func(t *testing.T) {
		r := get(t, base+"/x/y?a=1&b=2", "Authorization", "Bearer "+plain)
		wantStatus(t, r, http.StatusOK)
		up := r.echo(t)
		if up.URI != "/x/y?a=1&b=2" {
			t.Errorf("upstream URI %q, want /x/y?a=1&b=2", up.URI)
		}
		wantHeaders(t, up.Header,
			"X-Auth-Session-Valid", "true",
			"X-Auth-User-Id", "user-plain",
			"X-Auth-User-Anonymous", "false",
			"X-Auth-User-Verified", "true",
			"X-Auth-Session-Amr", "pwd otp",
			"X-Auth-Credential", "jwt",
			"X-Auth-Issuer", is.Issuer,
		)
		absent(t, up.Header, "X-Auth-User-Roles", "X-Auth-Session-Id", "X-Auth-Error")
		if exp := unixHeader(t, up.Header, "X-Auth-Expires-At"); exp.Before(time.Now().Add(9*time.Minute)) || exp.After(time.Now().Add(11*time.Minute)) {
			t.Errorf("X-Auth-Expires-At %v, want the token's exp in about 10 minutes", exp)
		}
		unixHeader(t, up.Header, "X-Auth-Session-Authenticated-At")
	})

	t.Run("deny without credential", func(t *testing.T) {
		r := get(t, base+"/x", "Accept", "application/json")
		wantStatus(t, r, http.StatusUnauthorized)
		if r.Header.Get("X-Upstream") != "" {
			t.Error("a denied request reached the upstream")
		}
		if got := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
			t.Errorf("WWW-Authenticate %q, want Bearer", got)
		}
	})

	t.Run("deny invalid token", func(t *testing.T) {
		bad := plain[:len(plain)-4] + "AAAA" // signature no longer matches
		r := get(t, base+"/x", "Authorization", "Bearer "+bad, "Accept", "application/json")
		wantStatus(t, r, http.StatusUnauthorized)
		if got := r.Header.Get("WWW-Authenticate"); !strings.Contains(got, "invalid_token") {
			t.Errorf("WWW-Authenticate %q, want error=\"invalid_token\"", got)
		}
		// Where authentication is optional, an invalid credential makes
		// an anonymous caller, never anyone else.
		r = get(t, base+"/public/x", "Authorization", "Bearer "+bad)
		wantStatus(t, r, http.StatusOK)
		wantHeaders(t, r.echo(t).Header, "X-Auth-Session-Valid", "false")
		absent(t, r.echo(t).Header, "X-Auth-User-Id")
	})

	t.Run("client query cannot make auth optional", func(t *testing.T) {
		r := get(t, base+"/x?optional=true", "Accept", "application/json")
		wantStatus(t, r, http.StatusUnauthorized)
		r = get(t, base+"/admin/x?optional=true&role=user", "Authorization", "Bearer "+plain)
		wantStatus(t, r, http.StatusForbidden)
	})

	forged := []string{
		"X-Auth-Session-Valid", "true",
		"X-Auth-User-Id", "forged-user",
		"X-Auth-User-Roles", "admin,forged",
		"X-Auth-User-Verified", "true-forged",
		"X-Auth-Session-Id", "forged-session",
		"X-Auth-Issuer", "https://forged.example",
		"X-Auth-Credential", "forged",
		"X-Auth-Error", "forged",
	}
	if pb.stripsUnlisted {
		forged = append(forged, "X-Auth-Email", "forged@example.com")
	}

	t.Run("forged identity headers without credential", func(t *testing.T) {
		r := get(t, base+"/public/x", forged...)
		wantStatus(t, r, http.StatusOK)
		up := r.echo(t)
		wantHeaders(t, up.Header, "X-Auth-Session-Valid", "false")
		absent(t, up.Header, "X-Auth-User-Id", "X-Auth-User-Roles", "X-Auth-Session-Id", "X-Auth-Issuer", "X-Auth-Credential", "X-Auth-Error")
		noForged(t, up.Header, "forged")

		r = get(t, base+"/x", append([]string{"Accept", "application/json"}, forged...)...)
		wantStatus(t, r, http.StatusUnauthorized)
	})

	t.Run("forged identity headers with valid credential", func(t *testing.T) {
		for _, path := range []string{"/x", "/public/x"} {
			r := get(t, base+path, append([]string{"Authorization", "Bearer " + plain}, forged...)...)
			wantStatus(t, r, http.StatusOK)
			up := r.echo(t)
			wantHeaders(t, up.Header, "X-Auth-User-Id", "user-plain", "X-Auth-Credential", "jwt")
			// The resolver sends no User-Roles for a user without roles:
			// the forged one must not fill the gap.
			absent(t, up.Header, "X-Auth-User-Roles", "X-Auth-Session-Id", "X-Auth-Error")
			noForged(t, up.Header, "forged")
		}
		r := get(t, base+"/admin/x", append([]string{"Authorization", "Bearer " + admin}, forged...)...)
		wantStatus(t, r, http.StatusOK)
		up := r.echo(t)
		wantHeaders(t, up.Header, "X-Auth-User-Id", "user-admin", "X-Auth-User-Roles", "admin,ops")
		noForged(t, up.Header, "forged")
	})

	t.Run("role required per location", func(t *testing.T) {
		for _, path := range []string{"/admin", "/admin/", "/admin/users?x=1"} {
			r := get(t, base+path, "Authorization", "Bearer "+plain)
			wantStatus(t, r, http.StatusForbidden)
			if r.Header.Get("X-Upstream") != "" {
				t.Errorf("%s: a forbidden request reached the upstream", path)
			}
			r = get(t, base+path, "Authorization", "Bearer "+admin)
			wantStatus(t, r, http.StatusOK)
			r.echo(t)
		}
		// Dot segments are resolved before the location is chosen.
		r := get(t, base+"/public/../admin/x", "Authorization", "Bearer "+plain)
		if r.Status == http.StatusOK {
			t.Errorf("/public/../admin/x with a non-admin token: 200, want a denial")
		}
		r = get(t, base+"/public/../admin/x")
		if r.Status == http.StatusOK {
			t.Errorf("/public/../admin/x without credential: 200, want a denial")
		}
	})

	t.Run("optional authentication", func(t *testing.T) {
		r := get(t, base+"/public/x")
		wantStatus(t, r, http.StatusOK)
		up := r.echo(t)
		wantHeaders(t, up.Header, "X-Auth-Session-Valid", "false")
		absent(t, up.Header, "X-Auth-User-Id")

		r = get(t, base+"/public/x", "Authorization", "Bearer "+plain)
		wantStatus(t, r, http.StatusOK)
		wantHeaders(t, r.echo(t).Header, "X-Auth-Session-Valid", "true", "X-Auth-User-Id", "user-plain")
	})

	t.Run("session cookie", func(t *testing.T) {
		s := e.Resolver.createSession(t, map[string]any{
			"user_id":  "user-session",
			"roles":    []string{"admin"},
			"verified": true,
			"amr":      []string{"pwd"},
		})
		cookie := sessionCookie(t, s)
		r := get(t, base+"/admin/x", "Cookie", cookie+"; theme=dark")
		wantStatus(t, r, http.StatusOK)
		up := r.echo(t)
		wantHeaders(t, up.Header,
			"X-Auth-Session-Valid", "true",
			"X-Auth-User-Id", "user-session",
			"X-Auth-User-Roles", "admin",
			"X-Auth-User-Verified", "true",
			"X-Auth-Credential", "session",
			"X-Auth-Session-Id", s.Handle,
		)
		absent(t, up.Header, "X-Auth-Issuer")
		for name, vals := range up.Header {
			for _, v := range vals {
				if name != "Cookie" && strings.Contains(v, s.ID) {
					t.Errorf("upstream header %s carries the session ID", name)
				}
			}
		}

		del := e.Resolver.admin(t, http.MethodDelete, "/v1/sessions/"+s.ID, nil)
		wantStatus(t, del, http.StatusNoContent)
		r = get(t, base+"/x", "Cookie", cookie, "Accept", "application/json")
		wantStatus(t, r, http.StatusUnauthorized)
		r = get(t, base+"/public/x", "Cookie", cookie)
		wantStatus(t, r, http.StatusOK)
		wantHeaders(t, r.echo(t).Header, "X-Auth-Session-Valid", "false")
	})

	t.Run("token revocation", func(t *testing.T) {
		jti := "jti-" + randomString(t)
		tok := is.token(t, "user-revoked", claims{"jti": jti})
		wantStatus(t, get(t, base+"/x", "Authorization", "Bearer "+tok), http.StatusOK)
		rev := e.Resolver.admin(t, http.MethodPost, "/v1/revocations", map[string]string{"jti": jti})
		wantStatus(t, rev, http.StatusNoContent)
		wantStatus(t, get(t, base+"/x", "Authorization", "Bearer "+tok, "Accept", "application/json"), http.StatusUnauthorized)
	})

	t.Run("HEAD", func(t *testing.T) {
		r := do(t, http.MethodHead, base+"/x", nil, "Authorization", "Bearer "+plain)
		wantStatus(t, r, http.StatusOK)
		if r.Header.Get("X-Upstream") != "echo" {
			t.Error("HEAD with a valid token did not reach the upstream")
		}
		r = do(t, http.MethodHead, base+"/x", nil, "Accept", "application/json")
		wantStatus(t, r, http.StatusUnauthorized)
	})

	t.Run("request body goes to the upstream only", func(t *testing.T) {
		body := strings.Repeat("b", 100<<10)
		r := do(t, http.MethodPost, base+"/x", strings.NewReader(body), "Authorization", "Bearer "+plain, "Content-Type", "text/plain")
		wantStatus(t, r, http.StatusOK)
		up := r.echo(t)
		if up.Method != http.MethodPost || up.Body != len(body) {
			t.Errorf("upstream got %s with %d bytes, want POST with %d", up.Method, up.Body, len(body))
		}
		r = do(t, http.MethodDelete, base+"/x", strings.NewReader(body), "Accept", "application/json")
		wantStatus(t, r, http.StatusUnauthorized)
	})

	t.Run("16 KiB header", func(t *testing.T) {
		pad := strings.Repeat("p", 16<<10)
		r := get(t, base+"/x", "Authorization", "Bearer "+plain, "X-Padding", pad)
		wantStatus(t, r, pb.bigHeader)
		if pb.bigHeader == http.StatusOK {
			r.echo(t)
		}
		r = get(t, base+"/x", "Authorization", "Bearer "+pad, "Accept", "application/json")
		wantStatus(t, r, pb.bigToken)
		// Both are still up and answering.
		wantStatus(t, get(t, base+"/x", "Authorization", "Bearer "+plain), http.StatusOK)
	})

	// Last: it stops Redis.
	t.Run("session store unavailable", func(t *testing.T) {
		s := e.Resolver.createSession(t, map[string]any{"user_id": "user-outage"})
		e.Redis.Stop()
		r := get(t, base+"/x", "Cookie", sessionCookie(t, s), "Accept", "application/json")
		wantStatus(t, r, pb.unavailable)
		if r.Header.Get("X-Upstream") != "" {
			t.Error("a request the resolver could not decide reached the upstream")
		}
		if pb.unavailable == http.StatusServiceUnavailable {
			if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra <= 0 {
				t.Errorf("Retry-After %q, want seconds", r.Header.Get("Retry-After"))
			}
		}
	})
}

func TestNginx(t *testing.T) {
	t.Parallel()
	e := newEnv(t, map[string]string{
		"AUTHRESOLVER_LOGIN_URL":           "https://login.example.com/login",
		"AUTHRESOLVER_LOGIN_ALLOWED_HOSTS": "127.0.0.1",
	})
	base := startNginx(t, e, nginxOptions{})
	user := e.Issuer.token(t, "user-browser", nil)

	t.Run("browser redirect and API 401", func(t *testing.T) {
		const browser = "text/html,application/xhtml+xml,*/*;q=0.8"
		origin := base // http://127.0.0.1:port, the configured $authresolver_origin
		loginFor := func(path string) string {
			return "https://login.example.com/login?redirect_uri=" + url.QueryEscape(origin+path)
		}
		r := get(t, base+"/app/x/y?a=1", "Accept", browser)
		wantStatus(t, r, http.StatusFound)
		wantHeaders(t, r.Header, "Location", loginFor("/app/x/y?a=1"))
		// An invalid credential is sent to the login page too.
		r = get(t, base+"/app/x", "Accept", "text/html", "Authorization", "Bearer not.a.token")
		wantStatus(t, r, http.StatusFound)
		// The URL to come back to is the configured origin, whatever the
		// client's Host, and the client's query is one encoded value.
		r = get(t, base+"/app/x?a=1&redirect_uri=https://evil.example/", "Accept", browser, "Host", "evil.example",
			"X-Forwarded-Host", "evil.example", "X-Original-URL", "https://evil.example/")
		wantStatus(t, r, http.StatusFound)
		wantHeaders(t, r.Header, "Location", loginFor("/app/x?a=1&redirect_uri=https://evil.example/"))
		// What cannot come back safely gets no redirect.
		r = get(t, base+"/app/%0d%0aSet-Cookie:%20a=b", "Accept", browser)
		wantStatus(t, r, http.StatusUnauthorized)
		// A location without login=header answers browsers 401.
		r = get(t, base+"/x", "Accept", browser)
		wantStatus(t, r, http.StatusUnauthorized)

		for _, path := range []string{"/app/x", "/x"} {
			r = get(t, base+path, "Accept", "application/json")
			wantStatus(t, r, http.StatusUnauthorized)
			if got := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
				t.Errorf("API 401: WWW-Authenticate %q, want Bearer", got)
			}
			if got := r.Header.Values("WWW-Authenticate"); len(got) != 1 {
				t.Errorf("API 401: WWW-Authenticate %q, want exactly one", got)
			}
			absent(t, r.Header, "Location")
		}
		// 403 is a 403 for browsers too: logging in again would not help.
		r = get(t, base+"/admin/x", "Accept", "text/html", "Authorization", "Bearer "+user)
		wantStatus(t, r, http.StatusForbidden)
	})

	// Finding 6: the URL to come back to is the configured origin and the
	// request URI, encoded by the resolver as one query value, never the
	// client's Host; what cannot come back safely gets the plain 401.
	t.Run("login redirect from client input", func(t *testing.T) {
		origin := base // http://127.0.0.1:port, the configured $authresolver_origin
		for _, c := range []struct {
			target, host string
			want         string // the URL to come back to; empty: plain 401
		}{
			{"/app?a=1&redirect_uri=https://evil.example/", "evil.example", "/app?a=1&redirect_uri=https://evil.example/"},
			{"/app/x/y", "evil.example", "/app/x/y"},
			{"/app/x%26redirect_uri=https:%2F%2Fevil.example", "127.0.0.1", "/app/x%26redirect_uri=https:%2F%2Fevil.example"},
			{"/app/x#@evil.example", "127.0.0.1", ""},
			{"//app/x", "127.0.0.1", ""},
			{"/app/%0d%0aLocation:%20https://evil.example", "127.0.0.1", ""},
		} {
			r := raw(t, base, lines("GET "+c.target+" HTTP/1.1", "Host: "+c.host, "Accept: text/html", "Connection: close"), "")
			if c.want == "" {
				wantStatus(t, r, http.StatusUnauthorized)
				absent(t, r.Header, "Location")
				continue
			}
			wantStatus(t, r, http.StatusFound)
			want := "https://login.example.com/login?redirect_uri=" + url.QueryEscape(origin+c.want)
			if got := r.Header.Get("Location"); got != want {
				t.Errorf("%s (Host %s): Location %q, want %q", c.target, c.host, got, want)
			}
		}
	})

	runProxyScenarios(t, e, base, proxyBehaviour{
		bigHeader:   http.StatusBadRequest,
		bigToken:    http.StatusBadRequest,
		unavailable: http.StatusInternalServerError,
	})
}

func TestCaddy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	base := startCaddy(t, e, caddyOptions{})
	runProxyScenarios(t, e, base, proxyBehaviour{
		bigHeader:      http.StatusOK,
		bigToken:       http.StatusUnauthorized,
		stripsUnlisted: true,
		unavailable:    http.StatusServiceUnavailable,
	})
}

// TestNginxDecisionCache runs the shipped config with authresolver-cache.conf
// turned on and checks what makes it safe: the key separates credentials,
// token headers and requirements, and the price (a revoked credential let
// through until the cached 200 expires) is bounded by proxy_cache_valid.
func TestNginxDecisionCache(t *testing.T) {
	t.Parallel()
	e := newEnv(t, map[string]string{"AUTHRESOLVER_TOKEN_HEADERS": "X-Stack-Access-Token"})
	base := startNginx(t, e, nginxOptions{Cache: true})
	is := e.Issuer

	t.Run("credentials in other headers do not share the empty key", func(t *testing.T) {
		tok := is.token(t, "user-token-header", nil)
		r := get(t, base+"/public/x", "X-Stack-Access-Token", tok)
		wantStatus(t, r, http.StatusOK)
		wantHeaders(t, r.echo(t).Header, "X-Auth-User-Id", "user-token-header")
		// With Authgear's "$cookie_session|$http_authorization" key this
		// would be the cached answer above.
		r = get(t, base+"/public/x")
		wantStatus(t, r, http.StatusOK)
		wantHeaders(t, r.echo(t).Header, "X-Auth-Session-Valid", "false")
		absent(t, r.echo(t).Header, "X-Auth-User-Id")
	})

	// Finding 3: NGINX's $cookie_session matches the name in any case and
	// takes the first, the resolver matched it exactly, so a key built from
	// it was the anonymous one for a request the resolver authenticated. Two
	// defences: the key is the whole Cookie header, and the resolver now
	// refuses a cookie whose name differs from the session cookie's only in
	// case (malformed_session), so such a request is never an allow.
	t.Run("cookie names differing in case do not share the anonymous key", func(t *testing.T) {
		s := e.Resolver.createSession(t, map[string]any{"user_id": "user-cookie-case"})
		cookie := sessionCookie(t, s)
		r := get(t, base+"/public/x", "Cookie", "SESSION=; "+cookie)
		wantStatus(t, r, http.StatusOK)
		wantHeaders(t, r.echo(t).Header, "X-Auth-Session-Valid", "false")
		absent(t, r.echo(t).Header, "X-Auth-User-Id")
		r = get(t, base+"/public/x", "Cookie", cookie)
		wantStatus(t, r, http.StatusOK)
		wantHeaders(t, r.echo(t).Header, "X-Auth-User-Id", "user-cookie-case")
		for _, c := range []string{"", "SESSION=", "Session=x; theme=dark"} {
			hdr := []string{}
			if c != "" {
				hdr = []string{"Cookie", c}
			}
			r = get(t, base+"/public/x", hdr...)
			wantStatus(t, r, http.StatusOK)
			wantHeaders(t, r.echo(t).Header, "X-Auth-Session-Valid", "false")
			absent(t, r.echo(t).Header, "X-Auth-User-Id")
		}
	})

	// The same request sequence with Authgear's documented key, to show the
	// test above would catch the leak.
	t.Run("Authgear's key leaks an identity to anonymous callers", func(t *testing.T) {
		e := newEnv(t, map[string]string{"AUTHRESOLVER_TOKEN_HEADERS": "X-Stack-Access-Token"})
		base := startNginx(t, e, nginxOptions{Cache: true, CacheKey: `"$cookie_session|$http_authorization"`})
		tok := e.Issuer.token(t, "user-token-header", nil)
		wantStatus(t, get(t, base+"/x", "X-Stack-Access-Token", tok), http.StatusOK)
		r := get(t, base+"/x")
		wantStatus(t, r, http.StatusOK)
		wantHeaders(t, r.echo(t).Header, "X-Auth-User-Id", "user-token-header")
	})

	t.Run("requirements are part of the key", func(t *testing.T) {
		tok := is.token(t, "user-cached", nil)
		wantStatus(t, get(t, base+"/x", "Authorization", "Bearer "+tok), http.StatusOK)
		wantStatus(t, get(t, base+"/admin/x", "Authorization", "Bearer "+tok), http.StatusForbidden)
	})

	t.Run("forged headers on a cache hit", func(t *testing.T) {
		tok := is.token(t, "user-hit", nil)
		wantStatus(t, get(t, base+"/x", "Authorization", "Bearer "+tok), http.StatusOK)
		r := get(t, base+"/x", "Authorization", "Bearer "+tok, "X-Auth-User-Id", "forged", "X-Auth-User-Roles", "forged")
		wantStatus(t, r, http.StatusOK)
		up := r.echo(t)
		wantHeaders(t, up.Header, "X-Auth-User-Id", "user-hit")
		noForged(t, up.Header, "forged")
	})

	t.Run("revocation is delayed by at most proxy_cache_valid", func(t *testing.T) {
		jti := "jti-" + randomString(t)
		tok := is.token(t, "user-revoked-cached", claims{"jti": jti})
		wantStatus(t, get(t, base+"/x", "Authorization", "Bearer "+tok), http.StatusOK)
		revoked := time.Now()
		wantStatus(t, e.Resolver.admin(t, http.MethodPost, "/v1/revocations", map[string]string{"jti": jti}), http.StatusNoContent)
		if r := get(t, base+"/x", "Authorization", "Bearer "+tok); r.Status != http.StatusOK {
			t.Errorf("right after revocation: %d, want the cached 200 (is the cache on?)", r.Status)
		}
		const validity = 5 * time.Second // proxy_cache_valid 200 5s in authresolver-cache.conf
		for {
			r := get(t, base+"/x", "Authorization", "Bearer "+tok, "Accept", "application/json")
			if r.Status == http.StatusUnauthorized {
				break
			}
			wantStatus(t, r, http.StatusOK)
			if time.Since(revoked) > validity+2*time.Second {
				t.Fatalf("revoked token still allowed %v after revocation", time.Since(revoked))
			}
			time.Sleep(100 * time.Millisecond) // polling for an expiry, not a race
		}
	})
}
