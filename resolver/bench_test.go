package resolver_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/authresolver/authresolver/assertion"
	"github.com/authresolver/authresolver/cache"
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

// BenchmarkAssertion measures what the signed identity assertion costs: a
// cached decision (L1 hit) reuses the assertion signed when the verdict was
// made, so it should cost nothing there; an uncached resolve (full ES256
// verification) signs once more.
func BenchmarkAssertion(b *testing.B) {
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
	signers := map[string]resolver.Asserter{"none": nil}
	for alg, key := range map[string]crypto.Signer{"ES256": mustP256(b), "EdDSA": mustEd25519(b)} {
		s, err := assertion.New(key, assertion.Options{Issuer: "https://authresolver.bench", Audience: "app"})
		if err != nil {
			b.Fatal(err)
		}
		signers[alg] = s
	}
	toks := benchTokens()["ES256"]
	for _, tier := range []string{"L1 hit", "uncached"} {
		for _, name := range []string{"none", "ES256", "EdDSA"} {
			b.Run(tier+"/"+name, func(b *testing.B) {
				o := resolver.Options{Tokens: jwks.NewSet(v), Asserter: signers[name], CacheTTL: 5 * time.Second}
				if tier == "L1 hit" {
					o.Cache = cache.NewL1(cache.L1Options{MaxEntries: 1000})
				}
				r := resolver.New(o)
				reqs := make([]*http.Request, len(toks))
				for i, t := range toks {
					reqs[i] = httptest.NewRequest("GET", "/resolve", nil)
					reqs[i].Header.Set("Authorization", "Bearer "+t)
				}
				if tier == "L1 hit" {
					reqs = reqs[:1]
				}
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					w := httptest.NewRecorder()
					r.ServeHTTP(w, reqs[i%len(reqs)])
					if w.Code != http.StatusOK || (name != "none") != (w.Header().Get("X-Auth-Assertion") != "") {
						b.Fatalf("status %d, assertion %q", w.Code, w.Header().Get("X-Auth-Assertion"))
					}
					i++
				}
			})
		}
	}
}

func mustP256(b *testing.B) crypto.Signer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	return k
}

func mustEd25519(b *testing.B) crypto.Signer {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	return k
}
