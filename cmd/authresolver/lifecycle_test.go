package main

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/authresolver/authresolver/internal/redistest"
)

// TestShutdownKeepsCachesWhileDraining: after the signal, during
// SHUTDOWN_DELAY, the server answers as before: the invalidation bus is
// still subscribed, cached decisions come from L1 (not Redis), and a
// revocation still takes effect at once. Background work stops only after
// the listeners.
func TestShutdownKeepsCachesWhileDraining(t *testing.T) {
	c := startCluster(t, 1, map[string]string{
		"AUTHRESOLVER_CACHE_TTL":      "30s",
		"AUTHRESOLVER_SHUTDOWN_DELAY": "2s",
	})
	s := c.replicas[0]
	tok, jti := c.token("user-drain")
	hdr := bearerHeader(tok)
	c.warm(hdr)

	s.cancel() // the signal
	waitFor(t, 2*time.Second, "/readyz 503 while draining", func() bool {
		code, _, body := get(t, s.resolve+"/readyz", nil)
		return code == http.StatusServiceUnavailable && strings.Contains(body, "shutting down")
	})
	for i := range 3 {
		if up, _ := metric(t, s, "authresolver_cache_subscription_up"); up != 1 {
			t.Fatalf("check %d while draining: authresolver_cache_subscription_up = %v, want 1", i, up)
		}
		before, _ := metric(t, s, l1Hits)
		if code := resolveStatus(t, s, hdr); code != http.StatusOK {
			t.Fatalf("check %d while draining: resolve = %d, want 200", i, code)
		}
		if after, _ := metric(t, s, l1Hits); after != before+1 {
			t.Fatalf("check %d while draining: L1 hits %v → %v: not served from L1", i, before, after)
		}
	}
	c.revoke(http.MethodPost, "/v1/revocations", `{"jti":"`+jti+`"}`)
	checkDenial(t, s, hdr, "token_revoked")

	select {
	case code := <-s.done:
		if code != 0 {
			t.Errorf("exit code = %d, want 0", code)
		}
		s.done <- code
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop")
	}
	logs := s.logs.String()
	down := strings.Index(logs, "invalidation subscription down")
	if shutting := strings.Index(logs, `"shutting down"`); down < 0 || shutting < 0 || down < shutting {
		t.Errorf("the bus did not stop after the shutdown began:\n%s", logs)
	}
}

// TestStartupPingsRedis: start-up pings Redis and logs the answer; a Redis
// that does not answer does not stop start-up, /readyz says so.
func TestStartupPingsRedis(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	s := startServer(t, map[string]string{"AUTHRESOLVER_REDIS_URL": "redis://" + closed})
	if logs := s.logs.String(); !strings.Contains(logs, `"msg":"redis does not answer: /readyz answers 503 until it does","error":`) {
		t.Errorf("no warning with \"error\" for a Redis that does not answer:\n%s", logs)
	}
	if code, _, body := get(t, s.resolve+"/readyz", nil); code != http.StatusServiceUnavailable || !strings.Contains(body, "session store unreachable") {
		t.Errorf("/readyz = %d %s, want 503 session store unreachable", code, body)
	}

	up := redistest.Start(t)
	s = startServer(t, map[string]string{"AUTHRESOLVER_REDIS_URL": up.URL()})
	if logs := s.logs.String(); !strings.Contains(logs, `"msg":"redis answers"`) {
		t.Errorf("no log line for a Redis that answers:\n%s", logs)
	}
}
