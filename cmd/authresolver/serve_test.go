package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"github.com/authresolver/authresolver/internal/syncbuf"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/authresolver/authresolver/session"
)

// testServer is `authresolver serve` running in this process.
type testServer struct {
	resolve, admin string // base URLs
	grpc           string // host:port when AUTHRESOLVER_GRPC_ADDR is set
	logs           *syncbuf.Buffer
	cancel         context.CancelFunc
	done           chan int // the exit code
}

// startServer runs serve with env (listeners on port 0) and waits until its
// listeners are up.
func startServer(t *testing.T, env map[string]string) *testServer {
	t.Helper()
	full := map[string]string{
		"AUTHRESOLVER_LISTEN_ADDR": "127.0.0.1:0",
		"AUTHRESOLVER_ADMIN_ADDR":  "127.0.0.1:0",
		"AUTHRESOLVER_LOG_FORMAT":  "json",
	}
	for k, v := range env {
		full[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &testServer{logs: &syncbuf.Buffer{}, cancel: cancel, done: make(chan int, 1)}
	go func() { s.done <- run(ctx, []string{"serve"}, full, io.Discard, s.logs) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(20 * time.Second):
			t.Error("server did not stop")
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for s.resolve == "" || s.admin == "" || (full["AUTHRESOLVER_GRPC_ADDR"] != "" && s.grpc == "") {
		if time.Now().After(deadline) {
			t.Fatalf("server did not start; log:\n%s", s.logs.String())
		}
		select {
		case code := <-s.done:
			t.Fatalf("server exited with %d; log:\n%s", code, s.logs.String())
		case <-time.After(10 * time.Millisecond):
		}
		sc := bufio.NewScanner(strings.NewReader(s.logs.String()))
		for sc.Scan() {
			var line struct{ Msg, Listener, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
				switch line.Listener {
				case "resolve":
					s.resolve = "http://" + line.Addr
				case "admin":
					s.admin = "http://" + line.Addr
				case "grpc":
					s.grpc = line.Addr
				}
			}
		}
	}
	return s
}

func newRequest(t *testing.T, method, url string, hdr map[string]string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return req
}

func do(t *testing.T, req *http.Request) int {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func get(t *testing.T, url string, hdr map[string]string) (int, http.Header, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(newRequest(t, "GET", url, hdr))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body)
}

// waitFor polls cond every 20ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// jwksServer serves a JWKS for key, or 503 while down is set.
func jwksServer(t *testing.T, key *ecdsa.PrivateKey, down *atomic.Bool) *httptest.Server {
	t.Helper()
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := writeJWKS(path, &key.PublicKey); err != nil {
		t.Fatal(err)
	}
	body, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestServeReadinessAndShutdown(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	var down atomic.Bool
	down.Store(true)
	idp := jwksServer(t, key, &down)
	s := startServer(t, map[string]string{
		"AUTHRESOLVER_JWT_ISSUER":       devIssuer,
		"AUTHRESOLVER_JWT_JWKS_URL":     idp.URL,
		"AUTHRESOLVER_JWKS_MIN_REFRESH": "1s",
		"AUTHRESOLVER_SHUTDOWN_DELAY":   "500ms",
	})

	// The IdP is down: the process runs, /healthz is fine, /readyz says why not.
	for _, base := range []string{s.resolve, s.admin} {
		if code, _, _ := get(t, base+"/healthz", nil); code != 200 {
			t.Errorf("%s/healthz = %d, want 200", base, code)
		}
		if code, _, body := get(t, base+"/readyz", nil); code != 503 || !strings.Contains(body, "no JWKS loaded") {
			t.Errorf("%s/readyz = %d %q, want 503 no JWKS loaded", base, code, body)
		}
	}
	token, err := devToken(key, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if code, h, _ := get(t, s.resolve+"/resolve", map[string]string{"Authorization": "Bearer " + token}); code != 503 || h.Get("Retry-After") == "" {
		t.Errorf("resolve without keys = %d (Retry-After %q), want 503 with Retry-After", code, h.Get("Retry-After"))
	}

	down.Store(false)
	waitFor(t, 15*time.Second, "/readyz 200 after the IdP is back", func() bool {
		code, _, _ := get(t, s.resolve+"/readyz", nil)
		return code == 200
	})
	if code, h, _ := get(t, s.resolve+"/resolve", map[string]string{"Authorization": "Bearer " + token}); code != 200 || h.Get("X-Auth-User-Id") != devUser {
		t.Errorf("resolve = %d user %q, want 200 %s", code, h.Get("X-Auth-User-Id"), devUser)
	}
	if code, _, body := get(t, s.admin+"/metrics", nil); code != 200 || !strings.Contains(body, `authresolver_decisions_total{outcome="allow",reason=""}`) {
		t.Errorf("/metrics = %d, lacks the allow counter", code)
	}

	// healthcheck subcommand, against this server and against nothing.
	addr := strings.TrimPrefix(s.resolve, "http://")
	if code := run(context.Background(), []string{"healthcheck"}, map[string]string{"AUTHRESOLVER_LISTEN_ADDR": addr}, io.Discard, io.Discard); code != 0 {
		t.Errorf("healthcheck = %d, want 0", code)
	}
	if code := run(context.Background(), []string{"healthcheck"}, map[string]string{"AUTHRESOLVER_LISTEN_ADDR": "127.0.0.1:1"}, io.Discard, io.Discard); code != 1 {
		t.Errorf("healthcheck of nothing = %d, want 1", code)
	}

	// SIGTERM: readiness goes 503 during the delay while requests are still
	// answered, then the process exits 0.
	s.cancel()
	waitFor(t, 2*time.Second, "/readyz 503 while draining", func() bool {
		code, _, body := get(t, s.resolve+"/readyz", nil)
		return code == 503 && strings.Contains(body, "shutting down")
	})
	if code, _, _ := get(t, s.resolve+"/resolve", map[string]string{"Authorization": "Bearer " + token}); code != 200 {
		t.Errorf("resolve while draining = %d, want 200", code)
	}
	select {
	case code := <-s.done:
		if code != 0 {
			t.Errorf("exit code = %d, want 0; log:\n%s", code, s.logs.String())
		}
		s.done <- code
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop after cancel")
	}
}

func TestServeLogsNoCredentials(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	var down atomic.Bool
	idp := jwksServer(t, key, &down)
	s := startServer(t, map[string]string{
		"AUTHRESOLVER_JWT_ISSUER":   devIssuer,
		"AUTHRESOLVER_JWT_JWKS_URL": idp.URL,
		"AUTHRESOLVER_ADMIN_TOKEN":  "admin-secret-token",
		"AUTHRESOLVER_LOG_LEVEL":    "debug",
	})
	waitFor(t, 10*time.Second, "ready", func() bool { c, _, _ := get(t, s.resolve+"/readyz", nil); return c == 200 })
	token, _ := devToken(key, time.Now())
	expired, _ := devToken(key, time.Now().Add(-3*time.Hour))
	secrets := []string{token, expired, string(session.NewID()), "admin-secret-token"}
	for _, hdr := range []map[string]string{
		{"Authorization": "Bearer " + token},
		{"Authorization": "Bearer " + expired},
		{"Authorization": "Bearer " + token[:len(token)-4] + "AAAA"},
		{"Cookie": "session=" + secrets[2]},
	} {
		get(t, s.resolve+"/resolve", hdr)
	}
	get(t, s.admin+"/v1/sessions", map[string]string{"Authorization": "Bearer wrong"})
	logs := s.logs.String()
	if !strings.Contains(logs, `"reason":"token_expired"`) || !strings.Contains(logs, `"reason":"session_not_found"`) {
		t.Errorf("denials are not logged with their reason:\n%s", logs)
	}
	for _, secret := range secrets {
		if strings.Contains(logs, secret) || strings.Contains(logs, secret[:16]) {
			t.Errorf("the log contains a credential")
		}
	}
}

// TestServeGRPC: with AUTHRESOLVER_GRPC_ADDR the gRPC listener answers
// Check like /resolve, its health follows /readyz (NOT_SERVING while
// draining, Checks still answered) and it stops with the HTTP listeners.
func TestServeGRPC(t *testing.T) {
	s := startServer(t, map[string]string{
		"AUTHRESOLVER_GRPC_ADDR":      "127.0.0.1:0",
		"AUTHRESOLVER_SHUTDOWN_DELAY": "500ms",
	})
	conn, err := grpc.NewClient("passthrough:///"+s.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	auth, health := authv3.NewAuthorizationClient(conn), healthpb.NewHealthClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	serving := func() healthpb.HealthCheckResponse_ServingStatus {
		resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: "envoy.service.auth.v3.Authorization"})
		if err != nil {
			t.Fatalf("health: %v", err)
		}
		return resp.GetStatus()
	}
	checkCode := func(ext map[string]string) int32 {
		resp, err := auth.Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Request:           &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: "/"}},
			ContextExtensions: ext,
		}})
		if err != nil {
			t.Fatalf("Check: %v", err)
		}
		return resp.GetStatus().GetCode()
	}

	if got := serving(); got != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health = %v, want SERVING", got)
	}
	if got := checkCode(nil); got != int32(codes.Unauthenticated) {
		t.Errorf("Check without credential = code %d, want UNAUTHENTICATED", got)
	}
	if got := checkCode(map[string]string{"optional": "true"}); got != int32(codes.OK) {
		t.Errorf("Check with optional=true = code %d, want OK", got)
	}

	s.cancel()
	waitFor(t, 2*time.Second, "gRPC health NOT_SERVING while draining", func() bool {
		return serving() == healthpb.HealthCheckResponse_NOT_SERVING
	})
	if got := checkCode(nil); got != int32(codes.Unauthenticated) {
		t.Errorf("Check while draining = code %d, want UNAUTHENTICATED", got)
	}
	select {
	case code := <-s.done:
		if code != 0 {
			t.Errorf("exit code = %d, want 0; log:\n%s", code, s.logs.String())
		}
		s.done <- code
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop after cancel")
	}
}
