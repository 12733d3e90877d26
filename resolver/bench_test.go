package resolver_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/authresolver/authresolver/jwks"
	"github.com/authresolver/authresolver/jwks/jwkstest"
	"github.com/authresolver/authresolver/resolver"
)

const benchIssuer = "https://issuer.bench"

var benchKeys = sync.OnceValue(func() []*jwkstest.Key {
	return []*jwkstest.Key{jwkstest.NewKey("ES256", "es"), jwkstest.NewKey("RS256", "rs"), jwkstest.NewKey("EdDSA", "ed")}
})

// benchTokens mints n distinct tokens per key, once per test binary. The
// handler has no cache here, so cycling through a pool measures a full
// verification per request (RSA signing is too slow to mint one per
// iteration).
var benchTokens = sync.OnceValue(func() map[string][]string {
	pools := map[string][]string{}
	for _, k := range benchKeys() {
		n := 4096
		if k.Alg == "RS256" {
			n = 512
		}
		for range n {
			c := jwkstest.Claims(benchIssuer, "user-1", time.Hour)
			c["aud"] = "api"
			c["scope"] = "openid profile"
			c["roles"] = []string{"user"}
			c["email_verified"] = true
			pools[k.Alg] = append(pools[k.Alg], k.Mint(c))
		}
	}
	return pools
})

// BenchmarkResolveJWT is a full uncached resolve: extraction, ES256/RS256/
// EdDSA verification, claims, identity headers, through the chi router.
func BenchmarkResolveJWT(b *testing.B) {
	srv := jwkstest.NewServer(benchKeys()...)
	b.Cleanup(srv.Close)
	v, err := jwks.New(jwks.Options{Issuer: benchIssuer, URL: srv.URL(), Audiences: []string{"api"}})
	if err != nil {
		b.Fatal(err)
	}
	if err := v.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(v.Close)
	r := resolver.New(resolver.Options{Tokens: jwks.NewSet(v)})
	for _, alg := range []string{"ES256", "RS256", "EdDSA"} {
		toks := benchTokens()[alg]
		b.Run(alg, func(b *testing.B) {
			reqs := make([]*http.Request, len(toks))
			for i, t := range toks {
				reqs[i] = httptest.NewRequest("GET", "/resolve", nil)
				reqs[i].Header.Set("Authorization", "Bearer "+t)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				w := httptest.NewRecorder()
				r.ServeHTTP(w, reqs[i%len(reqs)])
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Header().Get("X-Auth-Error"))
				}
				i++
			}
		})
	}
}

// BenchmarkRawP256Verify is the floor of BenchmarkResolveJWT/ES256: one
// ecdsa.VerifyASN1 of P-256 over a precomputed SHA-256 digest.
func BenchmarkRawP256Verify(b *testing.B) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	digest := sha256.Sum256([]byte("header.payload"))
	sig, err := ecdsa.SignASN1(rand.Reader, priv, digest[:])
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if !ecdsa.VerifyASN1(&priv.PublicKey, digest[:], sig) {
			b.Fatal("signature did not verify")
		}
	}
}
