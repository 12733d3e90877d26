//go:build ignore

// Gen writes the real-world JWKS shapes in this directory and the test
// private keys that match them. Run from jwks/testdata: go run gen.go
package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"log"
	"math/big"
	"os"
	"time"
)

func main() {
	entra1 := rsaKey(2048)
	entra2 := rsaKey(2048)
	ec := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	enc := rsaKey(2048)
	small := rsaKey(1024)

	for name, k := range map[string]crypto.Signer{
		"entra1": entra1, "entra2": entra2, "ec": ec, "ed": ed, "enc": enc, "small": small,
	} {
		der := must(x509.MarshalPKCS8PrivateKey(k))
		write("keys/"+name+".pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	}

	// Microsoft Entra ID: RSA keys without "alg", with x5t and x5c, and
	// extra members of its own.
	entra := []any{}
	for i, k := range []*rsa.PrivateKey{entra1, entra2} {
		cert := selfSigned(k)
		t := sha1.Sum(cert)
		kid := []string{"entra-kid-1", "entra-kid-2"}[i]
		entra = append(entra, map[string]any{
			"kty": "RSA", "use": "sig", "kid": kid, "x5t": b64(t[:]),
			"n": b64(k.N.Bytes()), "e": "AQAB",
			"x5c":                 []string{base64.StdEncoding.EncodeToString(cert)},
			"cloud_instance_name": "microsoftonline.com",
			"issuer":              "https://login.microsoftonline.com/{tenantid}/v2.0",
		})
	}
	write("entra.json", js(map[string]any{"keys": entra}))

	// A mix: usable EC (with alg, key_ops) and Ed25519 (without alg)
	// signature keys, and keys that must be skipped: an encryption key, an
	// HMAC secret, a key type jwx does not know, a 1024-bit RSA key.
	ecRaw := must(ec.PublicKey.Bytes())
	mixed := []any{
		map[string]any{"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "key_ops": []string{"verify"}, "kid": "ec-1",
			"x": b64(ecRaw[1:33]), "y": b64(ecRaw[33:])},
		map[string]any{"kty": "OKP", "crv": "Ed25519", "kid": "ed-1", "x": b64(ed.Public().(ed25519.PublicKey))},
		map[string]any{"kty": "RSA", "use": "enc", "alg": "RSA-OAEP-256", "kid": "enc-1", "n": b64(enc.N.Bytes()), "e": "AQAB"},
		map[string]any{"kty": "oct", "kid": "hmac-1", "alg": "HS256", "k": b64([]byte("a-shared-secret-the-attacker-knows"))},
		map[string]any{"kty": "AKP", "alg": "ML-DSA-44", "kid": "pq-1", "pub": b64([]byte("not a real post-quantum key"))},
		map[string]any{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": "small-1", "n": b64(small.N.Bytes()), "e": "AQAB"},
	}
	write("mixed.json", js(map[string]any{"keys": mixed}))
}

func rsaKey(bits int) *rsa.PrivateKey { return must(rsa.GenerateKey(rand.Reader, bits)) }

func selfSigned(k *rsa.PrivateKey) []byte {
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "accounts.test"},
		NotBefore:    time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:     time.Date(2044, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	return must(x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k))
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func js(v any) []byte { return append(must(json.MarshalIndent(v, "", "  ")), '\n') }

func write(name string, b []byte) {
	if err := os.WriteFile(name, b, 0o644); err != nil {
		log.Fatal(err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		log.Fatal(err)
	}
	return v
}
