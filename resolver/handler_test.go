package resolver

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeTokens is a TokenVerifier whose answer a test sets.
type fakeTokens struct {
	VerifyFn func(ctx context.Context, token string) (Identity, Reason, error)
}

func (f *fakeTokens) Verify(ctx context.Context, token string) (Identity, Reason, error) {
	return f.VerifyFn(ctx, token)
}

type fakeSessions struct {
	LookupFn func(ctx context.Context, id string) (Identity, Reason, error)
}

func (f *fakeSessions) Lookup(ctx context.Context, id string) (Identity, Reason, error) {
	return f.LookupFn(ctx, id)
}

type fakeRevocations struct {
	RevokedFn func(ctx context.Context, id Identity) (bool, error)
}

func (f *fakeRevocations) TokenRevoked(ctx context.Context, id Identity) (bool, error) {
	return f.RevokedFn(ctx, id)
}

var testNow = time.Unix(1_800_000_000, 0)

// fakeJWT returns a token with the shape of a compact JWS (which the
// resolver checks before any I/O), telling the fake verifier name.
func fakeJWT(name string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"ES256"}`)) + "." + enc([]byte(name)) + ".c2ln"
}

// good tokens and sessions, by value.
var (
	tokenAlice  = fakeJWT("alice")
	tokenAnon   = fakeJWT("anon")
	tokenBadSig = fakeJWT("badsig")
	tokenRevok  = fakeJWT("revoked")
	tokenDown   = fakeJWT("down")
	sessionBob  = "c2Vzc2lvbi1ib2ItMDEyMzQ1Njc4OWFiY2RlZmdoaWprbG0"
)

func alice() Identity {
	return Identity{
		Credential: CredentialJWT, UserID: "alice", Issuer: "https://idp.example",
		TokenID: "jti-1", Verified: true, Roles: []string{"admin", "dev"},
		Scopes: []string{"read", "write"}, AMR: []string{"pwd", "otp"},
		AuthenticatedAt: testNow.Add(-time.Hour), IssuedAt: testNow.Add(-time.Minute),
		ExpiresAt: testNow.Add(2 * time.Second), Claims: map[string]string{"email": "alice@example.com"},
	}
}

func newTestHandler(t testing.TB, mutate func(*Options)) http.Handler {
	t.Helper()
	o := Options{
		Tokens: &fakeTokens{VerifyFn: func(_ context.Context, tok string) (Identity, Reason, error) {
			switch tok {
			case tokenAlice, tokenRevok:
				id := alice()
				if tok == tokenRevok {
					id.TokenID = "revoked"
				}
				return id, ReasonNone, nil
			case tokenAnon:
				return Identity{Credential: CredentialJWT, UserID: "anon-1", Issuer: "https://idp.example", Anonymous: true, ExpiresAt: testNow.Add(time.Hour)}, ReasonNone, nil
			case tokenDown:
				return Identity{}, ReasonNone, errors.New("jwks: no keys")
			}
			return Identity{}, ReasonSignature, nil
		}},
		Sessions: &fakeSessions{LookupFn: func(_ context.Context, id string) (Identity, Reason, error) {
			if id == sessionBob {
				return Identity{Credential: CredentialSession, UserID: "bob", SessionHandle: "h-bob", ExpiresAt: testNow.Add(time.Hour)}, ReasonNone, nil
			}
			return Identity{}, ReasonSessionNotFound, nil
		}},
		Revocations: &fakeRevocations{RevokedFn: func(_ context.Context, id Identity) (bool, error) {
			return id.TokenID == "revoked", nil
		}},
		TokenHeaders:  []string{"x-stack-access-token"},
		SessionCookie: "session",
		ClaimHeaders:  []ClaimHeader{{Claim: "email", Header: "Email"}},
		CacheTTL:      5 * time.Second,
		Now:           func() time.Time { return testNow },
	}
	if mutate != nil {
		mutate(&o)
	}
	return New(o)
}

type answer struct {
	Status  int
	Headers map[string]string
}

// do sends one request and returns the status and the headers named in keep.
func do(t *testing.T, h http.Handler, method, target string, hdr map[string]string, keep ...string) answer {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	got := answer{Status: rec.Code, Headers: map[string]string{}}
	for _, k := range keep {
		if v, ok := rec.Header()[http.CanonicalHeaderKey(k)]; ok {
			got.Headers[k] = strings.Join(v, "|")
		}
	}
	return got
}

func bearerHdr(tok string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + tok}
}

func TestResolveAllowHeaders(t *testing.T) {
	h := newTestHandler(t, nil)
	got := do(t, h, "GET", "/resolve", bearerHdr(tokenAlice),
		"X-Auth-Session-Valid", "X-Auth-User-Id", "X-Auth-User-Anonymous", "X-Auth-User-Verified",
		"X-Auth-User-Roles", "X-Auth-Session-Amr", "X-Auth-Session-Authenticated-At", "X-Auth-Expires-At",
		"X-Auth-Credential", "X-Auth-Issuer", "X-Auth-Email", "X-Auth-Session-Id", "X-Auth-Error",
		"Cache-Control", "WWW-Authenticate")
	want := answer{Status: 200, Headers: map[string]string{
		"X-Auth-Session-Valid":            "true",
		"X-Auth-User-Id":                  "alice",
		"X-Auth-User-Anonymous":           "false",
		"X-Auth-User-Verified":            "true",
		"X-Auth-User-Roles":               "admin,dev",
		"X-Auth-Session-Amr":              "pwd otp",
		"X-Auth-Session-Authenticated-At": "1799996400",
		"X-Auth-Expires-At":               "1800000002",
		"X-Auth-Credential":               "jwt",
		"X-Auth-Issuer":                   "https://idp.example",
		"X-Auth-Email":                    "alice@example.com",
		"Cache-Control":                   "private, max-age=2", // bounded by the token's expiry
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("answer (-want +got):\n%s", diff)
	}
}

func TestResolveDecisions(t *testing.T) {
	const (
		valid = "X-Auth-Session-Valid"
		code  = "X-Auth-Error"
		www   = "WWW-Authenticate"
		user  = "X-Auth-User-Id"
	)
	tests := []struct {
		name   string
		method string
		target string
		hdr    map[string]string
		want   answer
	}{
		{"no credential", "GET", "/resolve", nil,
			answer{401, map[string]string{valid: "false", www: "Bearer"}}},
		{"bad signature", "GET", "/resolve", bearerHdr(tokenBadSig),
			answer{401, map[string]string{valid: "false", code: "invalid_signature", www: `Bearer error="invalid_token", error_description="the token's signature does not verify"`}}},
		{"scheme any case", "GET", "/resolve", map[string]string{"Authorization": "bEaReR " + tokenAlice},
			answer{200, map[string]string{valid: "true", user: "alice"}}},
		{"empty bearer", "GET", "/resolve", map[string]string{"Authorization": "Bearer "},
			answer{401, map[string]string{valid: "false", code: "malformed_authorization", www: `Bearer error="invalid_token", error_description="the Authorization or token header is malformed"`}}},
		{"garbage token", "GET", "/resolve", map[string]string{"Authorization": "Bearer a b\x01c"},
			answer{401, map[string]string{valid: "false", code: "malformed_token", www: `Bearer error="invalid_token", error_description="the token is not a well-formed JWT"`}}},
		{"oversized token", "GET", "/resolve", bearerHdr(strings.Repeat("a", MaxCredentialBytes+1)),
			answer{401, map[string]string{valid: "false", code: "token_too_large", www: `Bearer error="invalid_token", error_description="the token is larger than 16 KiB"`}}},
		{"basic auth is not ours, cookie decides", "GET", "/resolve", map[string]string{"Authorization": "Basic Zm9vOmJhcg==", "Cookie": "session=" + sessionBob},
			answer{200, map[string]string{valid: "true", user: "bob"}}},
		{"invalid bearer is not skipped for a valid cookie", "GET", "/resolve", map[string]string{"Authorization": "Bearer " + tokenBadSig, "Cookie": "session=" + sessionBob},
			answer{401, map[string]string{valid: "false", code: "invalid_signature", www: `Bearer error="invalid_token", error_description="the token's signature does not verify"`}}},
		{"token header", "GET", "/resolve", map[string]string{"X-Stack-Access-Token": tokenAlice},
			answer{200, map[string]string{valid: "true", user: "alice"}}},
		{"invalid token header is not skipped", "GET", "/resolve", map[string]string{"X-Stack-Access-Token": tokenBadSig, "Cookie": "session=" + sessionBob},
			answer{401, map[string]string{valid: "false", code: "invalid_signature", www: `Bearer error="invalid_token", error_description="the token's signature does not verify"`}}},
		{"session cookie", "GET", "/resolve", map[string]string{"Cookie": "a=b; session=" + sessionBob + "; c=d"},
			answer{200, map[string]string{valid: "true", user: "bob"}}},
		{"unknown session", "GET", "/resolve", map[string]string{"Cookie": "session=nope"},
			answer{401, map[string]string{valid: "false", code: "session_not_found", www: `Bearer error="invalid_token", error_description="the session does not exist or has been revoked"`}}},
		{"malformed cookie", "GET", "/resolve", map[string]string{"Cookie": "session=a%0d%0ab"},
			answer{401, map[string]string{valid: "false", code: "malformed_session", www: `Bearer error="invalid_token", error_description="the session cookie is malformed"`}}},
		{"revoked token", "GET", "/resolve", bearerHdr(tokenRevok),
			answer{401, map[string]string{valid: "false", code: "token_revoked", www: `Bearer error="invalid_token", error_description="the token has been revoked"`}}},
		{"keys unavailable", "GET", "/resolve", bearerHdr(tokenDown),
			answer{503, map[string]string{code: "unavailable", "Retry-After": "1"}}},
		{"role met (any of)", "GET", "/resolve?role=ops&role=admin", bearerHdr(tokenAlice),
			answer{200, map[string]string{valid: "true", user: "alice"}}},
		{"role missing", "GET", "/resolve?role=ops", bearerHdr(tokenAlice),
			answer{403, map[string]string{valid: "true", code: "insufficient_role"}}},
		{"scopes all of", "GET", "/resolve?scope=read&scope=write", bearerHdr(tokenAlice),
			answer{200, map[string]string{valid: "true", user: "alice"}}},
		{"scope missing", "GET", "/resolve?scope=read&scope=admin", bearerHdr(tokenAlice),
			answer{403, map[string]string{valid: "true", code: "insufficient_scope"}}},
		{"verified required", "GET", "/resolve?verified=true", bearerHdr(tokenAnon),
			answer{403, map[string]string{valid: "true", code: "insufficient_verification"}}},
		{"anonymous refused", "GET", "/resolve?anonymous=false", bearerHdr(tokenAnon),
			answer{403, map[string]string{valid: "true", code: "insufficient_authentication"}}},
		{"anonymous allowed by default", "GET", "/resolve", bearerHdr(tokenAnon),
			answer{200, map[string]string{valid: "true", user: "anon-1"}}},
		{"optional, no credential", "GET", "/resolve?optional=true", nil,
			answer{200, map[string]string{valid: "false"}}},
		{"optional, invalid credential", "GET", "/resolve?optional=true", bearerHdr(tokenBadSig),
			answer{200, map[string]string{valid: "false"}}},
		{"optional, valid credential", "GET", "/resolve?optional=true", bearerHdr(tokenAlice),
			answer{200, map[string]string{valid: "true", user: "alice"}}},
		{"invalid requirement fails closed", "GET", "/resolve?verified=maybe", bearerHdr(tokenAlice),
			answer{403, map[string]string{valid: "true", code: "invalid_requirement"}}},
		{"invalid requirement, no credential", "GET", "/resolve?optional=maybe", nil,
			answer{401, map[string]string{valid: "false", www: "Bearer"}}},
		{"HEAD", "HEAD", "/resolve", bearerHdr(tokenAlice),
			answer{200, map[string]string{valid: "true", user: "alice"}}},
		{"authgear path", "GET", "/_resolver/resolve?role=admin", bearerHdr(tokenAlice),
			answer{200, map[string]string{valid: "true", user: "alice"}}},
		{"envoy: client query is not a requirement", "POST", "/resolve/api/x?optional=true", nil,
			answer{401, map[string]string{valid: "false", www: "Bearer"}}},
		{"envoy: client query cannot lift a requirement", "DELETE", "/resolve/admin?role=dev", map[string]string{"Authorization": "Bearer " + tokenAnon, RequireHeader: "role=admin"},
			answer{403, map[string]string{valid: "true", code: "insufficient_role"}}},
		{"envoy: requirement header", "PUT", "/resolve/admin", map[string]string{"Authorization": "Bearer " + tokenAlice, RequireHeader: "role=admin&verified=true"},
			answer{200, map[string]string{valid: "true", user: "alice"}}},
		{"envoy: optional refused in header", "GET", "/resolve/x", map[string]string{"Authorization": "Bearer " + tokenAlice, RequireHeader: "optional=true"},
			answer{403, map[string]string{valid: "true", code: "invalid_requirement"}}},
		{"query path ignores the gateway header", "GET", "/resolve", map[string]string{"Authorization": "Bearer " + tokenAnon, RequireHeader: "role=admin"},
			answer{200, map[string]string{valid: "true", user: "anon-1"}}},
	}
	h := newTestHandler(t, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keep := []string{valid, code, www, user, "Retry-After"}
			got := do(t, h, tt.method, tt.target, tt.hdr, keep...)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
		})
	}
}

func TestResolveNeverEchoesCredential(t *testing.T) {
	h := newTestHandler(t, nil)
	for _, hdr := range []map[string]string{
		bearerHdr(tokenAlice), bearerHdr(tokenBadSig), {"Cookie": "session=" + sessionBob}, {"Cookie": "session=" + sessionBob + "x"},
	} {
		req := httptest.NewRequest("GET", "/resolve", nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		for k, vs := range rec.Header() {
			for _, v := range vs {
				if strings.Contains(v, tokenAlice) || strings.Contains(v, tokenBadSig) || strings.Contains(v, sessionBob) {
					t.Errorf("header %s echoes the credential", k)
				}
			}
		}
		if strings.Contains(rec.Body.String(), tokenAlice) || strings.Contains(rec.Body.String(), tokenBadSig) || strings.Contains(rec.Body.String(), sessionBob) {
			t.Errorf("body echoes the credential: %q", rec.Body.String())
		}
	}
}

func TestResolveSanitisesClaims(t *testing.T) {
	tests := []struct {
		name string
		id   Identity
		want answer
	}{
		{"CRLF in user id is refused", Identity{UserID: "a\r\nX-Auth-User-Id: root"},
			answer{401, map[string]string{"X-Auth-Error": "invalid_claim"}}},
		{"overlong user id is refused", Identity{UserID: strings.Repeat("u", maxHeaderValue+1)},
			answer{401, map[string]string{"X-Auth-Error": "invalid_claim"}}},
		{"bad roles are dropped, not truncated", Identity{UserID: "u", Roles: []string{"ok", "bad\nrole", "a,b", strings.Repeat("r", maxHeaderValue+1), "fine"}},
			answer{200, map[string]string{"X-Auth-User-Roles": "ok,fine"}}},
		{"bad extra claim is left out", Identity{UserID: "u", Claims: map[string]string{"email": "x\x00y"}},
			answer{200, map[string]string{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHandler(t, func(o *Options) {
				o.Tokens = &fakeTokens{VerifyFn: func(context.Context, string) (Identity, Reason, error) {
					id := tt.id
					id.Credential = CredentialJWT
					return id, ReasonNone, nil
				}}
				o.Revocations = nil
			})
			got := do(t, h, "GET", "/resolve", bearerHdr(tokenAlice), "X-Auth-Error", "X-Auth-User-Roles", "X-Auth-Email")
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
		})
	}
}

func TestResolveHeaderPrefix(t *testing.T) {
	h := newTestHandler(t, func(o *Options) { o.HeaderPrefix = "X-Authgear-" })
	got := do(t, h, "GET", "/resolve", bearerHdr(tokenAlice), "X-Authgear-Session-Valid", "X-Authgear-User-Id", "X-Auth-User-Id")
	want := answer{200, map[string]string{"X-Authgear-Session-Valid": "true", "X-Authgear-User-Id": "alice"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("answer (-want +got):\n%s", diff)
	}
}

func TestResolveJWTOffRefusesBearer(t *testing.T) {
	h := newTestHandler(t, func(o *Options) { o.Tokens = nil })
	got := do(t, h, "GET", "/resolve", map[string]string{"Authorization": "Bearer " + tokenAlice, "Cookie": "session=" + sessionBob}, "X-Auth-Error")
	want := answer{401, map[string]string{"X-Auth-Error": "unknown_issuer"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("answer (-want +got):\n%s", diff)
	}
}

func TestResolveMethods(t *testing.T) {
	h := newTestHandler(t, nil)
	if got := do(t, h, "POST", "/resolve", bearerHdr(tokenAlice)).Status; got != http.StatusMethodNotAllowed {
		t.Errorf("POST /resolve = %d, want 405", got)
	}
	for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"} {
		if got := do(t, h, m, "/resolve/any/path", bearerHdr(tokenAlice)).Status; got != http.StatusOK {
			t.Errorf("%s /resolve/any/path = %d, want 200", m, got)
		}
	}
}

// FuzzResolve drives the whole handler with arbitrary header values and
// queries on each resolve route: it must never panic and only answer 200,
// 401 or 403, or 302 to the login page.
func FuzzResolve(f *testing.F) {
	f.Add(uint8(0), "Bearer "+tokenAlice, "", "session="+sessionBob, "role=admin", "role=admin")
	f.Add(uint8(1), "bearer x.y.z", "x.y", "session=\"\"; session=a", "optional=true", "optional=true")
	f.Add(uint8(2), "", "\x00", "=;=;;", "%zz", "verified=%")
	f.Add(uint8(3), "", "", "", "login=redirect", "login=redirect")
	f.Add(uint8(4), "", "", "session=x", "login=header", "login=header&optional=true")
	f.Fuzz(func(t *testing.T, route uint8, authz, tokenHdr, cookie, require, query string) {
		h := newTestHandler(t, func(o *Options) { o.Login = fakeLogin{} })
		path := [...]string{"/resolve", "/_resolver/resolve", "/resolve/api/x"}[int(route)%3]
		method := [...]string{"GET", "HEAD", "POST"}[int(route/3)%3]
		if path != "/resolve/api/x" && method == "POST" {
			method = "GET"
		}
		req := httptest.NewRequest(method, path, nil)
		req.URL.RawQuery = query
		req.Header["Authorization"] = []string{authz}
		req.Header["X-Stack-Access-Token"] = []string{tokenHdr}
		req.Header["Cookie"] = []string{cookie}
		req.Header[RequireHeader] = []string{require}
		req.Header["Accept"] = []string{"text/html"}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		loc := rec.Header().Get("Location")
		switch {
		case rec.Code == 302 && loc != "":
		case rec.Code == 200 || rec.Code == 403:
			if loc != "" {
				t.Fatalf("%s %s?%q: %d with Location", method, path, query, rec.Code)
			}
		case rec.Code == 401:
		default:
			t.Fatalf("%s %s?%q: status %d", method, path, query, rec.Code)
		}
	})
}

func TestCheckUsesGivenRequirement(t *testing.T) {
	h := newTestHandler(t, nil).(*Handler)
	// The URL's query must not matter to Check: the caller owns the requirement.
	r := httptest.NewRequest(http.MethodGet, "/anything?optional=true", nil)
	r.Header.Set("Authorization", "Bearer "+tokenAnon)
	w := httptest.NewRecorder()
	h.Check(w, r, Requirement{DenyAnonymous: true}, nil)
	if w.Code != http.StatusForbidden {
		t.Fatalf("status = %d, want 403", w.Code)
	}
	w = httptest.NewRecorder()
	h.Check(w, r, Requirement{}, errors.New("bad"))
	if w.Code != http.StatusForbidden || w.Header().Get("X-Auth-Error") != string(ReasonInvalidRequirement) {
		t.Fatalf("status = %d error = %q, want 403 invalid_requirement", w.Code, w.Header().Get("X-Auth-Error"))
	}
	names := h.IdentityHeaders()
	for _, want := range []string{"X-Auth-User-Id", "X-Auth-Session-Valid", "X-Auth-Error", "X-Auth-Email"} {
		if !slices.Contains(names, want) {
			t.Errorf("IdentityHeaders() = %v, missing %s", names, want)
		}
	}
}

// fakeLogin sends navigations (Accept: text/html) to a fixed login URL.
type fakeLogin struct{}

func (fakeLogin) Location(r *http.Request) (string, bool) {
	if !strings.Contains(r.Header.Get("Accept"), "text/html") {
		return "", false
	}
	return "https://auth.example/login?redirect_uri=x", true
}

// TestResolveLogin: login=redirect answers a navigation without a valid
// credential 302, login=header 401 with Location; a valid credential, a
// failed requirement, an API call or an outage never redirects.
func TestResolveLogin(t *testing.T) {
	const (
		valid = "X-Auth-Session-Valid"
		code  = "X-Auth-Error"
		loc   = "Location"
		login = "https://auth.example/login?redirect_uri=x"
	)
	nav := func(hdr map[string]string) map[string]string {
		m := map[string]string{"Accept": "text/html"}
		for k, v := range hdr {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name   string
		target string
		hdr    map[string]string
		want   answer
	}{
		{"redirect: no credential", "/resolve?login=redirect", nav(nil),
			answer{302, map[string]string{valid: "false", loc: login}}},
		{"redirect: revoked session", "/resolve?login=redirect", nav(map[string]string{"Cookie": "session=nope"}),
			answer{302, map[string]string{valid: "false", loc: login}}},
		{"redirect: API call", "/resolve?login=redirect", map[string]string{"Accept": "application/json"},
			answer{401, map[string]string{valid: "false"}}},
		{"redirect: valid credential", "/resolve?login=redirect", nav(map[string]string{"Cookie": "session=" + sessionBob}),
			answer{200, map[string]string{valid: "true"}}},
		{"redirect: requirement fails", "/resolve?login=redirect&role=ops", nav(bearerHdr(tokenAlice)),
			answer{403, map[string]string{valid: "true", code: "insufficient_role"}}},
		{"redirect: keys unavailable", "/resolve?login=redirect", nav(bearerHdr(tokenDown)),
			answer{503, map[string]string{code: "unavailable"}}},
		{"header: no credential", "/resolve?login=header", nav(nil),
			answer{401, map[string]string{valid: "false", loc: login}}},
		{"header: invalid token", "/resolve?login=header", nav(bearerHdr(tokenBadSig)),
			answer{401, map[string]string{valid: "false", code: "invalid_signature", loc: login}}},
		{"header: API call", "/resolve?login=header", map[string]string{"Accept": "application/json"},
			answer{401, map[string]string{valid: "false"}}},
		{"no login requirement", "/resolve", nav(nil),
			answer{401, map[string]string{valid: "false"}}},
		{"unknown login value fails closed", "/resolve?login=popup", nav(nil),
			answer{401, map[string]string{valid: "false"}}},
		{"unknown login value, valid credential", "/resolve?login=popup", nav(bearerHdr(tokenAlice)),
			answer{403, map[string]string{valid: "true", code: "invalid_requirement"}}},
		{"login given twice", "/resolve?login=redirect&login=header", nav(nil),
			answer{401, map[string]string{valid: "false"}}},
		{"optional and login contradict", "/resolve?login=redirect&optional=true", nav(nil),
			answer{401, map[string]string{valid: "false"}}},
		{"envoy: login from the gateway header", "/resolve/app", nav(map[string]string{RequireHeader: "login=redirect"}),
			answer{302, map[string]string{valid: "false", loc: login}}},
		{"envoy: client query cannot ask for a redirect", "/resolve/app?login=redirect", nav(nil),
			answer{401, map[string]string{valid: "false"}}},
	}
	h := newTestHandler(t, func(o *Options) { o.Login = fakeLogin{} })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := do(t, h, "GET", tt.target, tt.hdr, valid, code, loc)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("not configured", func(t *testing.T) {
		h := newTestHandler(t, nil)
		got := do(t, h, "GET", "/resolve?login=redirect", nav(nil), valid, loc)
		if diff := cmp.Diff(answer{401, map[string]string{valid: "false"}}, got); diff != "" {
			t.Errorf("answer (-want +got):\n%s", diff)
		}
	})
}

// TestResolveAuthgearAlias: /_resolver/resolve answers like
// /resolve?optional=true unless its query says optional=false (then like
// /resolve) or asks for a login redirect; other requirements still apply.
func TestResolveAuthgearAlias(t *testing.T) {
	const (
		valid = "X-Auth-Session-Valid"
		code  = "X-Auth-Error"
		user  = "X-Auth-User-Id"
		loc   = "Location"
	)
	tests := []struct {
		name   string
		target string
		hdr    map[string]string
		want   answer
	}{
		{"no credential", "/_resolver/resolve", nil,
			answer{200, map[string]string{valid: "false"}}},
		{"invalid credential", "/_resolver/resolve", bearerHdr(tokenBadSig),
			answer{200, map[string]string{valid: "false"}}},
		{"revoked session", "/_resolver/resolve", map[string]string{"Cookie": "session=nope"},
			answer{200, map[string]string{valid: "false"}}},
		{"valid credential", "/_resolver/resolve", bearerHdr(tokenAlice),
			answer{200, map[string]string{valid: "true", user: "alice"}}},
		{"requirement met", "/_resolver/resolve?role=admin", bearerHdr(tokenAlice),
			answer{200, map[string]string{valid: "true", user: "alice"}}},
		{"requirement fails", "/_resolver/resolve?role=ops", bearerHdr(tokenAlice),
			answer{403, map[string]string{valid: "true", code: "insufficient_role"}}},
		{"requirement, no credential", "/_resolver/resolve?role=ops", nil,
			answer{200, map[string]string{valid: "false"}}},
		{"optional=false: no credential", "/_resolver/resolve?optional=false", nil,
			answer{401, map[string]string{valid: "false"}}},
		{"optional=false: invalid credential", "/_resolver/resolve?optional=false", bearerHdr(tokenBadSig),
			answer{401, map[string]string{valid: "false", code: "invalid_signature"}}},
		{"optional=true said", "/_resolver/resolve?optional=true", nil,
			answer{200, map[string]string{valid: "false"}}},
		{"login asks for a denial", "/_resolver/resolve?login=header", map[string]string{"Accept": "text/html"},
			answer{401, map[string]string{valid: "false", loc: "https://auth.example/login?redirect_uri=x"}}},
		{"invalid requirement fails closed", "/_resolver/resolve?verified=maybe", nil,
			answer{401, map[string]string{valid: "false"}}},
		{"invalid requirement, valid credential", "/_resolver/resolve?verified=maybe", bearerHdr(tokenAlice),
			answer{403, map[string]string{valid: "true", code: "invalid_requirement"}}},
		{"/resolve stays strict", "/resolve", nil,
			answer{401, map[string]string{valid: "false"}}},
	}
	h := newTestHandler(t, func(o *Options) { o.Login = fakeLogin{} })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := do(t, h, "GET", tt.target, tt.hdr, valid, code, user, loc)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
		})
	}
}
