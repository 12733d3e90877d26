// Package assertion signs the identity assertion: a short-lived compact JWS
// over the identity of an allowed request, sent to the app as
// <prefix>Assertion, and serves the public key that verifies it as a JWKS.
//
// Header hygiene in the proxy protects an app only as long as every proxy is
// configured right; an app that verifies the assertion does not depend on
// that. The signing key is an EC P-256 (ES256) or Ed25519 (EdDSA) private key
// in PEM, shared by every replica.
package assertion

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/authresolver/authresolver/resolver"
)

// Type is the typ header of every assertion, so that an app never mistakes
// an access token for an assertion or the other way round (RFC 8725 §3.11).
const Type = "authresolver-assertion+jwt"

// MaxLifetime bounds how long an assertion is valid after it is signed.
const MaxLifetime = 60 * time.Second

// JWKSPath is where the resolve listener serves the public key.
const JWKSPath = "/.well-known/jwks.json"

// Errors Load, ParseKey and Assert return.
var (
	ErrKey     = errors.New("assertion: want one EC P-256 or Ed25519 private key in PEM (PKCS#8 or SEC1)")
	ErrExpired = errors.New("assertion: expiry is not in the future")
)

// Options configure a Signer.
type Options struct {
	Issuer   string // iss of every assertion
	Audience string // aud of every assertion
	Now      func() time.Time
}

// Signer signs assertions with one key. It is safe for concurrent use.
type Signer struct {
	key    crypto.Signer
	alg    jwa.SignatureAlgorithm
	kid    string
	header string // the encoded protected header, the same for every assertion
	jwks   []byte
	opts   Options
}

var _ resolver.Asserter = (*Signer)(nil)

// Load reads the PEM key in path and returns a Signer for it.
func Load(path string, o Options) (*Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("assertion: read key: %w", err)
	}
	key, err := ParseKey(b)
	if err != nil {
		return nil, err
	}
	return New(key, o)
}

// ParseKey reads an EC P-256 or Ed25519 private key from PEM: PKCS#8
// ("PRIVATE KEY") or SEC1 ("EC PRIVATE KEY", with or without the "EC
// PARAMETERS" block openssl ecparam writes first). Anything else, or more
// than one key, is ErrKey.
func ParseKey(b []byte) (crypto.Signer, error) {
	var key crypto.Signer
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		var k any
		var err error
		switch block.Type {
		case "EC PARAMETERS":
			continue
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(block.Bytes)
		default:
			return nil, fmt.Errorf("%w: PEM block %q", ErrKey, block.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrKey, err)
		}
		if key != nil {
			return nil, fmt.Errorf("%w: more than one key", ErrKey)
		}
		switch k := k.(type) {
		case *ecdsa.PrivateKey:
			if k.Curve != elliptic.P256() {
				return nil, fmt.Errorf("%w: EC curve %s", ErrKey, k.Curve.Params().Name)
			}
			key = k
		case ed25519.PrivateKey:
			key = k
		default:
			return nil, fmt.Errorf("%w: %T", ErrKey, k)
		}
	}
	if key == nil {
		return nil, fmt.Errorf("%w: no key found", ErrKey)
	}
	return key, nil
}

// New returns a Signer for key (*ecdsa.PrivateKey on P-256, or
// ed25519.PrivateKey). The key ID is the RFC 7638 thumbprint of the public
// key, so every replica sharing the key names it alike.
func New(key crypto.Signer, o Options) (*Signer, error) {
	if o.Issuer == "" || o.Audience == "" {
		return nil, errors.New("assertion: issuer and audience are required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Signer{key: key, opts: o}
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, ErrKey
		}
		s.alg = jwa.ES256()
	case ed25519.PrivateKey:
		s.alg = jwa.EdDSA()
	default:
		return nil, ErrKey
	}
	pub, err := jwk.Import(key.Public())
	if err != nil {
		return nil, fmt.Errorf("assertion: public key: %w", err)
	}
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("assertion: thumbprint: %w", err)
	}
	s.kid = base64.RawURLEncoding.EncodeToString(tp)
	for k, v := range map[string]any{jwk.KeyIDKey: s.kid, jwk.AlgorithmKey: s.alg, jwk.KeyUsageKey: "sig"} {
		if err := pub.Set(k, v); err != nil {
			return nil, fmt.Errorf("assertion: public key: %w", err)
		}
	}
	set := jwk.NewSet()
	if err := set.AddKey(pub); err != nil {
		return nil, fmt.Errorf("assertion: key set: %w", err)
	}
	if s.jwks, err = json.Marshal(set); err != nil {
		return nil, fmt.Errorf("assertion: key set: %w", err)
	}
	hdr, err := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}{s.alg.String(), s.kid, Type})
	if err != nil {
		return nil, fmt.Errorf("assertion: header: %w", err)
	}
	s.header = base64.RawURLEncoding.EncodeToString(hdr)
	return s, nil
}

// KeyID returns the kid of the assertions and of the JWKS entry.
func (s *Signer) KeyID() string { return s.kid }

// Claims are the claims of an assertion. The identity fields say what the
// identity headers say.
type Claims struct {
	Issuer   string `json:"iss"`
	Audience string `json:"aud"`
	Subject  string `json:"sub"`
	IssuedAt int64  `json:"iat"`
	Expires  int64  `json:"exp"`

	Credential       string            `json:"credential"`               // jwt or session
	CredentialIssuer string            `json:"credential_iss,omitempty"` // the token's issuer (JWT)
	SessionID        string            `json:"sid,omitempty"`            // the public session handle, never the session ID
	Anonymous        bool              `json:"anonymous"`
	Verified         bool              `json:"verified"`
	Roles            []string          `json:"roles,omitempty"`
	Scope            string            `json:"scope,omitempty"`
	AMR              []string          `json:"amr,omitempty"`
	AuthTime         int64             `json:"auth_time,omitempty"`
	Extra            map[string]string `json:"claims,omitempty"` // AUTHRESOLVER_CLAIM_HEADERS claims by claim name
}

// Assert signs an assertion of id valid until exp, which must be in the
// future; an exp more than MaxLifetime away is brought down to it. It
// returns ErrExpired for an exp not after now, and an error only if signing
// fails.
func (s *Signer) Assert(id *resolver.Identity, exp time.Time) (string, error) {
	now := s.opts.Now()
	if limit := now.Add(MaxLifetime); exp.After(limit) {
		exp = limit
	}
	if !exp.After(now) {
		return "", ErrExpired
	}
	c := Claims{
		Issuer: s.opts.Issuer, Audience: s.opts.Audience, Subject: id.UserID,
		IssuedAt: now.Unix(), Expires: exp.Unix(),
		Credential: id.Credential, CredentialIssuer: id.Issuer, SessionID: id.SessionHandle,
		Anonymous: id.Anonymous, Verified: id.Verified,
		Roles: id.Roles, Scope: strings.Join(id.Scopes, " "), AMR: id.AMR, Extra: id.Claims,
	}
	if !id.AuthenticatedAt.IsZero() {
		c.AuthTime = id.AuthenticatedAt.Unix()
	}
	payload, err := json.Marshal(&c)
	if err != nil {
		return "", fmt.Errorf("assertion: claims: %w", err)
	}
	enc := base64.RawURLEncoding
	n := len(s.header) + 1 + enc.EncodedLen(len(payload))
	buf := make([]byte, n, n+1+enc.EncodedLen(ed25519.SignatureSize+16))
	copy(buf, s.header)
	buf[len(s.header)] = '.'
	enc.Encode(buf[len(s.header)+1:], payload)
	sig, err := s.sign(buf)
	if err != nil {
		return "", fmt.Errorf("assertion: sign: %w", err)
	}
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, sig)
	return string(buf), nil
}

// sign returns the JWS signature of input (RFC 7515 §5.1, RFC 7518 §3.4:
// ES256 is R||S, 32 bytes each; RFC 8037: EdDSA is the Ed25519 signature).
func (s *Signer) sign(input []byte) ([]byte, error) {
	switch k := s.key.(type) {
	case *ecdsa.PrivateKey:
		digest := sha256.Sum256(input)
		r, ss, err := ecdsa.Sign(rand.Reader, k, digest[:])
		if err != nil {
			return nil, err
		}
		sig := make([]byte, 64)
		r.FillBytes(sig[:32])
		ss.FillBytes(sig[32:])
		return sig, nil
	case ed25519.PrivateKey:
		return ed25519.Sign(k, input), nil
	}
	return nil, ErrKey
}

// ServeHTTP serves the public key as a JWKS (GET and HEAD).
func (s *Signer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("Content-Length", strconv.Itoa(len(s.jwks)))
	if r.Method == http.MethodGet {
		_, _ = w.Write(s.jwks)
	}
}
