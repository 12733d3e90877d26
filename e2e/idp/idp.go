// Package idp runs a real OpenID provider for tests: panva's oidc-provider
// (provider.mjs in this directory, dependencies pinned in
// package-lock.json and installed with `npm ci` here). It issues JWT
// access tokens (typ at+jwt) for the resource JWTResource and opaque ones
// for OpaqueResource by the client-credentials grant, and serves
// discovery, JWKS, introspection, revocation and UserInfo.
//
// Without node on PATH or without node_modules the tests that need it are
// skipped, unless CI=true: then they fail, naming what to install.
package idp

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/authresolver/authresolver/internal/syncbuf"
)

// The provider's resources, clients and secrets (see provider.mjs).
const (
	JWTResource    = "https://jwt.api.test"
	OpaqueResource = "https://opaque.api.test"
	AppID          = "app" // obtains tokens; the subject of its tokens
	AppSecret      = "app-secret"
	ResolverID     = "authresolver" // introspects
	ResolverSecret = "resolver-secret"
)

const startTimeout = 20 * time.Second

// Provider is a running oidc-provider.
type Provider struct {
	Issuer  string
	port    string
	keyfile string
	cmd     *exec.Cmd
	exited  chan struct{}
	out     *syncbuf.Buffer
}

// dir is this package's directory, where provider.mjs and node_modules are.
func dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

// need fails (CI=true) or skips tb for a missing prerequisite.
func need(tb testing.TB, format string, args ...any) {
	tb.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		tb.Fatal("e2e/idp: " + msg)
	}
	tb.Skip("e2e/idp: " + msg + " (with CI=true this fails)")
}

// Start runs the provider on a free loopback port and stops it when the
// test ends.
func Start(tb testing.TB) *Provider {
	tb.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		need(tb, "node not found on PATH: apt-get install nodejs npm")
	}
	if _, err := os.Stat(filepath.Join(dir(), "node_modules", "oidc-provider")); err != nil {
		need(tb, "npm package oidc-provider not installed: run npm ci in e2e/idp")
	}
	p := &Provider{port: "0", keyfile: filepath.Join(tb.TempDir(), "key.json")}
	p.start(tb)
	tb.Cleanup(func() {
		p.Stop()
		if tb.Failed() {
			tb.Logf("--- oidc-provider output ---\n%s", p.out.String())
		}
	})
	return p
}

func (p *Provider) start(tb testing.TB) {
	tb.Helper()
	cmd := exec.Command("node", "provider.mjs", p.port, p.keyfile)
	cmd.Dir = dir()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	p.out = &syncbuf.Buffer{}
	cmd.Stderr = p.out
	if err := cmd.Start(); err != nil {
		tb.Fatalf("e2e/idp: start node: %v", err)
	}
	p.cmd, p.exited = cmd, make(chan struct{})
	exited := p.exited
	go func() { _ = cmd.Wait(); close(exited) }()
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			line <- sc.Text()
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case l := <-line:
		var v struct{ Issuer string }
		if err := json.Unmarshal([]byte(l), &v); err != nil || v.Issuer == "" {
			tb.Fatalf("e2e/idp: unexpected first line %q", l)
		}
		p.Issuer = v.Issuer
		u, _ := url.Parse(v.Issuer)
		p.port = u.Port() // a restart keeps the issuer
	case <-exited:
		tb.Fatalf("e2e/idp: provider exited before listening")
	case <-time.After(startTimeout):
		p.Stop()
		tb.Fatalf("e2e/idp: provider did not start within %v", startTimeout)
	}
}

// Stop stops the provider (SIGTERM, then SIGKILL); Restart starts it again.
func (p *Provider) Stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	}
}

// Restart starts a stopped provider on the same port with the same signing
// key. Opaque tokens issued before are forgotten (its store is in memory).
func (p *Provider) Restart(tb testing.TB) {
	tb.Helper()
	p.Stop()
	p.start(tb)
}

// Token obtains an access token for resource by the client-credentials
// grant.
func (p *Provider) Token(tb testing.TB, resource string) string {
	tb.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "resource": {resource}, "scope": {"read"}}
	var v struct {
		AccessToken string `json:"access_token"`
	}
	p.post(tb, "/token", AppID, AppSecret, form, &v)
	if v.AccessToken == "" {
		tb.Fatal("e2e/idp: no access token")
	}
	return v.AccessToken
}

// Revoke revokes token at the provider (RFC 7009).
func (p *Provider) Revoke(tb testing.TB, token string) {
	tb.Helper()
	p.post(tb, "/token/revocation", AppID, AppSecret, url.Values{"token": {token}}, nil)
}

func (p *Provider) post(tb testing.TB, path, id, secret string, form url.Values, out any) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, p.Issuer+path, strings.NewReader(form.Encode()))
	if err != nil {
		tb.Fatal(err)
	}
	req.SetBasicAuth(id, secret)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	client := &http.Client{Timeout: 10 * time.Second}
	res, err := client.Do(req)
	if err != nil {
		tb.Fatalf("e2e/idp: POST %s: %v", path, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		tb.Fatalf("e2e/idp: POST %s: %d %s", path, res.StatusCode, body)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			tb.Fatalf("e2e/idp: POST %s: %v", path, err)
		}
	}
}
