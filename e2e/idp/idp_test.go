package idp_test

import (
	"context"
	"testing"
	"time"

	"github.com/authresolver/authresolver/discovery"
	"github.com/authresolver/authresolver/e2e/idp"
	"github.com/authresolver/authresolver/introspect"
	"github.com/authresolver/authresolver/jwks"
	"github.com/authresolver/authresolver/resolver"
)

// TestProvider drives the discovery, jwks and introspect packages against
// a real OpenID provider nobody here wrote.
func TestProvider(t *testing.T) {
	p := idp.Start(t)
	ctx := context.Background()

	doc, err := discovery.Fetch(ctx, discovery.Options{Issuer: p.Issuer})
	if err != nil {
		t.Fatal(err)
	}
	if doc.JWKSURI == "" || doc.IntrospectionEndpoint == "" || doc.UserinfoEndpoint == "" {
		t.Fatalf("document %+v: want jwks_uri, introspection and userinfo endpoints", doc)
	}
	if _, err := discovery.Fetch(ctx, discovery.Options{Issuer: p.Issuer + "/"}); err == nil {
		t.Error("discovery accepted an issuer that differs by a trailing slash")
	}

	t.Run("JWT access token", func(t *testing.T) {
		v, err := jwks.New(jwks.Options{Issuer: p.Issuer, LateURL: true, Audiences: []string{idp.JWTResource}, Type: "at+jwt", Algorithms: []string{"ES256"}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(v.Close)
		if err := v.SetURL(doc.JWKSURI); err != nil {
			t.Fatal(err)
		}
		if err := v.Start(ctx); err != nil {
			t.Fatal(err)
		}
		id, reason, err := v.Verify(ctx, p.Token(t, idp.JWTResource))
		if err != nil || reason != resolver.ReasonNone {
			t.Fatalf("reason %q, error %v", reason, err)
		}
		if id.UserID != idp.AppID {
			t.Errorf("sub %q, want %q", id.UserID, idp.AppID)
		}
	})

	t.Run("opaque token", func(t *testing.T) {
		c, err := introspect.New(introspect.Options{
			URL: doc.IntrospectionEndpoint, ClientID: idp.ResolverID, ClientSecret: idp.ResolverSecret,
			Audiences: []string{idp.OpaqueResource}, Leeway: 30 * time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		tok := p.Token(t, idp.OpaqueResource)
		id, reason, err := c.Introspect(ctx, tok)
		if err != nil || reason != resolver.ReasonNone {
			t.Fatalf("reason %q, error %v", reason, err)
		}
		if id.UserID != idp.AppID || id.Credential != resolver.CredentialOpaque || len(id.Roles) != 1 || id.Roles[0] != "reader" {
			t.Errorf("identity %+v", id)
		}
		p.Revoke(t, tok)
		if _, reason, err := c.Introspect(ctx, tok); err != nil || reason != resolver.ReasonTokenInactive {
			t.Errorf("revoked: reason %q, error %v; want token_inactive", reason, err)
		}
		wrong, _ := introspect.New(introspect.Options{URL: doc.IntrospectionEndpoint, ClientID: idp.ResolverID, ClientSecret: "wrong"})
		if _, _, err := wrong.Introspect(ctx, p.Token(t, idp.OpaqueResource)); err == nil {
			t.Error("a wrong client secret is not an error")
		}
	})

	t.Run("restart", func(t *testing.T) {
		p.Stop()
		if _, err := discovery.Fetch(ctx, discovery.Options{Issuer: p.Issuer, Timeout: time.Second}); err == nil {
			t.Error("discovery succeeded while the provider is stopped")
		}
		p.Restart(t)
		if _, err := discovery.Fetch(ctx, discovery.Options{Issuer: p.Issuer}); err != nil {
			t.Errorf("after restart: %v", err)
		}
	})
}
