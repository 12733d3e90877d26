package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/authresolver/authresolver/e2e/idp"
)

// TestOpenIDProvider drives the built binary against a real OpenID
// provider (panva's oidc-provider, e2e/idp): configured by discovery
// alone, its JWT access tokens (at+jwt) verify, its opaque tokens are
// introspected, a token revoked at the provider is refused within
// CACHE_TTL, and a stopped provider means 503 until it is back, without
// restarting authresolver.
func TestOpenIDProvider(t *testing.T) {
	p := idp.Start(t)
	secret := filepath.Join(t.TempDir(), "client-secret")
	if err := os.WriteFile(secret, []byte(idp.ResolverSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const cacheTTL = time.Second
	r := startResolver(t, map[string]string{
		"AUTHRESOLVER_JWT_ISSUER":                       p.Issuer,
		"AUTHRESOLVER_JWT_AUDIENCE":                     idp.JWTResource,
		"AUTHRESOLVER_JWT_TYPE":                         "at+jwt",
		"AUTHRESOLVER_INTROSPECTION":                    "true",
		"AUTHRESOLVER_INTROSPECTION_CLIENT_ID":          idp.ResolverID,
		"AUTHRESOLVER_INTROSPECTION_CLIENT_SECRET_FILE": secret,
		"AUTHRESOLVER_INTROSPECTION_AUDIENCE":           idp.OpaqueResource,
		"AUTHRESOLVER_CACHE_TTL":                        cacheTTL.String(),
	})
	if err := waitHTTP(r.process, r.ResolveURL()+"/readyz", 200); err != nil {
		t.Fatal(err)
	}
	resolve := func(tok string) *response {
		return get(t, r.ResolveURL()+"/resolve", "Authorization", "Bearer "+tok)
	}

	jwt := p.Token(t, idp.JWTResource)
	res := resolve(jwt)
	wantStatus(t, res, 200)
	wantHeaders(t, res.Header, "X-Auth-Credential", "jwt", "X-Auth-User-Id", idp.AppID, "X-Auth-Issuer", p.Issuer, "X-Auth-User-Roles", "reader")

	opaque := p.Token(t, idp.OpaqueResource)
	res = resolve(opaque)
	wantStatus(t, res, 200)
	wantHeaders(t, res.Header, "X-Auth-Credential", "opaque", "X-Auth-User-Id", idp.AppID, "X-Auth-User-Roles", "reader")

	// The opaque resource's token is not for the JWT audience, and the
	// other way round: each is checked against its own audience.
	if res := resolve(p.Token(t, idp.OpaqueResource)); res.Status != 200 {
		t.Errorf("a second opaque token: %d", res.Status)
	}

	// Revoked at the provider: refused once the cached answer expires.
	p.Revoke(t, opaque)
	revoked := time.Now()
	for {
		res := resolve(opaque)
		if res.Status == 401 {
			wantHeaders(t, res.Header, "X-Auth-Error", "token_inactive")
			break
		}
		if d := time.Since(revoked); d > cacheTTL+500*time.Millisecond {
			t.Fatalf("revoked token still %d after %v (CACHE_TTL %v)", res.Status, d, cacheTTL)
		}
		time.Sleep(50 * time.Millisecond) // polling the binary we started
	}

	// Provider stopped: a token not yet cached cannot be answered.
	fresh := p.Token(t, idp.OpaqueResource)
	p.Stop()
	res = resolve(fresh)
	wantStatus(t, res, 503)
	if res.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	// JWTs are verified locally with the keys already fetched.
	wantStatus(t, resolve(jwt), 200)

	// Restarted (same issuer and key): works again, authresolver untouched.
	p.Restart(t)
	res = resolve(p.Token(t, idp.OpaqueResource))
	wantStatus(t, res, 200)
	wantHeaders(t, res.Header, "X-Auth-Credential", "opaque")
	wantStatus(t, resolve(p.Token(t, idp.JWTResource)), 200)
	if !r.running() {
		t.Error("authresolver is not running")
	}
}
