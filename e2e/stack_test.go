package e2e

import (
	"testing"
	"time"

	"github.com/authresolver/authresolver/profile/stacktest"
)

// TestStackAuth drives the built binary with the Stack Auth preset against
// Stack's API on httptest (its documented users/me and JWKS contract; the
// real server cannot run here), with ES256 tokens in Stack's iss/aud
// format: both of the seeds' methods, JWT verification and REST API
// verification, and the X-Stack-Access-Token header they use.
func TestStackAuth(t *testing.T) {
	stack := stacktest.New("e2e-project", "ssk_e2e_secret")
	t.Cleanup(stack.Close)
	r := startResolver(t, map[string]string{
		"AUTHRESOLVER_STACK_PROJECT_ID":        stack.ProjectID,
		"AUTHRESOLVER_STACK_SECRET_SERVER_KEY": stack.ServerKey,
		"AUTHRESOLVER_STACK_API_URL":           stack.URL,
		"AUTHRESOLVER_CLAIM_HEADERS":           "primary_email=Email,display_name=Name",
	})
	if err := waitHTTP(r.process, r.ResolveURL()+"/readyz", 200); err != nil {
		t.Fatal(err)
	}
	alice := stack.Mint(stacktest.User{ID: "u-alice", Email: "alice@example.com", EmailVerified: true, DisplayName: "Alice"}, time.Hour)
	anon := stack.Mint(stacktest.User{ID: "u-anon", Anonymous: true}, time.Hour)

	// 1. JWT verification: local, no call to Stack.
	res := get(t, r.ResolveURL()+"/resolve", "X-Stack-Access-Token", alice)
	wantStatus(t, res, 200)
	wantHeaders(t, res.Header, "X-Auth-User-Id", "u-alice", "X-Auth-Issuer", stack.Issuer(false), "X-Auth-Credential", "jwt")
	if n := stack.Calls.Load(); n != 0 {
		t.Errorf("%d calls to users/me for local verification", n)
	}
	res = get(t, r.ResolveURL()+"/resolve?anonymous=false", "Authorization", "Bearer "+anon)
	wantStatus(t, res, 403)

	// 2. REST API verification: users/me with the server key.
	res = get(t, r.ResolveURL()+"/resolve?profile=true", "X-Stack-Access-Token", alice)
	wantStatus(t, res, 200)
	wantHeaders(t, res.Header, "X-Auth-Email", "alice@example.com", "X-Auth-Name", "Alice", "X-Auth-User-Verified", "true")
	if n := stack.Calls.Load(); n != 1 {
		t.Errorf("%d calls to users/me, want 1", n)
	}
	// The route without profile=true never sees the profile.
	res = get(t, r.ResolveURL()+"/resolve", "X-Stack-Access-Token", alice)
	wantStatus(t, res, 200)
	absent(t, res.Header, "X-Auth-Email", "X-Auth-Name")

	// Signed out at Stack: REST verification refuses, at once for a token
	// it has not seen.
	bob := stack.Mint(stacktest.User{ID: "u-bob"}, time.Hour)
	stack.Revoke(bob)
	res = get(t, r.ResolveURL()+"/resolve?profile=true", "X-Stack-Access-Token", bob)
	wantStatus(t, res, 401)
	wantHeaders(t, res.Header, "X-Auth-Error", "token_rejected")
}
