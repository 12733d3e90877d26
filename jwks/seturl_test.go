package jwks_test

import (
	"context"
	"errors"
	"testing"

	"github.com/authresolver/authresolver/jwks"
	"github.com/authresolver/authresolver/resolver"
)

// TestSetURL: a verifier whose JWKS URL is discovered later answers with
// an error (503) until SetURL and Start, then verifies.
func TestSetURL(t *testing.T) {
	key := keys().es256
	srv := startServer(t, key)
	v, err := jwks.New(jwks.Options{Issuer: issuer, LateURL: true, Algorithms: []string{"ES256"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	tok := key.Mint(claims(nil))
	if _, _, err := v.Verify(context.Background(), tok); !errors.Is(err, jwks.ErrNoKeys) {
		t.Errorf("before discovery: error %v, want ErrNoKeys", err)
	}
	if v.Ready() {
		t.Error("Ready before discovery")
	}
	if err := v.Start(context.Background()); err == nil {
		t.Error("Start without a URL succeeded")
	}
	if err := v.SetURL("file:///etc/jwks.json"); err == nil {
		t.Error("SetURL accepted a file:// URL")
	}
	if err := v.SetURL("http://keys.example/jwks"); err == nil {
		t.Error("SetURL accepted plain http to a non-loopback host")
	}
	if err := v.SetURL(srv.URL()); err != nil {
		t.Fatal(err)
	}
	if err := v.SetURL(srv.URL()); err == nil {
		t.Error("SetURL twice succeeded")
	}
	if err := v.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, reason, err := v.Verify(context.Background(), tok); err != nil || reason != resolver.ReasonNone {
		t.Errorf("after discovery: reason %q, error %v", reason, err)
	}
}
