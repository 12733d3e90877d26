package jwks_test

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/authresolver/authresolver/jwks"
	"github.com/authresolver/authresolver/jwks/jwkstest"
	"github.com/authresolver/authresolver/resolver"
)

func TestVerify(t *testing.T) {
	k := keys()
	rsNoAlg := k.rs256.WithID("rs-noalg")
	rsNoAlg.OmitAlg = true
	srv := startServer(t, k.es256, k.es384, k.es512, k.rs256, k.ps256, k.eddsa, k.p384, rsNoAlg)
	v := startVerifier(t, jwks.Options{
		URL:        srv.URL(),
		Audiences:  []string{"api", "api2"},
		Algorithms: []string{"RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA"},
		Leeway:     30 * time.Second,
	})

	attacker := startServer(t, k.other)
	now := time.Now()
	valid := func(edit func(map[string]any)) map[string]any {
		return claims(func(c map[string]any) {
			c["aud"] = "api"
			if edit != nil {
				edit(c)
			}
		})
	}
	// as returns a copy of key that signs with alg, for tokens whose header
	// states an algorithm the key is published for but was not made with.
	as := func(key *jwkstest.Key, alg string) *jwkstest.Key {
		c := *key
		c.Alg = alg
		return &c
	}
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(k.rs256.Public()))})
	// tamper swaps the payload for another, keeping the signature.
	tamper := func(tok string) string {
		other := strings.Split(k.other.Mint(valid(func(c map[string]any) { c["sub"] = "admin" })), ".")
		parts := strings.Split(tok, ".")
		return parts[0] + "." + other[1] + "." + parts[2]
	}

	tests := []struct {
		name  string
		token string
		want  resolver.Reason
	}{
		{"ES256", k.es256.Mint(valid(nil)), resolver.ReasonNone},
		{"ES384", k.es384.Mint(valid(nil)), resolver.ReasonNone},
		{"ES512", k.es512.Mint(valid(nil)), resolver.ReasonNone},
		{"RS256", k.rs256.Mint(valid(nil)), resolver.ReasonNone},
		{"PS256", k.ps256.Mint(valid(nil)), resolver.ReasonNone},
		{"EdDSA", k.eddsa.Mint(valid(nil)), resolver.ReasonNone},
		{"JWK without alg, RS256", rsNoAlg.Mint(valid(nil)), resolver.ReasonNone},
		{"JWK without alg, PS256", as(rsNoAlg, "PS256").Mint(valid(nil)), resolver.ReasonNone},
		{"no kid tries fitting keys", k.es256.Sign(map[string]any{"kid": nil}, valid(nil)), resolver.ReasonNone},
		{"no kid, no key signed it", k.other.Sign(map[string]any{"kid": nil}, valid(nil)), resolver.ReasonSignature},
		{"second audience", k.es256.Mint(valid(func(c map[string]any) { c["aud"] = []string{"x", "api2"} })), resolver.ReasonNone},
		{"fractional dates", k.es256.Mint(valid(func(c map[string]any) { c["exp"] = float64(now.Add(time.Hour).UnixMilli()) / 1000 })), resolver.ReasonNone},
		{"expired within leeway", k.es256.Mint(valid(func(c map[string]any) { c["exp"] = now.Add(-10 * time.Second).Unix() })), resolver.ReasonNone},

		// Algorithm attacks.
		{"alg none", jwkstest.Unsigned(map[string]any{"alg": "none", "kid": "es256"}, valid(nil)), resolver.ReasonAlgorithm},
		{"alg None with a signature", k.es256.Sign(map[string]any{"alg": "None"}, valid(nil)), resolver.ReasonAlgorithm},
		{"alg missing", k.es256.Sign(map[string]any{"alg": nil}, valid(nil)), resolver.ReasonAlgorithm},
		{"HS256 with the RSA public key PEM as secret", jwkstest.SignHMAC(rsaPEM, map[string]any{"alg": "HS256", "kid": "rs256", "typ": "JWT"}, valid(nil)), resolver.ReasonAlgorithm},
		{"HS256 with the RSA public key PEM, no kid", jwkstest.SignHMAC(rsaPEM, map[string]any{"alg": "HS256"}, valid(nil)), resolver.ReasonAlgorithm},
		{"alg not allowed (RS512)", k.es256.Sign(map[string]any{"alg": "RS512"}, valid(nil)), resolver.ReasonAlgorithm},
		{"RS256 header on an EC key", k.es256.Sign(map[string]any{"alg": "RS256"}, valid(nil)), resolver.ReasonAlgorithm},
		{"ES256 header on a P-384 key", k.es256.Sign(map[string]any{"alg": "ES256", "kid": "p384"}, valid(nil)), resolver.ReasonAlgorithm},
		{"ES384 token on a P-256 key", as(k.es256, "ES384").Mint(valid(nil)), resolver.ReasonAlgorithm},
		{"PS256 on a key that states RS256", as(k.rs256, "PS256").Mint(valid(nil)), resolver.ReasonAlgorithm},
		{"EdDSA header on an RSA key", k.eddsa.Sign(map[string]any{"kid": "rs256"}, valid(nil)), resolver.ReasonAlgorithm},

		// Keys from the token are never used.
		{"jku to the attacker's JWKS", k.other.Sign(map[string]any{"jku": attacker.URL()}, valid(nil)), resolver.ReasonUnknownKey},
		{"x5u to the attacker", k.other.Sign(map[string]any{"x5u": attacker.URL()}, valid(nil)), resolver.ReasonUnknownKey},
		{"jku with our kid", k.other.Sign(map[string]any{"jku": attacker.URL(), "kid": "es256"}, valid(nil)), resolver.ReasonSignature},
		{"embedded jwk, no kid", k.other.Sign(map[string]any{"jwk": k.other.JWK(), "kid": nil}, valid(nil)), resolver.ReasonSignature},
		{"embedded jwk, its kid", k.other.Sign(map[string]any{"jwk": k.other.JWK()}, valid(nil)), resolver.ReasonUnknownKey},
		{"embedded jwk, our kid", k.other.Sign(map[string]any{"jwk": k.other.JWK(), "kid": "es256"}, valid(nil)), resolver.ReasonSignature},
		{"x5c, our kid", k.other.Sign(map[string]any{"x5c": []string{"MIIBszCCAVmgAwIBAgIBATAKBggqhkjOPQQDAjA="}, "kid": "es256"}, valid(nil)), resolver.ReasonSignature},

		// Keys and signatures.
		{"unknown kid", k.other.Mint(valid(nil)), resolver.ReasonUnknownKey},
		{"our kid, another key", k.other.Sign(map[string]any{"kid": "es256"}, valid(nil)), resolver.ReasonSignature},
		{"tampered payload", tamper(k.es256.Mint(valid(nil))), resolver.ReasonSignature},
		{"empty signature", strings.TrimRight(k.es256.Mint(valid(nil)), "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"), resolver.ReasonSignature},
		{"truncated ES256 signature", truncateSig(k.es256.Mint(valid(nil))), resolver.ReasonSignature},
		{"RS256 signature from another RSA key", k.otherRSA.Sign(map[string]any{"kid": "rs256"}, valid(nil)), resolver.ReasonSignature},

		// Claims.
		{"expired", k.es256.Mint(valid(func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix() })), resolver.ReasonExpired},
		{"not yet valid", k.es256.Mint(valid(func(c map[string]any) { c["nbf"] = now.Add(time.Minute).Unix() })), resolver.ReasonNotYetValid},
		{"nbf within leeway", k.es256.Mint(valid(func(c map[string]any) { c["nbf"] = now.Add(10 * time.Second).Unix() })), resolver.ReasonNone},
		{"issued in the future", k.es256.Mint(valid(func(c map[string]any) { c["iat"] = now.Add(time.Minute).Unix() })), resolver.ReasonIssuedInFuture},
		{"wrong audience", k.es256.Mint(valid(func(c map[string]any) { c["aud"] = []string{"other"} })), resolver.ReasonAudience},
		{"no audience", k.es256.Mint(valid(func(c map[string]any) { delete(c, "aud") })), resolver.ReasonAudience},
		{"wrong issuer", k.es256.Mint(valid(func(c map[string]any) { c["iss"] = "https://evil.test" })), resolver.ReasonUnknownIssuer},
		{"issuer differs in case", k.es256.Mint(valid(func(c map[string]any) { c["iss"] = "https://ISSUER.test" })), resolver.ReasonUnknownIssuer},
		{"no issuer", k.es256.Mint(valid(func(c map[string]any) { delete(c, "iss") })), resolver.ReasonUnknownIssuer},
		{"missing exp", k.es256.Mint(valid(func(c map[string]any) { delete(c, "exp") })), resolver.ReasonMissingClaim},
		{"null exp", k.es256.Mint(valid(func(c map[string]any) { c["exp"] = nil })), resolver.ReasonMissingClaim},
		{"missing sub", k.es256.Mint(valid(func(c map[string]any) { delete(c, "sub") })), resolver.ReasonMissingClaim},
		{"empty sub", k.es256.Mint(valid(func(c map[string]any) { c["sub"] = "" })), resolver.ReasonMissingClaim},
		{"EXP is not exp", k.es256.SignRaw([]byte(`{"alg":"ES256","kid":"es256"}`),
			[]byte(`{"iss":"https://issuer.test","sub":"u","aud":"api","EXP":9999999999}`)), resolver.ReasonMissingClaim},
		{"Sub does not override sub", k.es256.SignRaw([]byte(`{"alg":"ES256","kid":"es256"}`),
			[]byte(`{"iss":"https://issuer.test","sub":"","Sub":"admin","aud":"api","exp":9999999999}`)), resolver.ReasonMissingClaim},
		{"duplicate sub", k.es256.SignRaw([]byte(`{"alg":"ES256","kid":"es256"}`),
			[]byte(`{"iss":"https://issuer.test","sub":"u","sub":"admin","aud":"api","exp":9999999999}`)), resolver.ReasonMalformedToken},
		{"null sub then sub", k.es256.SignRaw([]byte(`{"alg":"ES256","kid":"es256"}`),
			[]byte(`{"iss":"https://issuer.test","sub":null,"sub":"admin","aud":"api","exp":9999999999}`)), resolver.ReasonMalformedToken},
		{"null exp then exp", k.es256.SignRaw([]byte(`{"alg":"ES256","kid":"es256"}`),
			[]byte(`{"iss":"https://issuer.test","sub":"u","aud":"api","exp":null,"exp":9999999999}`)), resolver.ReasonMalformedToken},
		{"duplicate unmapped claim", k.es256.SignRaw([]byte(`{"alg":"ES256","kid":"es256"}`),
			[]byte(`{"iss":"https://issuer.test","sub":"u","aud":"api","exp":9999999999,"email":"a@x","email":"b@x"}`)), resolver.ReasonMalformedToken},
		{"duplicate spelt with an escape", k.es256.SignRaw([]byte(`{"alg":"ES256","kid":"es256"}`),
			[]byte(`{"iss":"https://issuer.test","sub":"u","\u0073ub":"admin","aud":"api","exp":9999999999}`)), resolver.ReasonMalformedToken},
		{"duplicate after many claims", k.es256.SignRaw([]byte(`{"alg":"ES256","kid":"es256"}`),
			[]byte(`{"iss":"https://issuer.test","sub":"u","aud":"api","exp":9999999999,`+manyClaims(40)+`,"c7":0}`)), resolver.ReasonMalformedToken},
		{"many distinct claims", k.es256.SignRaw([]byte(`{"alg":"ES256","kid":"es256"}`),
			[]byte(`{"iss":"https://issuer.test","sub":"u","aud":"api","exp":9999999999,`+manyClaims(40)+`}`)), resolver.ReasonNone},
		{"duplicate nested member is the claim's business", k.es256.SignRaw([]byte(`{"alg":"ES256","kid":"es256"}`),
			[]byte(`{"iss":"https://issuer.test","sub":"u","aud":"api","exp":9999999999,"x":{"a":1,"a":2}}`)), resolver.ReasonNone},
		{"duplicate alg header", k.es256.SignRaw([]byte(`{"alg":"none","alg":"ES256","kid":"es256"}`),
			[]byte(`{"iss":"https://issuer.test","sub":"u","aud":"api","exp":9999999999}`)), resolver.ReasonMalformedToken},
		{"duplicate unknown header", k.es256.SignRaw([]byte(`{"alg":"ES256","kid":"es256","x":1,"x":2}`),
			[]byte(`{"iss":"https://issuer.test","sub":"u","aud":"api","exp":9999999999}`)), resolver.ReasonMalformedToken},
		{"escaped claim names", k.es256.SignRaw([]byte(`{"\u0061lg":"ES256","kid":"es256"}`),
			[]byte(`{"\u0069ss":"https://issuer.test","sub":"u","aud":"api","exp":9999999999}`)), resolver.ReasonNone},
		{"exp as a string", k.es256.Mint(valid(func(c map[string]any) { c["exp"] = "tomorrow" })), resolver.ReasonMalformedToken},
		{"sub as a number", k.es256.Mint(valid(func(c map[string]any) { c["sub"] = 42 })), resolver.ReasonMalformedToken},
		{"aud as a number", k.es256.Mint(valid(func(c map[string]any) { c["aud"] = 1 })), resolver.ReasonMalformedToken},
		{"roles as an object", k.es256.Mint(valid(func(c map[string]any) { c["roles"] = map[string]any{"a": 1} })), resolver.ReasonMalformedToken},
		{"role as a number is ignored", k.es256.Mint(valid(func(c map[string]any) { c["role"] = 7 })), resolver.ReasonNone},
		{"huge exp", k.es256.Mint(valid(func(c map[string]any) { c["exp"] = 1e300 })), resolver.ReasonMalformedToken},

		// Shape.
		{"oversized", k.es256.Mint(valid(func(c map[string]any) { c["pad"] = strings.Repeat("x", jwks.MaxTokenSize) })), resolver.ReasonTokenTooLarge},
		{"garbage", "not a token", resolver.ReasonMalformedToken},
		{"empty", "", resolver.ReasonMalformedToken},
		{"two segments", "eyJhbGciOiJFUzI1NiJ9.e30", resolver.ReasonMalformedToken},
		{"JWE (five segments)", "a.b.c.d.e", resolver.ReasonMalformedToken},
		{"padding", padded(k.es256.Mint(valid(nil))), resolver.ReasonMalformedToken},
		{"newline inside", newlined(k.es256.Mint(valid(nil))), resolver.ReasonMalformedToken},
		{"header not JSON", "bm90IGpzb24.e30.c2ln", resolver.ReasonMalformedToken},
		{"header is an array", "WzFd.e30.c2ln", resolver.ReasonMalformedToken},
		{"payload is an array", k.es256.SignRaw([]byte(`{"alg":"ES256","kid":"es256"}`), []byte(`["iss"]`)), resolver.ReasonMalformedToken},
		{"crit header", k.es256.Sign(map[string]any{"crit": []string{"exp"}}, valid(nil)), resolver.ReasonMalformedToken},
		{"kid as a number", k.es256.Sign(map[string]any{"kid": 1}, valid(nil)), resolver.ReasonMalformedToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, got, err := v.Verify(context.Background(), tt.token)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("reason mismatch (-want +got):\n%s", diff)
			}
			if got == resolver.ReasonNone && id.UserID == "" {
				t.Errorf("accepted with empty UserID: %+v", id)
			}
			if got != resolver.ReasonNone && id.UserID != "" {
				t.Errorf("denied but returned identity %+v", id)
			}
		})
	}
	if got := attacker.Hits(); got != 0 {
		t.Errorf("attacker's JWKS got %d requests, want 0", got)
	}
}

func TestTokenType(t *testing.T) {
	k := keys()
	srv := startServer(t, k.es256)
	v := startVerifier(t, jwks.Options{URL: srv.URL(), Algorithms: []string{"ES256"}, Type: "at+jwt"})
	tests := []struct {
		typ  any
		want resolver.Reason
	}{
		{"at+jwt", resolver.ReasonNone},
		{"AT+JWT", resolver.ReasonNone},
		{"application/at+jwt", resolver.ReasonNone},
		{"Application/AT+JWT", resolver.ReasonNone},
		{"JWT", resolver.ReasonTokenType},
		{"application/jwt", resolver.ReasonTokenType},
		{nil, resolver.ReasonTokenType},
		{"", resolver.ReasonTokenType},
	}
	for _, tt := range tests {
		_, got, err := v.Verify(context.Background(), k.es256.Sign(map[string]any{"typ": tt.typ}, claims(nil)))
		if err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("typ %v: got %q, want %q", tt.typ, got, tt.want)
		}
	}
}

func TestIdentity(t *testing.T) {
	k := keys()
	srv := startServer(t, k.es256)
	v := startVerifier(t, jwks.Options{
		URL:         srv.URL(),
		Algorithms:  []string{"ES256"},
		ExtraClaims: []string{"email", "n", "flag", "groups", "obj", "mixed", "absent", "null", "https://authgear.com/claims/user/roles"},
	})
	iat, exp, auth := int64(1_700_000_000), int64(4_000_000_000), int64(1_699_999_000)
	base := func(edit func(map[string]any)) map[string]any {
		c := map[string]any{"iss": issuer, "sub": "user-1", "iat": iat, "exp": exp}
		edit(c)
		return c
	}
	tests := []struct {
		name   string
		claims map[string]any
		want   resolver.Identity
	}{
		{
			name: "plain",
			claims: base(func(c map[string]any) {
				c["jti"] = "t-1"
				c["scope"] = "read write"
				c["roles"] = []string{"admin", "dev"}
				c["amr"] = []string{"pwd", "otp"}
				c["email_verified"] = true
				c["auth_time"] = auth
			}),
			want: resolver.Identity{
				Credential: resolver.CredentialJWT, UserID: "user-1", Issuer: issuer, TokenID: "t-1",
				Verified: true, Roles: []string{"admin", "dev"}, Scopes: []string{"read", "write"}, AMR: []string{"pwd", "otp"},
				AuthenticatedAt: time.Unix(auth, 0), IssuedAt: time.Unix(iat, 0), ExpiresAt: time.Unix(exp, 0),
				Claims: map[string]string{},
			},
		},
		{
			name: "authgear claims",
			claims: base(func(c map[string]any) {
				c["https://authgear.com/claims/user/is_anonymous"] = true
				c["https://authgear.com/claims/user/is_verified"] = true
				c["https://authgear.com/claims/user/roles"] = []string{"a", "b"}
				c["scp"] = []string{"x", "y"}
			}),
			want: resolver.Identity{
				Credential: resolver.CredentialJWT, UserID: "user-1", Issuer: issuer,
				Anonymous: true, Verified: true, Roles: []string{"a", "b"}, Scopes: []string{"x", "y"},
				AuthenticatedAt: time.Unix(iat, 0), IssuedAt: time.Unix(iat, 0), ExpiresAt: time.Unix(exp, 0),
				Claims: map[string]string{"https://authgear.com/claims/user/roles": "a,b"},
			},
		},
		{
			name: "tolerated shapes",
			claims: base(func(c map[string]any) {
				c["role"] = "anon"
				c["email_verified"] = "true"
				c["roles"] = "admin"
				c["scp"] = "read write"
				c["amr"] = "pwd"
				c["auth_time"] = 1_699_999_000.5
			}),
			want: resolver.Identity{
				Credential: resolver.CredentialJWT, UserID: "user-1", Issuer: issuer,
				Anonymous: true, Verified: true, Roles: []string{"admin"}, Scopes: []string{"read", "write"}, AMR: []string{"pwd"},
				AuthenticatedAt: time.Unix(auth, 500_000_000), IssuedAt: time.Unix(iat, 0), ExpiresAt: time.Unix(exp, 0),
				Claims: map[string]string{},
			},
		},
		{
			name: "is_anonymous false, roles preferred over authgear roles",
			claims: base(func(c map[string]any) {
				c["is_anonymous"] = false
				c["email_verified"] = false
				c["roles"] = []string{"r"}
				c["https://authgear.com/claims/user/roles"] = []string{"g"}
				c["scope"] = "s"
				c["scp"] = "p"
			}),
			want: resolver.Identity{
				Credential: resolver.CredentialJWT, UserID: "user-1", Issuer: issuer,
				Roles: []string{"r"}, Scopes: []string{"s"},
				AuthenticatedAt: time.Unix(iat, 0), IssuedAt: time.Unix(iat, 0), ExpiresAt: time.Unix(exp, 0),
				Claims: map[string]string{"https://authgear.com/claims/user/roles": "g"},
			},
		},
		{
			name: "extra claims as text",
			claims: base(func(c map[string]any) {
				c["email"] = "a@example.com"
				c["n"] = 12.5
				c["flag"] = true
				c["groups"] = []string{"g1", "g2"}
				c["obj"] = map[string]any{"k": []int{1, 2}}
				c["mixed"] = []any{"a", 1}
				c["null"] = nil
			}),
			want: resolver.Identity{
				Credential: resolver.CredentialJWT, UserID: "user-1", Issuer: issuer,
				AuthenticatedAt: time.Unix(iat, 0), IssuedAt: time.Unix(iat, 0), ExpiresAt: time.Unix(exp, 0),
				Claims: map[string]string{
					"email": "a@example.com", "n": "12.5", "flag": "true", "groups": "g1,g2",
					"obj": `{"k":[1,2]}`, "mixed": `["a",1]`,
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason, err := v.Verify(context.Background(), k.es256.Mint(tt.claims))
			if err != nil || reason != resolver.ReasonNone {
				t.Fatalf("Verify: %q, %v", reason, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("identity mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestIdentityWithoutExtraClaims(t *testing.T) {
	k := keys()
	srv := startServer(t, k.es256)
	v := startVerifier(t, jwks.Options{URL: srv.URL(), Algorithms: []string{"ES256"}})
	id, reason, err := v.Verify(context.Background(), k.es256.Mint(claims(func(c map[string]any) { c["email"] = "x" })))
	if err != nil || reason != resolver.ReasonNone {
		t.Fatalf("Verify: %q, %v", reason, err)
	}
	if id.Claims != nil {
		t.Errorf("Claims = %v, want nil when no extra claims are configured", id.Claims)
	}
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name string
		opts jwks.Options
		want string // part of the error
	}{
		{"no issuer", jwks.Options{URL: "https://idp.test/jwks"}, "issuer is empty"},
		{"no URL", jwks.Options{Issuer: issuer}, "want https://"},
		{"plain http to a remote host", jwks.Options{Issuer: issuer, URL: "http://idp.test/jwks"}, "loopback"},
		{"relative file", jwks.Options{Issuer: issuer, URL: "file:jwks.json"}, "absolute"},
		{"file with host", jwks.Options{Issuer: issuer, URL: "file://host/jwks.json"}, "absolute"},
		{"ftp", jwks.Options{Issuer: issuer, URL: "ftp://idp.test/jwks"}, "want https://"},
		{"alg none", jwks.Options{Issuer: issuer, URL: "https://idp.test/jwks", Algorithms: []string{"ES256", "none"}}, `"none" is never allowed`},
		{"HS256", jwks.Options{Issuer: issuer, URL: "https://idp.test/jwks", Algorithms: []string{"HS256"}}, "HMAC"},
		{"unknown alg", jwks.Options{Issuer: issuer, URL: "https://idp.test/jwks", Algorithms: []string{"ES256K"}}, "unsupported algorithm"},
		{"min over max", jwks.Options{Issuer: issuer, URL: "https://idp.test/jwks", MinRefresh: time.Hour, MaxRefresh: time.Minute}, "exceeds"},
		{"negative leeway", jwks.Options{Issuer: issuer, URL: "https://idp.test/jwks", Leeway: -time.Second}, "negative"},
		{"empty audience", jwks.Options{Issuer: issuer, URL: "https://idp.test/jwks", Audiences: []string{""}}, "empty audience"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := jwks.New(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: got %v, want an error containing %q", err, tt.want)
			}
		})
	}
	for _, u := range []string{"https://idp.test/jwks", "http://127.0.0.1:8080/jwks", "http://localhost/jwks", "http://[::1]/jwks", "file:///etc/jwks.json"} {
		if _, err := jwks.New(jwks.Options{Issuer: issuer, URL: u}); err != nil {
			t.Errorf("New(%s): %v", u, err)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// truncateSig drops the last byte of a token's signature.
func truncateSig(tok string) string {
	i := strings.LastIndexByte(tok, '.')
	sig := must(base64.RawURLEncoding.DecodeString(tok[i+1:]))
	return tok[:i+1] + base64.RawURLEncoding.EncodeToString(sig[:len(sig)-1])
}

// padded adds base64 padding to the payload segment.
func padded(tok string) string {
	parts := strings.Split(tok, ".")
	parts[1] += "=="
	return strings.Join(parts, ".")
}

// newlined inserts a line break into the payload segment, which a lenient
// base64 decoder would skip.
func newlined(tok string) string {
	parts := strings.Split(tok, ".")
	parts[1] = parts[1][:4] + "\n" + parts[1][4:]
	return strings.Join(parts, ".")
}

// manyClaims returns n distinct members "c0":0,"c1":0,… without braces.
func manyClaims(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf(`"c%d":0`, i)
	}
	return strings.Join(parts, ",")
}
