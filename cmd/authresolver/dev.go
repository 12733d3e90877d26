package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/authresolver/authresolver/session"
)

const (
	devIssuer = "https://authresolver.dev.invalid"
	devKeyID  = "dev-1"
	devUser   = "dev-user"
)

// dev runs the server as `serve` would, with no Redis and no identity
// provider: an in-memory store, a freshly generated ES256 key published as
// a file:// JWKS and trusted as issuer, and an admin token. Once it listens
// it prints a token, a session cookie and curl lines that work as printed,
// and the URL of the browser demo (demo.go) it serves on AUTHRESOLVER_DEMO_ADDR.
func dev(ctx context.Context, cfg Config, log *slog.Logger, stdout io.Writer) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("dev: generate key: %w", err)
	}
	dir, err := os.MkdirTemp("", "authresolver-dev-")
	if err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	defer os.RemoveAll(dir)
	jwksPath := filepath.Join(dir, "jwks.json")
	if err := writeJWKS(jwksPath, &key.PublicKey); err != nil {
		return err
	}
	cfg.RedisURL, cfg.RedisAddrs, cfg.RedisMasterName = "", nil, ""
	cfg.issuers = append(cfg.issuers, issuerConfig{
		Issuer: devIssuer, JWKSURL: "file://" + jwksPath, Algorithms: []string{"ES256"}, leeway: cfg.JWTLeeway,
	})
	if cfg.ListenAddr == ":8080" {
		cfg.ListenAddr = "127.0.0.1:8080" // a demo should not listen on every interface
	}
	if cfg.AdminToken == "" {
		cfg.AdminToken = randomToken()
	}
	demoLn, rd, err := listenDemo(cfg.DemoAddr)
	if err != nil {
		return err
	}
	defer demoLn.Close()
	cfg.login = rd // the demo's login page, whatever AUTHRESOLVER_LOGIN_URL says
	return serve(ctx, cfg, log, func(a *app) error {
		runDemo(ctx, a, demoLn, rd)
		return printDev(ctx, a, key, "http://"+demoLn.Addr().String()+"/", stdout)
	})
}

func writeJWKS(path string, pub *ecdsa.PublicKey) error {
	k, err := jwk.Import(pub)
	if err != nil {
		return fmt.Errorf("dev: jwk: %w", err)
	}
	_ = k.Set(jwk.KeyIDKey, devKeyID)
	_ = k.Set(jwk.AlgorithmKey, jwa.ES256())
	_ = k.Set(jwk.KeyUsageKey, "sig")
	set := jwk.NewSet()
	_ = set.AddKey(k)
	b, err := json.Marshal(set)
	if err != nil {
		return fmt.Errorf("dev: jwks: %w", err)
	}
	return os.WriteFile(path, b, 0o600)
}

// devToken signs a one-hour access token for devUser.
func devToken(key *ecdsa.PrivateKey, now time.Time) (string, error) {
	tok, err := jwt.NewBuilder().
		Issuer(devIssuer).Subject(devUser).JwtID(randomToken()[:16]).
		IssuedAt(now).Expiration(now.Add(time.Hour)).
		Claim("email", "dev@example.com").Claim("email_verified", true).
		Claim("roles", []string{"admin"}).Claim("scope", "read write").Claim("amr", []string{"pwd"}).
		Build()
	if err != nil {
		return "", fmt.Errorf("dev: token: %w", err)
	}
	priv, err := jwk.Import(key)
	if err != nil {
		return "", fmt.Errorf("dev: token key: %w", err)
	}
	_ = priv.Set(jwk.KeyIDKey, devKeyID)
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.ES256(), priv))
	if err != nil {
		return "", fmt.Errorf("dev: sign: %w", err)
	}
	return string(signed), nil
}

func printDev(ctx context.Context, a *app, key *ecdsa.PrivateKey, demoURL string, w io.Writer) error {
	token, err := devToken(key, time.Now())
	if err != nil {
		return err
	}
	created, err := a.store.Create(ctx, session.Params{
		UserID: devUser, Verified: true, Roles: []string{"admin"}, AMR: []string{"pwd"},
		Attributes: map[string]string{"email": "dev@example.com"},
	})
	if err != nil {
		return fmt.Errorf("dev: session: %w", err)
	}
	resolve := "http://" + loopback(a.resolveAddr)
	adm := "http://" + loopback(a.adminAddr)
	cookie := a.cfg.SessionCookie + "=" + string(created.ID)
	fmt.Fprintf(w, `
authresolver dev: in-memory store, issuer %s (key in a temporary file://
JWKS). Nothing here is for production.

resolve endpoint: %[2]s/resolve
admin API:        %[3]s  (admin token: %[4]s)

A JWT (ES256, one hour, user %[5]s, role admin):
%[6]s

A session cookie (user %[5]s, role admin):
%[7]s

Try:
  curl -i %[2]s/resolve -H 'Authorization: Bearer %[6]s'
  curl -i %[2]s/resolve -H 'Cookie: %[7]s'
  curl -i '%[2]s/resolve?role=ops' -H 'Cookie: %[7]s'        # 403 insufficient_role
  curl -i %[2]s/resolve                                       # 401
  curl -i -X DELETE %[3]s/v1/sessions/%[8]s -H 'Authorization: Bearer %[4]s'   # revoke the session
  curl -i %[2]s/resolve -H 'Cookie: %[7]s'                    # now 401
  curl -s %[3]s/metrics | grep authresolver_decisions_total

The whole browser sign-in loop (demo only; nothing of it runs in serve):
a demo app behind forward auth with login=redirect, a demo login page that
creates a session for %[5]s through the admin API, and a sign-out button
that revokes it. Open in a browser:

  %[9]s

`, devIssuer, resolve, adm, a.cfg.AdminToken, devUser, token, cookie, string(created.ID), demoURL)
	return nil
}

// loopback turns a wildcard listen address into one curl can reach.
func loopback(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
