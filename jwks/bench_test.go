package jwks_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"sync"
	"testing"

	"github.com/authresolver/authresolver/jwks"
	"github.com/authresolver/authresolver/jwks/jwkstest"
)

// benchTokens returns distinct valid tokens of key, minted once per test
// binary. The verifier caches nothing, so cycling through a pool measures
// the same work as a fresh token per iteration; RSA signing is too slow to
// mint one for each of hundreds of thousands of iterations.
var benchTokens = sync.OnceValue(func() map[string][]string {
	k := keys()
	pools := map[string][]string{}
	for _, pool := range []struct {
		key *jwkstest.Key
		n   int
	}{{k.es256, 4096}, {k.eddsa, 4096}, {k.rs256, 512}} {
		toks := make([]string, pool.n)
		for i := range toks {
			c := claims(nil)
			c["aud"] = "api"
			c["scope"] = "openid profile email"
			c["roles"] = []string{"user"}
			c["email_verified"] = true
			toks[i] = pool.key.Mint(c)
		}
		pools[pool.key.Alg] = toks
	}
	return pools
})

func BenchmarkVerify(b *testing.B) {
	k := keys()
	for _, key := range []*jwkstest.Key{k.es256, k.rs256, k.eddsa} {
		b.Run(key.Alg, func(b *testing.B) {
			srv := startServer(b, k.es256, k.rs256, k.eddsa)
			v := startVerifier(b, jwks.Options{URL: srv.URL(), Audiences: []string{"api"}})
			toks := benchTokens()[key.Alg]
			ctx := context.Background()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				id, reason, err := v.Verify(ctx, toks[i%len(toks)])
				if err != nil || reason != "" || id.UserID == "" {
					b.Fatalf("Verify: %q, %v", reason, err)
				}
				i++
			}
		})
	}
}

// BenchmarkRawP256Verify is the floor for BenchmarkVerify/ES256: one ECDSA
// P-256 verification of a precomputed SHA-256 digest.
func BenchmarkRawP256Verify(b *testing.B) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	digest := sha256.Sum256([]byte(benchTokens()["ES256"][0]))
	sig, err := ecdsa.SignASN1(rand.Reader, priv, digest[:])
	if err != nil {
		b.Fatal(err)
	}
	pub := &priv.PublicKey
	b.ReportAllocs()
	for b.Loop() {
		if !ecdsa.VerifyASN1(pub, digest[:], sig) {
			b.Fatal("signature did not verify")
		}
	}
}
