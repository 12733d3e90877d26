package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authresolver/authresolver/internal/redistest"
	"github.com/authresolver/authresolver/jwks/jwkstest"
)

// These tests run two replicas (`authresolver serve` in this process) on one
// real redis-server and check SPEC §4: once a revocation call has returned
// on one replica, the other stops granting the credential, at once while
// the invalidation channel is up and within the L1 TTL when it is lost.

const (
	replicaIssuer     = "https://issuer.replicas.test"
	replicaAdminToken = "replica-admin-token"
	// propagationBound is how soon after a revocation call returns the other
	// replica must deny once its subscription is back (issue 4).
	propagationBound = 100 * time.Millisecond
)

// cluster is an identity provider, one redis-server and replicas sharing it.
type cluster struct {
	t        *testing.T
	key      *jwkstest.Key
	redis    *redistest.Server
	replicas []*testServer
	// unconfirmed lets a revocation answer 503 invalidation_failed: a
	// replica whose subscription was just cut may not confirm it.
	unconfirmed bool
}

// startCluster starts n replicas with the extra env (e.g. CACHE_TTL) and
// waits until each is ready and subscribed to invalidations, so that what
// they cache from then on is covered by the bus.
func startCluster(t *testing.T, n int, env map[string]string) *cluster {
	t.Helper()
	c := &cluster{t: t, key: jwkstest.NewKey("ES256", "k1"), redis: redistest.Start(t)}
	idp := jwkstest.NewServer(c.key)
	t.Cleanup(idp.Close)
	full := map[string]string{
		"AUTHRESOLVER_REDIS_URL":    c.redis.URL(),
		"AUTHRESOLVER_ADMIN_TOKEN":  replicaAdminToken,
		"AUTHRESOLVER_JWT_ISSUER":   replicaIssuer,
		"AUTHRESOLVER_JWT_JWKS_URL": idp.URL(),
	}
	for k, v := range env {
		full[k] = v
	}
	for range n {
		c.replicas = append(c.replicas, startServer(t, full))
	}
	for i, s := range c.replicas {
		waitFor(t, 10*time.Second, fmt.Sprintf("replica %d ready", i), func() bool {
			code, _, _ := get(t, s.resolve+"/readyz", nil)
			return code == http.StatusOK
		})
		c.waitSubscribed(s, true)
	}
	return c
}

func (c *cluster) waitSubscribed(s *testServer, up bool) {
	c.t.Helper()
	want := 0.0
	if up {
		want = 1
	}
	waitFor(c.t, 10*time.Second, fmt.Sprintf("authresolver_cache_subscription_up %v", want), func() bool {
		v, ok := metric(c.t, s, "authresolver_cache_subscription_up")
		return ok && v == want
	})
}

// token mints a one-hour token for user, issued a few seconds ago so that a
// per-user revocation "before now" covers it whatever the rounding.
func (c *cluster) token(user string) (tok, jti string) {
	claims := jwkstest.Claims(replicaIssuer, user, time.Hour)
	claims["iat"] = time.Now().Add(-5 * time.Second).Unix()
	return c.key.Mint(claims), claims["jti"].(string)
}

// session creates a session for user through s's admin API.
func (c *cluster) session(s *testServer, user string) (id string) {
	c.t.Helper()
	code, body := adminCall(c.t, s, http.MethodPost, "/v1/sessions", fmt.Sprintf(`{"user_id":%q}`, user))
	if code != http.StatusCreated {
		c.t.Fatalf("POST /v1/sessions = %d %s", code, body)
	}
	var created struct {
		SessionID string `json:"session_id"`
	}
	if err := json.Unmarshal(body, &created); err != nil || created.SessionID == "" {
		c.t.Fatalf("POST /v1/sessions: %s (%v)", body, err)
	}
	return created.SessionID
}

func bearerHeader(tok string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + tok}
}

func cookieHeader(id string) map[string]string {
	return map[string]string{"Cookie": "session=" + id}
}

// resolveStatus asks s's /resolve about a credential.
func resolveStatus(t *testing.T, s *testServer, hdr map[string]string) int {
	t.Helper()
	code, _, _ := get(t, s.resolve+"/resolve", hdr)
	return code
}

func adminCall(t *testing.T, s *testServer, method, path, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.admin+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+replicaAdminToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.Bytes()
}

// metric returns the value of one series on s's /metrics, written as in the
// exposition format (labels sorted), e.g.
// `authresolver_cache_requests_total{result="hit",tier="l1"}`.
func metric(t *testing.T, s *testServer, series string) (float64, bool) {
	t.Helper()
	code, _, body := get(t, s.admin+"/metrics", nil)
	if code != http.StatusOK {
		t.Fatalf("/metrics = %d", code)
	}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if ok && name == series {
			v, err := strconv.ParseFloat(value, 64)
			if err != nil {
				t.Fatalf("/metrics: %q: %v", sc.Text(), err)
			}
			return v, true
		}
	}
	return 0, false
}

const l1Hits = `authresolver_cache_requests_total{result="hit",tier="l1"}`

// warm makes every replica cache hdr's credential, and proves each answers
// it from L1: the second request raises the replica's L1 hit count.
func (c *cluster) warm(hdr map[string]string) {
	c.t.Helper()
	for i, s := range c.replicas {
		if code := resolveStatus(c.t, s, hdr); code != http.StatusOK {
			c.t.Fatalf("replica %d: resolve = %d, want 200", i, code)
		}
		before, _ := metric(c.t, s, l1Hits)
		if code := resolveStatus(c.t, s, hdr); code != http.StatusOK {
			c.t.Fatalf("replica %d: resolve = %d, want 200", i, code)
		}
		if after, _ := metric(c.t, s, l1Hits); after != before+1 {
			c.t.Fatalf("replica %d: L1 hits %v → %v: the credential is not served from L1", i, before, after)
		}
	}
}

// untilDenied polls s with hdr as fast as it answers until it denies with
// 401, and returns how long that took; it fails the test after timeout.
func untilDenied(t *testing.T, s *testServer, hdr map[string]string, timeout time.Duration) (time.Duration, int) {
	t.Helper()
	start := time.Now()
	polls := 0
	for {
		polls++
		code := resolveStatus(t, s, hdr)
		elapsed := time.Since(start)
		switch {
		case code == http.StatusUnauthorized:
			return elapsed, polls
		case code != http.StatusOK:
			t.Fatalf("resolve = %d after %v, want 200 until denied, then 401", code, elapsed)
		case elapsed > timeout:
			t.Fatalf("still granted %v after the revocation returned (%d polls)", elapsed, polls)
		}
	}
}

// revocation is one kind of admin revocation and the credential it kills.
type revocation struct {
	name   string
	setup  func(c *cluster) (hdr map[string]string, revoke func())
	expect string // X-Auth-Error on the revoked credential
}

func revocations() []revocation {
	return []revocation{
		{"session", func(c *cluster) (map[string]string, func()) {
			id := c.session(c.replicas[0], "user-session")
			return cookieHeader(id), func() { c.revoke(http.MethodDelete, "/v1/sessions/"+id, "") }
		}, "session_not_found"},
		{"user sessions", func(c *cluster) (map[string]string, func()) {
			id := c.session(c.replicas[1], "user-all-sessions")
			return cookieHeader(id), func() { c.revoke(http.MethodDelete, "/v1/users/user-all-sessions/sessions", "") }
		}, "session_not_found"},
		{"jti", func(c *cluster) (map[string]string, func()) {
			tok, jti := c.token("user-jti")
			return bearerHeader(tok), func() { c.revoke(http.MethodPost, "/v1/revocations", fmt.Sprintf(`{"jti":%q}`, jti)) }
		}, "token_revoked"},
		{"user tokens", func(c *cluster) (map[string]string, func()) {
			tok, _ := c.token("user-all-tokens")
			return bearerHeader(tok), func() { c.revoke(http.MethodPost, "/v1/revocations", `{"user_id":"user-all-tokens"}`) }
		}, "token_revoked"},
	}
}

// revoke calls replica 0's admin API and expects 204 (or, with
// c.unconfirmed, 503 invalidation_failed: stored but not confirmed).
func (c *cluster) revoke(method, path, body string) {
	c.t.Helper()
	code, b := adminCall(c.t, c.replicas[0], method, path, body)
	if c.unconfirmed && code == http.StatusServiceUnavailable && strings.Contains(string(b), "invalidation_failed") {
		return
	}
	if code != http.StatusNoContent {
		c.t.Fatalf("%s %s = %d %s, want 204", method, path, code, b)
	}
}

func checkDenial(t *testing.T, s *testServer, hdr map[string]string, want string) {
	t.Helper()
	code, h, _ := get(t, s.resolve+"/resolve", hdr)
	if code != http.StatusUnauthorized || h.Get("X-Auth-Error") != want {
		t.Errorf("revoked credential: %d %s, want 401 %s", code, h.Get("X-Auth-Error"), want)
	}
}

// TestReplicasRevokeAtOnce: with a 30 s cache TTL, only the invalidation can
// make replica B deny a credential it has cached, and it must within 100 ms
// of the revocation call returning on replica A.
func TestReplicasRevokeAtOnce(t *testing.T) {
	c := startCluster(t, 2, map[string]string{"AUTHRESOLVER_CACHE_TTL": "30s"})
	a, b := c.replicas[0], c.replicas[1]
	for _, rv := range revocations() {
		t.Run(rv.name, func(t *testing.T) {
			c.t = t
			hdr, revoke := rv.setup(c)
			c.warm(hdr)
			received, _ := metric(t, b, "authresolver_cache_invalidations_received_total")

			revoke()
			if code := resolveStatus(t, a, hdr); code != http.StatusUnauthorized {
				t.Errorf("replica A (revoking) right after the call: %d, want 401", code)
			}
			// The call returns once every replica confirmed: B denies at
			// its first request after it, not "soon".
			took, polls := untilDenied(t, b, hdr, 2*time.Second)
			if polls != 1 {
				t.Errorf("replica B granted %d times in %v after the revocation returned, want 0", polls-1, took)
			}
			checkDenial(t, b, hdr, rv.expect)
			if got, _ := metric(t, b, "authresolver_cache_invalidations_received_total"); got < received+1 {
				t.Errorf("replica B received %v invalidations, want at least %v", got, received+1)
			}
		})
	}
}

// TestReplicasRevokeWithoutBus: the pub/sub connections are killed right
// before the revocation, so replica B may miss the message. It must still
// stop granting within the L1 TTL, and the bus must come back.
func TestReplicasRevokeWithoutBus(t *testing.T) {
	const ttl = 2 * time.Second
	c := startCluster(t, 2, map[string]string{"AUTHRESOLVER_CACHE_TTL": ttl.String()})
	b := c.replicas[1]
	for _, rv := range revocations() {
		t.Run(rv.name, func(t *testing.T) {
			c.t = t
			for _, s := range c.replicas {
				c.waitSubscribed(s, true)
			}
			hdr, revoke := rv.setup(c)
			c.warm(hdr)

			killed, err := redistest.Do(c.redis.Addr(), "CLIENT", "KILL", "TYPE", "pubsub")
			if err != nil || killed != strconv.Itoa(len(c.replicas)) {
				t.Fatalf("CLIENT KILL TYPE pubsub = %q, %v; want %d killed", killed, err, len(c.replicas))
			}
			c.unconfirmed = true
			revoke()
			c.unconfirmed = false
			took, polls := untilDenied(t, b, hdr, ttl+2*time.Second)
			t.Logf("%s, pub/sub killed: replica B denied %v after the revocation returned (%d polls; L1 TTL %v)", rv.name, took, polls, ttl)
			if bound := ttl + 500*time.Millisecond; took > bound {
				t.Errorf("replica B denied after %v, want within the L1 TTL (%v + slack)", took, ttl)
			}
			checkDenial(t, b, hdr, rv.expect)
		})
	}

	// The subscription comes back, and with it revocation at once.
	t.Run("resubscribed", func(t *testing.T) {
		c.t = t
		for _, s := range c.replicas {
			c.waitSubscribed(s, true)
		}
		rv := revocations()[0]
		hdr, revoke := rv.setup(c)
		c.warm(hdr)
		revoke()
		took, _ := untilDenied(t, b, hdr, ttl+time.Second)
		t.Logf("after resubscribing: replica B denied %v after the revocation returned", took)
		if took > propagationBound {
			t.Errorf("replica B denied after %v, want within %v once resubscribed", took, propagationBound)
		}
	})
}

// TestRedisUnavailable: with Redis gone, sessions answer 503; JWTs are still
// verified locally (a bad one is a 401), and a good one gets 503 when the
// revocation check fails closed, 200 (counted) when it fails open.
func TestRedisUnavailable(t *testing.T) {
	for _, mode := range []string{"closed", "open"} {
		t.Run(mode, func(t *testing.T) {
			c := startCluster(t, 1, map[string]string{
				"AUTHRESOLVER_CACHE_TTL":                "30s",
				"AUTHRESOLVER_REVOCATION_CHECK_FAILURE": mode,
			})
			s := c.replicas[0]
			tok, _ := c.token("user-outage")
			sess := cookieHeader(c.session(s, "user-outage"))
			c.warm(bearerHeader(tok))
			c.warm(sess)
			other := jwkstest.NewKey("ES256", "k1") // same kid, wrong key
			forged := other.Mint(jwkstest.Claims(replicaIssuer, "user-outage", time.Hour))
			expired := c.key.Mint(jwkstest.Claims(replicaIssuer, "user-outage", -time.Hour))

			c.redis.Stop()
			// The bus notices and turns L1 off: nothing cached before the
			// outage is answered from memory.
			c.waitSubscribed(s, false)
			if code, _, body := get(t, s.resolve+"/readyz", nil); code != http.StatusServiceUnavailable {
				t.Errorf("/readyz with Redis down = %d %s, want 503", code, body)
			}

			code, h, _ := get(t, s.resolve+"/resolve", sess)
			if code != http.StatusServiceUnavailable || h.Get("Retry-After") == "" {
				t.Errorf("session with Redis down: %d (Retry-After %q), want 503 with Retry-After", code, h.Get("Retry-After"))
			}
			for name, bad := range map[string]string{"forged": forged, "expired": expired} {
				if code := resolveStatus(t, s, bearerHeader(bad)); code != http.StatusUnauthorized {
					t.Errorf("%s token with Redis down: %d, want 401 (verified locally)", name, code)
				}
			}
			failures := fmt.Sprintf(`authresolver_revocation_check_failures_total{mode=%q}`, mode)
			before, _ := metric(t, s, failures)
			want := map[string]int{"closed": http.StatusServiceUnavailable, "open": http.StatusOK}[mode]
			for range 2 { // a fail-open answer is not cached: each request counts
				code, h, _ := get(t, s.resolve+"/resolve", bearerHeader(tok))
				if code != want {
					t.Errorf("valid token with Redis down, %s: %d, want %d", mode, code, want)
				}
				if code == http.StatusOK && h.Get("X-Auth-User-Id") != "user-outage" {
					t.Errorf("fail-open answer: X-Auth-User-Id %q", h.Get("X-Auth-User-Id"))
				}
			}
			if after, _ := metric(t, s, failures); after != before+2 {
				t.Errorf("%s = %v → %v, want +2", failures, before, after)
			}
			if logs := s.logs.String(); mode == "open" && !strings.Contains(logs, "fail open") {
				t.Errorf("fail-open allow is not logged")
			}

			// Redis is back (empty): JWTs are allowed again and the bus resubscribes.
			c.redis.Restart()
			c.waitSubscribed(s, true)
			waitFor(t, 5*time.Second, "token allowed after Redis is back", func() bool {
				return resolveStatus(t, s, bearerHeader(tok)) == http.StatusOK
			})
			// Sessions work again without restarting authresolver (the
			// restarted Redis is empty, so a new one is made).
			if code := resolveStatus(t, s, cookieHeader(c.session(s, "user-outage"))); code != http.StatusOK {
				t.Errorf("new session after Redis is back: %d, want 200", code)
			}
		})
	}
}
