// Package mint signs ES256 access tokens by hand for the load and chaos
// harnesses (hundreds of thousands per run; jwx would be the bottleneck) and
// publishes the signing key as a JWKS.
package mint

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
	"time"
)

// Issuer signs tokens with iss URL under key id Kid.
type Issuer struct {
	URL string // the iss claim
	Kid string
	key *ecdsa.PrivateKey
}

// New returns an issuer with a fresh P-256 key.
func New(url, kid string) (*Issuer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("mint: %w", err)
	}
	return &Issuer{URL: url, Kid: kid, key: key}, nil
}

// JWKS returns the JWKS document publishing the issuer's key.
func (is *Issuer) JWKS() []byte {
	pub := is.key.PublicKey
	raw, _ := pub.Bytes() // 0x04 || X || Y
	b, _ := json.Marshal(map[string]any{"keys": []any{map[string]string{
		"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": is.Kid,
		"x": b64(raw[1:33]), "y": b64(raw[33:]),
	}}})
	return b
}

// Token signs one access token for sub, valid for two hours from now. The
// claims give an allow the full set of identity headers (roles, amr,
// verified), like a real IdP's token.
func (is *Issuer) Token(sub, jti string, now time.Time) string {
	return is.TokenKid(is.Kid, sub, jti, now)
}

// TokenKid is Token with the header naming key id kid (an unknown kid makes
// a resolver refetch the JWKS).
func (is *Issuer) TokenKid(kid, sub, jti string, now time.Time) string {
	header := `{"alg":"ES256","kid":"` + kid + `","typ":"JWT"}`
	payload := fmt.Sprintf(`{"iss":%q,"sub":%q,"iat":%d,"exp":%d,"jti":%q,"email_verified":true,"roles":["reader","writer"],"amr":["pwd","otp"],"scope":"openid profile"}`,
		is.URL, sub, now.Unix(), now.Add(2*time.Hour).Unix(), jti)
	input := b64([]byte(header)) + "." + b64([]byte(payload))
	digest := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, is.key, digest[:])
	if err != nil {
		panic(err) // only a broken rand.Reader fails here
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + b64(sig)
}

// Many returns n distinct tokens (sub user-<prefix>-i, jti jti-<prefix>-i),
// signed on every core.
func (is *Issuer) Many(n int, prefix string) []string {
	toks := make([]string, n)
	now := time.Now()
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				id := fmt.Sprintf("%s-%d", prefix, i)
				toks[i] = is.Token("user-"+id, "jti-"+id, now)
			}
		})
	}
	wg.Wait()
	return toks
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
