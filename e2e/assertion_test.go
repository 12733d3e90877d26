package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// The identity assertion as an app sees it: verified with a standard JOSE
// library against the resolver's /.well-known/jwks.json.

const (
	assertionIssuer   = "https://authresolver.e2e.test"
	assertionAudience = "e2e-app"
	assertionType     = "authresolver-assertion+jwt"
)

// writeAssertionKey writes a fresh P-256 key as SEC1 PEM (what openssl
// ecparam -genkey writes) and returns its path.
func writeAssertionKey(tb testing.TB) string {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(tb.TempDir(), "assertion.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

func fetchJWKS(tb testing.TB, url string) jwk.Set {
	tb.Helper()
	r := get(tb, url)
	wantStatus(tb, r, 200)
	set, err := jwk.Parse(r.Body)
	if err != nil {
		tb.Fatalf("%s: %v", url, err)
	}
	return set
}

// verifyAssertion checks tok as an app would and returns its sub.
func verifyAssertion(set jwk.Set, tok string) (string, error) {
	msg, err := jws.Parse([]byte(tok))
	if err != nil {
		return "", err
	}
	if typ, _ := msg.Signatures()[0].ProtectedHeaders().Type(); typ != assertionType {
		return "", errors.New("typ is not " + assertionType)
	}
	t, err := jwt.Parse([]byte(tok), jwt.WithKeySet(set), jwt.WithIssuer(assertionIssuer),
		jwt.WithAudience(assertionAudience), jwt.WithRequiredClaim("exp"), jwt.WithAcceptableSkew(5*time.Second))
	if err != nil {
		return "", err
	}
	exp, _ := t.Expiration()
	iat, _ := t.IssuedAt()
	if exp.Sub(iat) > time.Minute {
		return "", errors.New("assertion lives longer than 60s")
	}
	sub, _ := t.Subject()
	return sub, nil
}

// attackerAssertion is a well-formed assertion for sub signed with a key of
// the attacker's, claiming the resolver's issuer, audience and typ.
func attackerAssertion(tb testing.TB, sub string) string {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tok, err := jwt.NewBuilder().Issuer(assertionIssuer).Audience([]string{assertionAudience}).Subject(sub).
		IssuedAt(time.Now()).Expiration(time.Now().Add(time.Minute)).Build()
	if err != nil {
		tb.Fatal(err)
	}
	hdr := jws.NewHeaders()
	_ = hdr.Set(jws.TypeKey, assertionType)
	b, err := jwt.Sign(tok, jwt.WithKey(jwa.ES256(), key, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}
