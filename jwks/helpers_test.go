package jwks_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/authresolver/authresolver/jwks"
	"github.com/authresolver/authresolver/jwks/jwkstest"
)

const issuer = "https://issuer.test"

// testKeys are generated once per test binary: RSA generation is slow.
type testKeys struct {
	es256, es384, es512, rs256, ps256, eddsa *jwkstest.Key
	p384                                     *jwkstest.Key // P-384 key published for ES256 mismatch tests
	other                                    *jwkstest.Key // an attacker's or another issuer's ES256 key
	otherRSA                                 *jwkstest.Key
}

var keys = sync.OnceValue(func() *testKeys {
	return &testKeys{
		es256:    jwkstest.NewKey("ES256", "es256"),
		es384:    jwkstest.NewKey("ES384", "es384"),
		es512:    jwkstest.NewKey("ES512", "es512"),
		rs256:    jwkstest.NewKey("RS256", "rs256"),
		ps256:    jwkstest.NewKey("PS256", "ps256"),
		eddsa:    jwkstest.NewKey("EdDSA", "eddsa"),
		p384:     jwkstest.NewKey("ES384", "p384"),
		other:    jwkstest.NewKey("ES256", "other"),
		otherRSA: jwkstest.NewKey("RS256", "other-rsa"),
	}
})

// startVerifier creates and starts a verifier for opts, defaulting Issuer
// to issuer, and closes it when the test ends.
func startVerifier(tb testing.TB, opts jwks.Options) *jwks.Verifier {
	tb.Helper()
	if opts.Issuer == "" {
		opts.Issuer = issuer
	}
	v, err := jwks.New(opts)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	if err := v.Start(context.Background()); err != nil {
		tb.Fatalf("Start: %v", err)
	}
	tb.Cleanup(v.Close)
	return v
}

// startServer starts a JWKS server for keys and closes it when the test
// ends.
func startServer(tb testing.TB, keys ...*jwkstest.Key) *jwkstest.Server {
	tb.Helper()
	s := jwkstest.NewServer(keys...)
	tb.Cleanup(s.Close)
	return s
}

// claims returns valid claims of issuer for user-1, changed by edit.
func claims(edit func(map[string]any)) map[string]any {
	c := jwkstest.Claims(issuer, "user-1", time.Hour)
	if edit != nil {
		edit(c)
	}
	return c
}
