package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/authresolver/authresolver/internal/loadgen"
	"github.com/authresolver/authresolver/internal/proc"
)

// revocation is one revocation made through one replica's admin API and
// probed on the other replica directly.
type revocation struct {
	at       time.Duration // call made (offset from the load's start)
	call     time.Duration // how long the call took
	status   int           // 204, or what it answered (0: no answer)
	jwt      bool
	denial   time.Duration // call returned → first denial on the other replica
	denied   bool
	probes   []result
	skipped  string // why it was not made (a replica down)
	warmedOK bool   // the other replica allowed it before the revocation
}

// revoker makes a revocation every interval until ctx is done.
type revoker struct {
	w        *world
	l        *load
	interval time.Duration

	mu   sync.Mutex
	revs []revocation
}

func (rv *revoker) run(ctx context.Context) {
	t := time.NewTicker(rv.interval)
	defer t.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r := rv.once(ctx, n)
		rv.mu.Lock()
		rv.revs = append(rv.revs, r)
		rv.mu.Unlock()
	}
}

func (rv *revoker) all() []revocation {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return append([]revocation(nil), rv.revs...)
}

var adminClient = &http.Client{Timeout: 5 * time.Second}

// once revokes one new credential through replica A (B when A is down) and
// probes it on the other replica: warmed there first, so that the
// revocation must reach that replica's in-process cache.
func (rv *revoker) once(ctx context.Context, n int) revocation {
	c := rv.w.c
	via, other := c.replicas[0].current(), c.replicas[1].current()
	if n%4 >= 2 { // alternate the direction too
		via, other = other, via
	}
	rev := revocation{at: time.Since(rv.l.start), jwt: n%2 == 0}
	if via == nil || other == nil {
		rev.skipped = "a replica is restarting"
		return rev
	}
	user := fmt.Sprintf("rev-%d", n)
	cr := &cred{kind: kindRevoked, user: user, jwt: rev.jwt}
	var do func() (*http.Request, error)
	if rev.jwt {
		jti := "rev-jti-" + user
		cr.header = "Authorization: Bearer " + c.iss.Token(user, jti, time.Now())
		do = func() (*http.Request, error) {
			return http.NewRequestWithContext(ctx, "POST", "http://"+via.Admin+"/v1/revocations",
				strings.NewReader(fmt.Sprintf(`{"jti":%q}`, jti)))
		}
	} else {
		id, err := proc.CreateSession(via, c.adminToken, user)
		if err != nil {
			rev.skipped = "session not created: " + err.Error()
			return rev
		}
		cr.header = "Cookie: session=" + id
		do = func() (*http.Request, error) {
			return http.NewRequestWithContext(ctx, "DELETE", "http://"+via.Admin+"/v1/sessions/"+url.PathEscape(id), nil)
		}
	}
	probe := &loadgen.Client{Addr: other.Addr, Capture: []byte("x-auth-user-id:"), Timeout: 5 * time.Second}
	defer probe.Close()
	req := request(nil, "/resolve", cr.header)
	status, _, _ := probe.RoundTrip(req)
	rev.warmedOK = status == 200

	hreq, err := do()
	if err != nil {
		rev.skipped = err.Error()
		return rev
	}
	hreq.Header.Set("Authorization", "Bearer "+c.adminToken)
	hreq.Header.Set("Content-Type", "application/json")
	start := time.Now()
	rv.w.mu.Lock()
	cr.t.revokeStart = start
	rv.w.mu.Unlock()
	resp, err := adminClient.Do(hreq)
	returned := time.Now()
	rev.call = returned.Sub(start)
	if err == nil {
		rev.status = resp.StatusCode
		resp.Body.Close()
	}
	if rev.status != http.StatusNoContent {
		// Not revoked as far as the caller knows: nothing to hold the
		// replicas to (a request may see either answer from now on).
		return rev
	}
	rv.w.mu.Lock()
	cr.t.revokedAt = returned
	grace := max(rv.w.grace, rv.w.propagation)
	rv.w.revoked = append(rv.w.revoked, cr)
	rv.w.mu.Unlock()

	// Probe back to back until the first denial, then a few more; give up
	// after the grace plus two seconds.
	deadline := returned.Add(grace + 2*time.Second)
	after := 0
	for time.Now().Before(deadline) && after < 5 && ctx.Err() == nil {
		sent := time.Now()
		status, gotUser, err := probe.RoundTrip(req)
		done := time.Now()
		res := result{due: sent.Sub(rv.l.start), sent: sent.Sub(rv.l.start), done: done.Sub(rv.l.start)}
		rv.w.judge(cr, &res, sent, status, gotUser, err)
		res.kind = kindProbe
		rev.probes = append(rev.probes, res)
		if res.outcome == outDeny && !rev.denied {
			rev.denied, rev.denial = true, done.Sub(returned)
		}
		if rev.denied {
			after++
		}
		if err != nil {
			time.Sleep(10 * time.Millisecond) // the replica is not answering: do not spin
		}
	}
	return rev
}
