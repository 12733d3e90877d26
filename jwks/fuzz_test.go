package jwks_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/authresolver/authresolver/jwks"
	"github.com/authresolver/authresolver/jwks/jwkstest"
	"github.com/authresolver/authresolver/resolver"
)

// FuzzVerify feeds arbitrary strings to Verify: it must not panic, and
// must answer either an identity or a denial, never both, and no error
// while keys are loaded.
func FuzzVerify(f *testing.F) {
	k := keys()
	srv := startServer(f, k.es256, k.rs256, k.eddsa)
	v := startVerifier(f, jwks.Options{
		URL: srv.URL(), Audiences: []string{"api"}, ExtraClaims: []string{"email", "groups"},
		RefetchCooldown: time.Hour, MaxStaleness: 365 * 24 * time.Hour,
	})
	full := func(c map[string]any) {
		c["aud"] = []string{"api"}
		c["email"] = "a@example.com"
		c["groups"] = []string{"g"}
		c["scope"] = "a b"
		c["roles"] = "admin"
		c["amr"] = []string{"pwd"}
		c["auth_time"] = 1.7e9
		c["https://authgear.com/claims/user/is_anonymous"] = "false"
	}
	for _, seed := range []string{
		k.es256.Mint(claims(full)),
		k.rs256.Mint(claims(full)),
		k.eddsa.Sign(map[string]any{"kid": nil}, claims(full)),
		k.es256.SignRaw([]byte(`{"alg":"ES256","kid":"es256"}`), []byte(`{"iss":"https://issuer.test","sub":"\u00e9\ud83d","exp":1e10,"aud":["api",null]}`)),
		k.es256.SignRaw([]byte(` { "alg" : "ES256" } `), []byte(`{"iss":"https://issuer.test","x":{"y":["}",{"\"":1}]},"sub":"u","exp":99999999999}`)),
		jwkstest.Unsigned(map[string]any{"alg": "none"}, claims(nil)),
		"eyJhbGciOiJFUzI1NiJ9.e30.",
		"a.b.c",
		"...",
		strings.Repeat("a", jwks.MaxTokenSize+1),
	} {
		f.Add(seed)
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, tok string) {
		id, reason, err := v.Verify(ctx, tok)
		if err != nil {
			t.Fatalf("error with keys loaded: %v", err)
		}
		switch {
		case reason == resolver.ReasonNone && (id.UserID == "" || id.Issuer != issuer || id.Credential != resolver.CredentialJWT):
			t.Fatalf("accepted without a full identity: %+v", id)
		case reason != resolver.ReasonNone && id.UserID != "":
			t.Fatalf("denied (%q) with an identity: %+v", reason, id)
		}
	})
}
