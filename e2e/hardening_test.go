package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// The hardening tests attack the shipped NGINX and Caddy configurations the
// way issue 10's red team did, with CGI-style apps behind them (the echo app
// of newCGIApp and PHP's built-in server) and a tap in front of the resolver
// that records what it is sent. Each subtest is one finding or one thing
// that held; every request that must not be allowed is checked for never
// reaching the app.

// hardened is a resolver (with a claim header) behind a tap, and one proxy
// in front of the CGI echo app (Base) and one in front of PHP (PHP).
type hardened struct {
	e         *env
	tap       *tap
	base, php string
	tokens    struct{ plain, admin, anon, email string }
}

func newHardened(t *testing.T, start func(e *env, resolverAddr, appAddr string) string) *hardened {
	t.Helper()
	e := newEnv(t, map[string]string{
		"AUTHRESOLVER_CLAIM_HEADERS":      "email=Email",
		"AUTHRESOLVER_ASSERTION_KEY_FILE": writeAssertionKey(t),
		"AUTHRESOLVER_ASSERTION_ISSUER":   assertionIssuer,
		"AUTHRESOLVER_ASSERTION_AUDIENCE": assertionAudience,
	})
	h := &hardened{e: e, tap: newTap(t, e.Resolver.ResolveAddr)}
	h.base = start(e, h.tap.Addr, newCGIApp(t))
	h.php = start(e, h.tap.Addr, newPHPApp(t))
	is := e.Issuer
	h.tokens.plain = is.token(t, "user-plain", nil)
	h.tokens.admin = is.token(t, "user-admin", claims{"roles": []string{"admin"}})
	h.tokens.anon = is.token(t, "user-anon", claims{"is_anonymous": true})
	h.tokens.email = is.token(t, "user-email", claims{"email": "real@example.com"})
	return h
}

func TestNginxHardening(t *testing.T) {
	t.Parallel()
	h := newHardened(t, func(e *env, resolverAddr, appAddr string) string {
		return startNginx(t, e, nginxOptions{Claims: true, ResolverAddr: resolverAddr, AppAddr: appAddr})
	})
	runHardening(t, h, hardenedBehaviour{resolverFailure: http.StatusInternalServerError})
}

func TestCaddyHardening(t *testing.T) {
	t.Parallel()
	h := newHardened(t, func(e *env, resolverAddr, appAddr string) string {
		return startCaddy(t, e, caddyOptions{ClaimHeaders: "X-Auth-Email", ResolverAddr: resolverAddr, AppAddr: appAddr})
	})
	runHardening(t, h, hardenedBehaviour{resolverFailure: 0})
}

// hardenedBehaviour is what differs between the proxies.
type hardenedBehaviour struct {
	// resolverFailure is the status when the resolver hangs or drops the
	// connection: NGINX's auth_request turns it into 500; 0 for Caddy, which
	// answers 502 or 504.
	resolverFailure int
}

// notAllowed fails the test if r is an allow or came from the app.
func notAllowed(t *testing.T, what string, r *response) {
	t.Helper()
	if r.Status < 300 || r.Header.Get("X-Upstream") != "" {
		t.Errorf("%s: %d from %q, want a denial that never reaches the app", what, r.Status, r.Header.Get("X-Upstream"))
	}
}

// get1 is a raw GET of target with a Host line and the given header lines.
func get1(t *testing.T, base, target string, headers ...string) *response {
	t.Helper()
	return raw(t, base, lines(append([]string{"GET " + target + " HTTP/1.1", "Host: " + strings.TrimPrefix(base, "http://"), "Connection: close"}, headers...)...), "")
}

// wantVars fails unless vars has each name (pairs) with the value; "" means
// the app must not see the variable.
func wantVars(t *testing.T, what string, vars map[string]string, pairs ...string) {
	t.Helper()
	for i := 0; i+1 < len(pairs); i += 2 {
		got, ok := vars[pairs[i]]
		if pairs[i+1] == "" && ok {
			t.Errorf("%s: app sees %s=%q, want none", what, pairs[i], got)
		} else if pairs[i+1] != "" && got != pairs[i+1] {
			t.Errorf("%s: app sees %s=%q, want %q", what, pairs[i], got, pairs[i+1])
		}
	}
}

// noForgedVars fails if any variable the app sees carries a forged marker.
func noForgedVars(t *testing.T, what string, vars map[string]string, markers ...string) {
	t.Helper()
	for k, v := range vars {
		for _, m := range markers {
			if strings.Contains(v, m) {
				t.Errorf("%s: app sees forged %s=%q", what, k, v)
			}
		}
	}
}

func runHardening(t *testing.T, h *hardened, hb hardenedBehaviour) {
	tok := h.tokens
	bearer := func(tok string) string { return "Authorization: Bearer " + tok }

	// Finding 1: X_Auth_User_Id and X.Auth.User.Id are HTTP_X_AUTH_USER_ID
	// to PHP, WSGI and Rack; PHP keeps the last one.
	t.Run("underscore and dot header names", func(t *testing.T) {
		forged := []string{
			"X_Auth_User_Id: root", "X_Auth_User_Roles: admin", "X_Auth_Session_Valid: true",
			"X.Auth.User.Id: root", "X.Auth.User.Roles: admin", "x_AUTH-user.ID: root",
			"X_Auth_Email: root@example.com", "X_Auth_Assertion: root",
		}
		for _, app := range []struct{ name, base string }{{"cgi", h.base}, {"php", h.php}} {
			r := get1(t, app.base, "/public/x", forged...)
			if r.Status == http.StatusOK {
				vars := appVars(t, r)
				wantVars(t, app.name+" anonymous", vars, "HTTP_X_AUTH_SESSION_VALID", "false", "HTTP_X_AUTH_USER_ID", "", "HTTP_X_AUTH_USER_ROLES", "")
				noForgedVars(t, app.name+" anonymous", vars, "root", "admin")
			} else {
				notAllowed(t, app.name+" anonymous", r)
			}
			r = get1(t, app.base, "/x", append([]string{bearer(tok.plain)}, forged...)...)
			if r.Status == http.StatusOK {
				vars := appVars(t, r)
				wantVars(t, app.name+" signed in", vars, "HTTP_X_AUTH_USER_ID", "user-plain", "HTTP_X_AUTH_USER_ROLES", "")
				noForgedVars(t, app.name+" signed in", vars, "root", "admin")
			} else {
				notAllowed(t, app.name+" signed in", r)
			}
		}
	})

	// Finding 1: "Connection: X-Auth-User-Id" must not make the proxy drop
	// the identity header it set (the app would fall back to a forged
	// underscore copy, or miss User-Anonymous: true).
	t.Run("Connection names identity headers", func(t *testing.T) {
		for _, app := range []struct{ name, base string }{{"cgi", h.base}, {"php", h.php}} {
			r := get1(t, app.base, "/x", bearer(tok.plain), "Connection: X-Auth-User-Id, X-Auth-Credential", "X_Auth_User_Id: root")
			wantStatus(t, r, http.StatusOK)
			vars := appVars(t, r)
			wantVars(t, app.name, vars, "HTTP_X_AUTH_USER_ID", "user-plain", "HTTP_X_AUTH_CREDENTIAL", "jwt")
			noForgedVars(t, app.name, vars, "root")

			r = get1(t, app.base, "/x", bearer(tok.anon), "Connection: keep-alive, X-Auth-User-Anonymous", "Connection: X-Auth-Session-Valid")
			wantStatus(t, r, http.StatusOK)
			wantVars(t, app.name+" anonymous user", appVars(t, r), "HTTP_X_AUTH_USER_ANONYMOUS", "true", "HTTP_X_AUTH_SESSION_VALID", "true")
		}
	})

	// Finding 2: ";" (Java path parameters) and "\" in any encoding are
	// refused before routing.
	t.Run("path parameters and backslashes", func(t *testing.T) {
		for _, target := range []string{
			"/public/..;/admin/users", "/admin;/users", "/admin;jsessionid=1/users", "/public/x;a=b",
			"/public/..%3B/admin/users", "/admin%3b/users", "/public/%2e%2e;/admin",
			`/public/..\admin/users`, `/public\..\admin`, "/public/..%5Cadmin/users", "/public%5c..%5cadmin",
		} {
			for _, cred := range []string{bearer(tok.plain), "X-None: 1"} {
				r := get1(t, h.base, target, cred)
				notAllowed(t, target, r)
				if r.Status != http.StatusBadRequest {
					t.Errorf("%s: %d, want 400", target, r.Status)
				}
			}
		}
		// A ";" in the query is the app's business.
		r := get1(t, h.base, "/x?a=1;b=2", bearer(tok.plain))
		wantStatus(t, r, http.StatusOK)
	})

	// Finding 4: protected prefixes match in any case, as apps that route
	// case-insensitively (Express) serve them.
	t.Run("protected prefix in any case", func(t *testing.T) {
		for _, target := range []string{"/Admin/users", "/ADMIN", "/aDmIn/x", "/%41dmin/users", "/%41DMIN"} {
			r := get1(t, h.base, target, bearer(tok.plain))
			wantStatus(t, r, http.StatusForbidden)
			notAllowed(t, target, r)
			wantStatus(t, get1(t, h.base, target, bearer(tok.admin)), http.StatusOK)
		}
	})

	// Finding 5: a configured claim header (email=Email) is the resolver's or
	// absent, never the client's.
	t.Run("claim headers", func(t *testing.T) {
		forged := []string{"X-Auth-Email: forged@example.com", "x-auth-EMAIL: forged2@example.com"}
		r := get1(t, h.base, "/x", append([]string{bearer(tok.email)}, forged...)...)
		wantStatus(t, r, http.StatusOK)
		vars := appVars(t, r)
		wantVars(t, "with the claim", vars, "HTTP_X_AUTH_EMAIL", "real@example.com")
		for _, c := range []struct{ what, target, cred string }{
			{"without the claim", "/x", bearer(tok.plain)},
			{"anonymous", "/public/x", "X-None: 1"},
		} {
			r := get1(t, h.base, c.target, append([]string{c.cred}, forged...)...)
			wantStatus(t, r, http.StatusOK)
			noForgedVars(t, c.what, appVars(t, r), "forged")
		}
	})

	// Finding 7 and what held: a resolver that hangs, drops the connection
	// or answers anything but 2xx never lets a request through.
	t.Run("resolver failures are denials", func(t *testing.T) {
		defer h.tap.setMode(tapMode{})
		for _, m := range []struct {
			what string
			mode tapMode
		}{
			{"302", tapMode{status: http.StatusFound}},
			{"304", tapMode{status: http.StatusNotModified}},
			{"400", tapMode{status: http.StatusBadRequest}},
			{"404", tapMode{status: http.StatusNotFound}},
			{"500", tapMode{status: http.StatusInternalServerError}},
			{"503", tapMode{status: http.StatusServiceUnavailable}},
			{"connection reset", tapMode{reset: true}},
			{"hangs", tapMode{hang: true}},
		} {
			h.tap.setMode(m.mode)
			start := time.Now()
			r := get1(t, h.base, "/x", bearer(tok.plain))
			notAllowed(t, m.what, r)
			if m.mode.hang || m.mode.reset {
				if hb.resolverFailure != 0 && r.Status != hb.resolverFailure {
					t.Errorf("%s: %d, want %d", m.what, r.Status, hb.resolverFailure)
				}
				if hb.resolverFailure == 0 && r.Status != http.StatusBadGateway && r.Status != http.StatusGatewayTimeout {
					t.Errorf("%s: %d, want 502 or 504", m.what, r.Status)
				}
			}
			if d := time.Since(start); d > 8*time.Second {
				t.Errorf("%s: answered after %v, want a timeout of about 5s", m.what, d)
			}
		}
	})

	// The structural defence: an app that verifies the assertion accepts
	// only the resolver's, whatever headers a client forges.
	t.Run("identity assertion", func(t *testing.T) {
		set := fetchJWKS(t, h.e.Resolver.ResolveURL()+"/.well-known/jwks.json")
		forged := attackerAssertion(t, "root")
		if _, err := verifyAssertion(set, forged); err == nil {
			t.Fatal("an assertion signed with another key verified")
		}
		for _, app := range []struct{ name, base string }{{"cgi", h.base}, {"php", h.php}} {
			r := get1(t, app.base, "/x", bearer(tok.plain), "X-Auth-Assertion: "+forged, "X_Auth_Assertion: "+forged, "X.Auth.Assertion: "+forged)
			wantStatus(t, r, http.StatusOK)
			sub, err := verifyAssertion(set, appVars(t, r)["HTTP_X_AUTH_ASSERTION"])
			if err != nil || sub != "user-plain" {
				t.Errorf("%s signed in: assertion sub %q, %v; want user-plain, verified", app.name, sub, err)
			}
			r = get1(t, app.base, "/public/x", "X-Auth-Assertion: "+forged, "X_Auth_Assertion: "+forged)
			wantStatus(t, r, http.StatusOK)
			if v, ok := appVars(t, r)["HTTP_X_AUTH_ASSERTION"]; ok {
				if _, err := verifyAssertion(set, v); err == nil {
					t.Errorf("%s anonymous: app sees a valid assertion", app.name)
				}
			}
		}
	})

	// What held: dash-form identity headers in any casing, duplicated or
	// padded never reach the app.
	t.Run("dash-form forgeries", func(t *testing.T) {
		forged := []string{
			"x-auth-user-id: forged", "X-AUTH-USER-ROLES: forged", "X-Auth-User-Id:    forged   ",
			"X-Auth-User-Id: forged", "X-Auth-User-Id: forged", "X-Auth-Session-Valid: forged", "X-Auth-Assertion: forged",
		}
		r := get1(t, h.base, "/public/x", forged...)
		wantStatus(t, r, http.StatusOK)
		vars := appVars(t, r)
		wantVars(t, "anonymous", vars, "HTTP_X_AUTH_SESSION_VALID", "false", "HTTP_X_AUTH_USER_ID", "")
		noForgedVars(t, "anonymous", vars, "forged")
		r = get1(t, h.base, "/x", append([]string{bearer(tok.plain)}, forged...)...)
		wantStatus(t, r, http.StatusOK)
		noForgedVars(t, "signed in", appVars(t, r), "forged")
	})

	// What held: the client's query never reaches /resolve; headers only.
	t.Run("what the resolver is sent", func(t *testing.T) {
		h.tap.take()
		get1(t, h.base, "/x?optional=true&role=x", bearer(tok.plain))
		get1(t, h.base, "/public/x?role=admin", bearer(tok.plain))
		get1(t, h.base, "/admin/x?optional=true", bearer(tok.admin))
		host := "Host: " + strings.TrimPrefix(h.base, "http://")
		body := strings.Repeat("b", 4096)
		r := raw(t, h.base, lines("POST /x HTTP/1.1", host, "Connection: close", bearer(tok.plain), "Content-Length: 4096"), body)
		wantStatus(t, r, http.StatusOK)
		r = raw(t, h.base, lines("POST /x HTTP/1.1", host, "Connection: close", bearer(tok.plain), "Transfer-Encoding: chunked"), "5\r\nhello\r\n0\r\n\r\n")
		wantStatus(t, r, http.StatusOK)
		seen := h.tap.take()
		var queries []string
		for _, s := range seen {
			queries = append(queries, s.RawQuery)
			if s.Method != http.MethodGet || s.Body != 0 || len(s.TE) != 0 || s.Length > 0 {
				t.Errorf("resolver was sent %s with %d body bytes, Transfer-Encoding %q, Content-Length %d; want GET with none", s.Method, s.Body, s.TE, s.Length)
			}
		}
		want := "|optional=true|role=admin||"
		if got := strings.Join(queries, "|"); got != want {
			t.Errorf("resolve queries %q, want %q", got, want)
		}
	})

	// What held: every way of spelling a request for /admin still meets the
	// role check.
	t.Run("route confusion", func(t *testing.T) {
		host := "Host: " + strings.TrimPrefix(h.base, "http://")
		for _, req := range []string{
			lines("GET //admin/x HTTP/1.1", host),
			lines("GET /%61dmin/x HTTP/1.1", host),
			lines("GET /public/../admin/x HTTP/1.1", host),
			lines("GET /public/%2e%2e/admin/x HTTP/1.1", host),
			lines("GET /public/./../admin HTTP/1.1", host),
			lines("GET "+h.base+"/admin/x HTTP/1.1", host),
			lines("GET /admin/x HTTP/1.0", host),
			lines("PROPFIND /admin/x HTTP/1.1", host),
			lines("FOO /admin/x HTTP/1.1", host),
			lines("DELETE /admin/x HTTP/1.1", host),
			lines("GET /admin/x HTTP/1.1", host, "Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="),
		} {
			r := raw(t, h.base, lines(req, "Authorization: Bearer "+tok.plain, "Content-Length: 0"), "")
			notAllowed(t, strings.SplitN(req, "\r\n", 2)[0], r)
		}
		// A WebSocket upgrade by an admin still reaches the app, with the
		// identity: the Connection handling keeps upgrades working.
		r := raw(t, h.base, lines("GET /admin/ws HTTP/1.1", host, bearer(tok.admin),
			"Connection: Upgrade, X-Auth-User-Id", "Upgrade: websocket", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="), "")
		wantStatus(t, r, http.StatusOK)
		wantVars(t, "websocket", appVars(t, r), "HTTP_X_AUTH_USER_ID", "user-admin")
	})
}
