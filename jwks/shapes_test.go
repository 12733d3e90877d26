package jwks_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/authresolver/authresolver/jwks"
	"github.com/authresolver/authresolver/jwks/jwkstest"
	"github.com/authresolver/authresolver/resolver"
)

// testdataKey loads a private key from testdata/keys (written by
// testdata/gen.go together with the JWKS that publish them).
func testdataKey(tb testing.TB, name, alg, kid string) *jwkstest.Key {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "keys", name+".pem"))
	if err != nil {
		tb.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		tb.Fatalf("%s: no PEM block", name)
	}
	priv, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		tb.Fatal(err)
	}
	return &jwkstest.Key{ID: kid, Alg: alg, Signer: priv.(crypto.Signer)}
}

func TestRealWorldShapes(t *testing.T) {
	entra1 := testdataKey(t, "entra1", "RS256", "entra-kid-1")
	entra2 := testdataKey(t, "entra2", "RS256", "entra-kid-2")
	ec := testdataKey(t, "ec", "ES256", "ec-1")
	ed := testdataKey(t, "ed", "EdDSA", "ed-1")
	enc := testdataKey(t, "enc", "RS256", "enc-1")
	small := testdataKey(t, "small", "RS256", "small-1")
	pq := ec.WithID("pq-1")

	tests := []struct {
		file  string
		token string
		want  resolver.Reason
	}{
		// Microsoft Entra ID: no alg in the JWKS, x5c and x5t present.
		{"entra.json", entra1.Mint(claims(nil)), resolver.ReasonNone},
		{"entra.json", entra2.Mint(claims(nil)), resolver.ReasonNone},
		{"entra.json", entra1.Sign(map[string]any{"kid": "entra-kid-2"}, claims(nil)), resolver.ReasonSignature},
		{"entra.json", entra1.Sign(map[string]any{"kid": nil}, claims(nil)), resolver.ReasonNone},

		// A mix of usable and unusable keys.
		{"mixed.json", ec.Mint(claims(nil)), resolver.ReasonNone},
		{"mixed.json", ed.Mint(claims(nil)), resolver.ReasonNone},
		{"mixed.json", enc.Mint(claims(nil)), resolver.ReasonUnknownKey},   // use "enc": skipped
		{"mixed.json", small.Mint(claims(nil)), resolver.ReasonUnknownKey}, // 1024-bit RSA: skipped
		{"mixed.json", pq.Mint(claims(nil)), resolver.ReasonUnknownKey},    // kty jwx does not know: skipped
		{"mixed.json", jwkstest.SignHMAC([]byte("a-shared-secret-the-attacker-knows"),
			map[string]any{"alg": "HS256", "kid": "hmac-1"}, claims(nil)), resolver.ReasonAlgorithm},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			srv := startServer(t)
			srv.SetBody(body)
			v := startVerifier(t, jwks.Options{URL: srv.URL(), Algorithms: []string{"RS256", "ES256", "EdDSA"}})
			if !v.Ready() {
				t.Fatal("not Ready")
			}
			if got := verify(t, v, tt.token); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}

	// The same files work through file://.
	abs, err := filepath.Abs(filepath.Join("testdata", "entra.json"))
	if err != nil {
		t.Fatal(err)
	}
	v := startVerifier(t, jwks.Options{URL: "file://" + abs, Algorithms: []string{"RS256"}})
	if got := verify(t, v, entra2.Mint(claims(nil))); got != resolver.ReasonNone {
		t.Errorf("entra.json over file://: %q", got)
	}
}

func TestUnusableKeySetKeepsLastGood(t *testing.T) {
	key := keys().es256
	srv := startServer(t, key)
	v := startVerifier(t, jwks.Options{URL: srv.URL(), Algorithms: []string{"ES256"}})
	for _, body := range []string{`{"keys":[]}`, `not json`, `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`} {
		srv.SetBody([]byte(body))
		if err := v.Refresh(context.Background()); err == nil {
			t.Errorf("Refresh of %s succeeded", body)
		}
		if got := verify(t, v, key.Mint(claims(nil))); got != resolver.ReasonNone {
			t.Errorf("after a refresh to %s: %q", body, got)
		}
	}
}

// TestJWXInterop checks tokens signed by jwx, an independent
// implementation, so that the verifier and jwkstest do not merely agree
// with each other.
func TestJWXInterop(t *testing.T) {
	k := keys()
	srv := startServer(t, k.es256, k.es384, k.es512, k.rs256, k.ps256, k.eddsa)
	v := startVerifier(t, jwks.Options{URL: srv.URL(), Algorithms: []string{"ES256", "ES384", "ES512", "RS256", "PS256", "EdDSA"}})
	for _, key := range []*jwkstest.Key{k.es256, k.es384, k.es512, k.rs256, k.ps256, k.eddsa} {
		t.Run(key.Alg, func(t *testing.T) {
			priv, err := jwk.Import(key.Signer)
			if err != nil {
				t.Fatal(err)
			}
			if err := priv.Set(jwk.KeyIDKey, key.ID); err != nil {
				t.Fatal(err)
			}
			alg, ok := jwa.LookupSignatureAlgorithm(key.Alg)
			if !ok {
				t.Fatalf("jwx does not know %s", key.Alg)
			}
			tok, err := jwt.NewBuilder().Issuer(issuer).Subject("user-1").
				IssuedAt(time.Now()).Expiration(time.Now().Add(time.Hour)).Build()
			if err != nil {
				t.Fatal(err)
			}
			signed, err := jwt.Sign(tok, jwt.WithKey(alg, priv, jws.WithProtectedHeaders(jws.NewHeaders())))
			if err != nil {
				t.Fatal(err)
			}
			if got := verify(t, v, string(signed)); got != resolver.ReasonNone {
				t.Errorf("jwx-signed %s token: %q", key.Alg, got)
			}
		})
	}
}
