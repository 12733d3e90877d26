package assertion_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/authresolver/authresolver/assertion"
	"github.com/authresolver/authresolver/resolver"
)

var now = time.Unix(1_800_000_000, 0)

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestParseKey(t *testing.T) {
	p256 := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	p384 := must(ecdsa.GenerateKey(elliptic.P384(), rand.Reader))
	_, ed := must2(ed25519.GenerateKey(rand.Reader))
	rsaKey := must(rsa.GenerateKey(rand.Reader, 2048))
	pkcs8 := func(k any) []byte { return pemBlock("PRIVATE KEY", must(x509.MarshalPKCS8PrivateKey(k))) }
	sec1 := func(k *ecdsa.PrivateKey) []byte { return pemBlock("EC PRIVATE KEY", must(x509.MarshalECPrivateKey(k))) }
	params := pemBlock("EC PARAMETERS", []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07})

	tests := []struct {
		name string
		pem  []byte
		want string // algorithm of the signer, "" for ErrKey
	}{
		{"EC P-256 PKCS#8", pkcs8(p256), "ES256"},
		{"EC P-256 SEC1", sec1(p256), "ES256"},
		{"EC P-256 SEC1 after EC PARAMETERS (openssl ecparam -genkey)", append(params, sec1(p256)...), "ES256"},
		{"Ed25519 PKCS#8", pkcs8(ed), "EdDSA"},
		{"EC P-384", pkcs8(p384), ""},
		{"RSA", pkcs8(rsaKey), ""},
		{"RSA PKCS#1", pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), ""},
		{"public key", pemBlock("PUBLIC KEY", must(x509.MarshalPKIXPublicKey(&p256.PublicKey))), ""},
		{"two keys", append(pkcs8(p256), pkcs8(ed)...), ""},
		{"empty", nil, ""},
		{"not PEM", []byte("-----BEGIN PRIVATE KEY-----\nnope\n"), ""},
		{"corrupt DER", pemBlock("PRIVATE KEY", []byte{1, 2, 3}), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := assertion.ParseKey(tt.pem)
			if tt.want == "" {
				if !errors.Is(err, assertion.ErrKey) {
					t.Fatalf("ParseKey: %v, want ErrKey", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseKey: %v", err)
			}
			s, err := assertion.New(key, assertion.Options{Issuer: "https://authresolver.test", Audience: "app"})
			if err != nil {
				t.Fatal(err)
			}
			tok := must(s.Assert(&resolver.Identity{UserID: "u"}, time.Now().Add(time.Minute)))
			msg := must(jws.Parse([]byte(tok)))
			alg, _ := msg.Signatures()[0].ProtectedHeaders().Algorithm()
			if got := alg.String(); got != tt.want {
				t.Errorf("alg %s, want %s", got, tt.want)
			}
		})
	}
}

func must2[A, B any](a A, b B, err error) (A, B) {
	if err != nil {
		panic(err)
	}
	return a, b
}

// newSigner returns a Signer on a fresh P-256 key at the fixed clock, and
// the JWKS it serves, fetched over HTTP as an app would.
func newSigner(t *testing.T, clock *time.Time) (*assertion.Signer, jwk.Set) {
	t.Helper()
	key := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	dir := t.TempDir()
	file := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(file, pemBlock("PRIVATE KEY", must(x509.MarshalPKCS8PrivateKey(key))), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := assertion.Load(file, assertion.Options{
		Issuer: "https://authresolver.test", Audience: "app", Now: func() time.Time { return *clock },
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + assertion.JWKSPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("JWKS Content-Type %q", ct)
	}
	set, err := jwk.ParseReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return s, set
}

// verify checks tok as an app would, with jwx: signature against the JWKS,
// typ, iss, aud, exp at the clock.
func verify(t *testing.T, set jwk.Set, tok string, at time.Time) (jwt.Token, error) {
	t.Helper()
	msg, err := jws.Parse([]byte(tok))
	if err != nil {
		return nil, err
	}
	if typ, _ := msg.Signatures()[0].ProtectedHeaders().Type(); typ != assertion.Type {
		t.Errorf("typ %q, want %q", typ, assertion.Type)
	}
	return jwt.Parse([]byte(tok), jwt.WithKeySet(set), jwt.WithIssuer("https://authresolver.test"),
		jwt.WithAudience("app"), jwt.WithClock(jwt.ClockFunc(func() time.Time { return at })),
		jwt.WithRequiredClaim("exp"), jwt.WithRequiredClaim("iat"))
}

func TestAssertVerifiesWithJOSELibrary(t *testing.T) {
	clock := now
	s, set := newSigner(t, &clock)
	id := &resolver.Identity{
		Credential: resolver.CredentialJWT, UserID: "alice", Issuer: "https://idp.example",
		Verified: true, Roles: []string{"admin", "dev"}, Scopes: []string{"read", "write"},
		AMR: []string{"pwd", "otp"}, AuthenticatedAt: now.Add(-time.Hour),
		Claims: map[string]string{"email": "alice@example.com"},
	}
	tok, err := s.Assert(id, now.Add(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	msg := must(jws.Parse([]byte(tok)))
	if kid, _ := msg.Signatures()[0].ProtectedHeaders().KeyID(); kid != s.KeyID() || kid == "" {
		t.Errorf("kid %q, want %q", kid, s.KeyID())
	}
	if _, err := verify(t, set, tok, now.Add(30*time.Second)); err != nil {
		t.Fatalf("verify: %v", err)
	}
	var got assertion.Claims
	if err := json.Unmarshal(msg.Payload(), &got); err != nil {
		t.Fatal(err)
	}
	want := assertion.Claims{
		Issuer: "https://authresolver.test", Audience: "app", Subject: "alice",
		IssuedAt: now.Unix(), Expires: now.Add(assertion.MaxLifetime).Unix(),
		Credential: "jwt", CredentialIssuer: "https://idp.example", Verified: true,
		Roles: []string{"admin", "dev"}, Scope: "read write", AMR: []string{"pwd", "otp"},
		AuthTime: now.Add(-time.Hour).Unix(), Extra: map[string]string{"email": "alice@example.com"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("claims (-want +got):\n%s", d)
	}
}

func TestAssertExpiry(t *testing.T) {
	tests := []struct {
		name    string
		exp     time.Duration // asked for, from now
		wantExp time.Duration // in the assertion, from now; 0: ErrExpired
	}{
		{"credential expires later: 60 s", 10 * time.Minute, assertion.MaxLifetime},
		{"exactly 60 s", assertion.MaxLifetime, assertion.MaxLifetime},
		{"credential expires sooner: its expiry", 10 * time.Second, 10 * time.Second},
		{"expired", 0, 0},
		{"in the past", -time.Second, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := now
			s, set := newSigner(t, &clock)
			tok, err := s.Assert(&resolver.Identity{UserID: "u", Credential: "session", SessionHandle: "h"}, now.Add(tt.exp))
			if tt.wantExp == 0 {
				if !errors.Is(err, assertion.ErrExpired) {
					t.Fatalf("Assert: %v, want ErrExpired", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tk, err := verify(t, set, tok, now)
			if err != nil {
				t.Fatal(err)
			}
			exp, _ := tk.Expiration()
			iat, _ := tk.IssuedAt()
			if got := exp.Sub(now); got != tt.wantExp {
				t.Errorf("exp now+%v, want now+%v", got, tt.wantExp)
			}
			if exp.Sub(iat) > assertion.MaxLifetime {
				t.Errorf("exp - iat = %v, want at most %v", exp.Sub(iat), assertion.MaxLifetime)
			}
			if _, err := verify(t, set, tok, exp.Add(time.Second)); err == nil {
				t.Error("assertion verified after its exp")
			}
		})
	}
}

func TestAssertForgeries(t *testing.T) {
	clock := now
	s, set := newSigner(t, &clock)
	other, _ := newSigner(t, &clock) // another key: an attacker's
	good := must(s.Assert(&resolver.Identity{UserID: "alice"}, now.Add(time.Minute)))
	forged := must(other.Assert(&resolver.Identity{UserID: "root"}, now.Add(time.Minute)))
	parts := strings.Split(good, ".")
	rootPayload := strings.Split(forged, ".")[1]
	for name, tok := range map[string]string{
		"signed with another key":       forged,
		"payload swapped":               parts[0] + "." + rootPayload + "." + parts[2],
		"alg none":                      "eyJhbGciOiJub25lIiwidHlwIjoiYXV0aHJlc29sdmVyLWFzc2VydGlvbitqd3QifQ." + rootPayload + ".",
		"header value of a dash header": "root",
	} {
		if _, err := verify(t, set, tok, now); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
}

func TestJWKSOnlyPublic(t *testing.T) {
	clock := now
	s, set := newSigner(t, &clock)
	if set.Len() != 1 {
		t.Fatalf("JWKS has %d keys, want 1", set.Len())
	}
	k, _ := set.Key(0)
	if _, ok := k.(jwk.ECDSAPublicKey); !ok {
		t.Errorf("JWKS key is %T, want a public EC key", k)
	}
	if kid, _ := k.KeyID(); kid != s.KeyID() {
		t.Errorf("JWKS kid %q, want %q", kid, s.KeyID())
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, assertion.JWKSPath, nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d, want 405", rec.Code)
	}
}

func TestNewNeedsIssuerAndAudience(t *testing.T) {
	key := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	for _, o := range []assertion.Options{{Issuer: "i"}, {Audience: "a"}, {}} {
		if _, err := assertion.New(key, o); err == nil {
			t.Errorf("New(%+v): no error", o)
		}
	}
	if _, err := assertion.Load(filepath.Join(t.TempDir(), "missing.pem"), assertion.Options{Issuer: "i", Audience: "a"}); err == nil {
		t.Error("Load of a missing file: no error")
	}
}
