// Package jwkstest makes signing keys, JWKS documents, JWKS servers and
// JWTs for tests of code that verifies tokens (jwks, resolver, e2e).
//
// Tokens are signed with the standard library, independently of the
// verifier under test, and any header or claim can be set, including
// hostile ones (alg "none", jku, an embedded jwk). A typical test:
//
//	key := jwkstest.NewKey("ES256", "k1")
//	srv := jwkstest.NewServer(key)
//	defer srv.Close()
//	// configure the verifier with issuer "https://issuer.test" and srv.URL()
//	tok := key.Mint(jwkstest.Claims("https://issuer.test", "user-1", time.Hour))
//
// Functions panic on misuse (an unknown algorithm, claims that do not
// marshal), as they are meant for tests.
package jwkstest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"time"
)

// Key is a signing key with the public JWK it publishes.
type Key struct {
	// ID is the kid, in the JWK and in minted headers; empty for none.
	ID string
	// Alg is the JWS algorithm: RS256/384/512, PS256/384/512,
	// ES256/384/512 or EdDSA.
	Alg string
	// Signer is the private key.
	Signer crypto.Signer
	// OmitAlg leaves "alg" out of the JWK, as Microsoft Entra ID does.
	OmitAlg bool
	// Use is the JWK "use" ("sig", "enc"); empty leaves it out.
	Use string
	// Extra members merged into the JWK, e.g. "x5c" or "x5t".
	Extra map[string]any
}

// NewKey generates a key for alg with key id kid. RSA keys are 2048 bits.
func NewKey(alg, kid string) *Key {
	var signer crypto.Signer
	var err error
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		signer, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ES256":
		signer, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ES384":
		signer, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "ES512":
		signer, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case "EdDSA":
		_, signer, err = ed25519.GenerateKey(rand.Reader)
	default:
		panic(fmt.Sprintf("jwkstest: unsupported algorithm %q", alg))
	}
	if err != nil {
		panic(fmt.Sprintf("jwkstest: generate %s key: %v", alg, err))
	}
	return &Key{ID: kid, Alg: alg, Signer: signer}
}

// WithID returns a copy of k (same key material) published and minted
// under kid.
func (k *Key) WithID(kid string) *Key {
	c := *k
	c.ID = kid
	return &c
}

// Public returns the public key.
func (k *Key) Public() crypto.PublicKey { return k.Signer.Public() }

// JWK returns the public JWK of k as a JSON object.
func (k *Key) JWK() map[string]any {
	m := map[string]any{}
	switch pub := k.Public().(type) {
	case *rsa.PublicKey:
		m["kty"] = "RSA"
		m["n"] = b64(pub.N.Bytes())
		m["e"] = b64(big.NewInt(int64(pub.E)).Bytes())
	case *ecdsa.PublicKey:
		raw, err := pub.Bytes() // 0x04 || X || Y
		if err != nil {
			panic(err)
		}
		size := (len(raw) - 1) / 2
		m["kty"] = "EC"
		m["crv"] = pub.Curve.Params().Name
		m["x"] = b64(raw[1 : 1+size])
		m["y"] = b64(raw[1+size:])
	case ed25519.PublicKey:
		m["kty"] = "OKP"
		m["crv"] = "Ed25519"
		m["x"] = b64(pub)
	}
	if k.ID != "" {
		m["kid"] = k.ID
	}
	if !k.OmitAlg {
		m["alg"] = k.Alg
	}
	if k.Use != "" {
		m["use"] = k.Use
	}
	for name, v := range k.Extra {
		m[name] = v
	}
	return m
}

// JWKS returns the JWKS document publishing keys.
func JWKS(keys ...*Key) []byte {
	list := make([]any, 0, len(keys))
	for _, k := range keys {
		list = append(list, k.JWK())
	}
	return mustJSON(map[string]any{"keys": list})
}

// Claims returns the claims of a valid access token: iss, sub, iat now,
// exp now+ttl and a random jti. Add or delete entries to vary it.
func Claims(iss, sub string, ttl time.Duration) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": iss,
		"sub": sub,
		"iat": now.Unix(),
		"exp": now.Add(ttl).Unix(),
		"jti": randomID(),
	}
}

// Mint signs claims with the header {"alg", "kid" (if k has an ID), "typ":
// "JWT"}.
func (k *Key) Mint(claims map[string]any) string {
	return k.Sign(nil, claims)
}

// Sign signs claims with k under the default header of Mint merged with
// header; a nil value in header removes that parameter. The signature
// uses k.Alg, whatever header says about "alg", so that a test can lie.
func (k *Key) Sign(header, claims map[string]any) string {
	h := map[string]any{"alg": k.Alg, "typ": "JWT"}
	if k.ID != "" {
		h["kid"] = k.ID
	}
	for name, v := range header {
		if v == nil {
			delete(h, name)
			continue
		}
		h[name] = v
	}
	input := signingInput(h, claims)
	return input + "." + b64(k.signature([]byte(input)))
}

// SignRaw signs the header and claims JSON exactly as given, for payloads a
// map cannot express (duplicate or case-variant members, odd spacing).
func (k *Key) SignRaw(header, claims []byte) string {
	input := b64(header) + "." + b64(claims)
	return input + "." + b64(k.signature([]byte(input)))
}

func (k *Key) signature(input []byte) []byte {
	hash := crypto.SHA256
	switch k.Alg {
	case "RS384", "PS384", "ES384":
		hash = crypto.SHA384
	case "RS512", "PS512", "ES512":
		hash = crypto.SHA512
	}
	var digest []byte
	switch hash {
	case crypto.SHA256:
		d := sha256.Sum256(input)
		digest = d[:]
	case crypto.SHA384:
		d := sha512.Sum384(input)
		digest = d[:]
	default:
		d := sha512.Sum512(input)
		digest = d[:]
	}
	var sig []byte
	var err error
	switch priv := k.Signer.(type) {
	case *rsa.PrivateKey:
		if k.Alg[0] == 'P' {
			sig, err = rsa.SignPSS(rand.Reader, priv, hash, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		} else {
			sig, err = rsa.SignPKCS1v15(rand.Reader, priv, hash, digest)
		}
	case *ecdsa.PrivateKey:
		var r, s *big.Int
		r, s, err = ecdsa.Sign(rand.Reader, priv, digest)
		if err == nil {
			size := (priv.Curve.Params().BitSize + 7) / 8
			sig = make([]byte, 2*size)
			r.FillBytes(sig[:size])
			s.FillBytes(sig[size:])
		}
	case ed25519.PrivateKey:
		sig = ed25519.Sign(priv, input)
	default:
		panic(fmt.Sprintf("jwkstest: unsupported signer %T", k.Signer))
	}
	if err != nil {
		panic(fmt.Sprintf("jwkstest: sign: %v", err))
	}
	return sig
}

// Unsigned returns a token with an empty signature, as for alg "none".
func Unsigned(header, claims map[string]any) string {
	return signingInput(header, claims) + "."
}

// SignHMAC returns a token signed with HS256 under secret, for the attack
// that uses a public key (e.g. its PEM) as the HMAC secret.
func SignHMAC(secret []byte, header, claims map[string]any) string {
	input := signingInput(header, claims)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(input))
	return input + "." + b64(mac.Sum(nil))
}

func signingInput(header, claims map[string]any) string {
	return b64(mustJSON(header)) + "." + b64(mustJSON(claims))
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("jwkstest: %v", err))
	}
	return b
}

func randomID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return b64(b)
}

// Server is an identity provider's JWKS endpoint on httptest. It counts
// the requests it gets and can be switched to other documents, headers or
// failure statuses while running.
type Server struct {
	*httptest.Server
	hits atomic.Int64

	mu     sync.Mutex
	body   []byte
	status int
	header http.Header
}

// NewServer starts a Server publishing keys at URL(). Close it when done.
func NewServer(keys ...*Key) *Server {
	s := &Server{body: JWKS(keys...), header: http.Header{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

func (s *Server) serve(w http.ResponseWriter, _ *http.Request) {
	s.hits.Add(1)
	s.mu.Lock()
	body, status := s.body, s.status
	for name, vs := range s.header {
		w.Header()[name] = vs
	}
	s.mu.Unlock()
	if status != 0 && status != http.StatusOK {
		http.Error(w, http.StatusText(status), status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// URL returns the JWKS URL.
func (s *Server) URL() string { return s.Server.URL + "/jwks.json" }

// Hits returns the number of requests served so far.
func (s *Server) Hits() int64 { return s.hits.Load() }

// SetKeys publishes keys from now on.
func (s *Server) SetKeys(keys ...*Key) { s.SetBody(JWKS(keys...)) }

// SetBody serves body, verbatim, from now on.
func (s *Server) SetBody(body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body = body
}

// SetStatus makes the server answer with status and no JWKS, or serve the
// JWKS again for 0 or 200.
func (s *Server) SetStatus(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status = status
}

// SetHeader sets a response header, e.g. Cache-Control; "" removes it.
func (s *Server) SetHeader(name, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if value == "" {
		s.header.Del(name)
		return
	}
	s.header.Set(name, value)
}
