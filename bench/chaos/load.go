package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authresolver/authresolver/internal/loadgen"
	"github.com/authresolver/authresolver/internal/proc"
)

// kind is what a request carries.
type kind uint8

const (
	kindHotJWT     kind = iota // one of a few tokens, cached after the first use
	kindFreshJWT               // a token never seen: full verification and revocation check
	kindSession                // a live session cookie
	kindInvalid                // bad signature, garbage, or an unknown session
	kindRevoked                // a credential revoked earlier in the run
	kindLost                   // a session lost with Redis's data
	kindUnknownKid             // signed by a key the IdP does not publish (refetch bait)
	kindRotated                // signed by the key rotated in after the IdP fault
	kindOpaque                 // an opaque token, introspected at the IdP (when the binary supports it)
	kindProbe                  // the revocation probes on the other replica, sent directly
	numKinds
)

var kindNames = [numKinds]string{"cached JWT", "new JWT", "session", "invalid", "revoked", "lost session", "unknown kid", "rotated key", "opaque token", "revocation probe"}

// cred is a credential and the truth about it.
type cred struct {
	kind   kind
	header string // the request header line that carries it
	user   string // the user an allow must name ("" for invalid ones)
	jwt    bool   // a token (else a session cookie)
	t      truth  // guarded by world.mu
}

// world is the harness's model of every credential in play.
type world struct {
	c *cluster

	mu       sync.RWMutex
	hot      []*cred
	sessions []*cred
	invalid  []*cred
	revoked  []*cred
	lost     []*cred
	unknown  []*cred
	rotated  []*cred
	opaque   []*cred
	grace    time.Duration // allowed stale grants after a revocation (scenario 3)
	// propagation is an allowance for the pub/sub delivery delay after a
	// revocation returned (-propagation; 0 holds the replicas to SPEC §4).
	propagation time.Duration
	mix         []kind // the schedule's kinds, repeated

	fresh atomic.Int64
}

// defaultMix: per 20 requests, 7 cached JWTs, 5 new JWTs, 5 sessions, one
// invalid, one revoked and one lost session (each falling back to a cached
// JWT while there are none).
var defaultMix = []kind{
	kindHotJWT, kindFreshJWT, kindSession, kindHotJWT, kindFreshJWT,
	kindSession, kindHotJWT, kindInvalid, kindFreshJWT, kindSession,
	kindHotJWT, kindRevoked, kindFreshJWT, kindSession, kindHotJWT,
	kindLost, kindFreshJWT, kindSession, kindHotJWT, kindHotJWT,
}

func newWorld(c *cluster) (*world, error) {
	w := &world{c: c, mix: defaultMix}
	now := time.Now()
	for i := range 32 {
		user := fmt.Sprintf("hot-%d", i)
		w.hot = append(w.hot, &cred{kind: kindHotJWT, user: user,
			header: "Authorization: Bearer " + c.iss.Token(user, "jti-"+user, now)})
	}
	if err := w.newSessions(32); err != nil {
		return nil, err
	}
	tok := c.iss.Token("forged", "jti-forged", now)
	sig := tok[strings.LastIndexByte(tok, '.')+1:]
	flipped := tok[:len(tok)-len(sig)] + string(sig[0]^1) + sig[1:] // still base64url
	w.invalid = []*cred{
		{kind: kindInvalid, header: "Authorization: Bearer " + flipped, t: truth{invalid: true}},
		{kind: kindInvalid, header: "Authorization: Bearer not-a-jwt", t: truth{invalid: true}},
		{kind: kindInvalid, header: "Cookie: session=" + rand.Text() + rand.Text(), t: truth{invalid: true}},
	}
	for i := range 8 {
		user := fmt.Sprintf("unknown-%d", i)
		w.unknown = append(w.unknown, &cred{kind: kindUnknownKid, header: "Authorization: Bearer " +
			c.iss.TokenKid(fmt.Sprintf("unknown-kid-%d", i), user, "jti-"+user, now), t: truth{invalid: true}})
	}
	if c.introspection {
		for i := range 16 {
			user := fmt.Sprintf("opaque-%d", i)
			tok := rand.Text() + rand.Text() // no dots: not a JWS
			c.idp.addOpaque(tok, user)
			w.opaque = append(w.opaque, &cred{kind: kindOpaque, user: user, header: "Authorization: Bearer " + tok})
		}
		w.mix = withOpaque(w.mix)
	}
	return w, nil
}

// withOpaque turns the last cached-JWT slot of mix into an opaque token.
func withOpaque(mix []kind) []kind {
	out := append([]kind(nil), mix...)
	for i := len(out) - 1; i >= 0; i-- {
		if out[i] == kindHotJWT {
			out[i] = kindOpaque
			break
		}
	}
	return out
}

// newSessions creates n sessions through replica A and makes them the live
// ones; the previous live sessions are left to the caller (lost ones).
func (w *world) newSessions(n int) error {
	var fresh []*cred
	for i := range n {
		user := fmt.Sprintf("session-%d-%d", time.Now().UnixNano(), i)
		r := w.c.replicas[0].current()
		if r == nil {
			r = w.c.replicas[1].current()
		}
		id, err := proc.CreateSession(r, w.c.adminToken, user)
		if err != nil {
			return err
		}
		fresh = append(fresh, &cred{kind: kindSession, user: user, header: "Cookie: session=" + id})
	}
	w.mu.Lock()
	w.sessions = fresh
	w.mu.Unlock()
	return nil
}

// loseRedisData records that Redis lost its data at t (killed, to come
// back empty): the live sessions are lost, and so are the revocations of
// tokens.
func (w *world) loseRedisData(t time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.sessions {
		c.kind = kindLost
		c.t.lostAt = t
	}
	w.lost = append(w.lost, w.sessions...)
	w.sessions = nil
	for _, c := range w.revoked {
		if c.jwt && c.t.unrevokedAt.IsZero() {
			c.t.unrevokedAt = t
		}
	}
}

// sessionsGone records that the new Redis answered at t: lost sessions must
// be denied from then on.
func (w *world) sessionsGone(t time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.lost {
		if c.t.lostFinal.IsZero() {
			c.t.lostFinal = t
		}
	}
}

// pick returns the credential of the i-th request.
func (w *world) pick(i int) *cred {
	k := w.mix[i%len(w.mix)]
	if k == kindFreshJWT {
		n := w.fresh.Add(1)
		user := fmt.Sprintf("fresh-%d", n)
		return &cred{kind: kindFreshJWT, user: user,
			header: "Authorization: Bearer " + w.c.iss.Token(user, fmt.Sprintf("jti-fresh-%d", n), time.Now())}
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	var pool []*cred
	switch k {
	case kindSession:
		pool = w.sessions
	case kindInvalid:
		pool = w.invalid
	case kindRevoked:
		pool = w.revoked
	case kindLost:
		pool = w.lost
	case kindUnknownKid:
		pool = w.unknown
	case kindRotated:
		pool = w.rotated
	case kindOpaque:
		pool = w.opaque
	}
	if len(pool) == 0 {
		pool = w.hot
	}
	return pool[(i/len(w.mix))%len(pool)]
}

// judge records one answer to c, sent at sent.
func (w *world) judge(c *cred, res *result, sent time.Time, status int, user string, err error) {
	w.mu.RLock()
	t, k := c.t, c.kind
	t.grace = max(w.grace, w.propagation)
	w.mu.RUnlock()
	res.kind = k
	res.outcome = classify(status, err)
	res.expect = t.expectation(sent)
	res.wrong = wrong(res.expect, res.outcome, user, c.user)
	res.late = res.outcome == outAllow && !res.wrong && t.late(sent)
}

// load is the open-loop load through NGINX.
type load struct {
	w        *world
	start    time.Time
	inflight atomic.Int64
	maxIn    atomic.Int64 // since the last reset

	mu      sync.Mutex
	results [][]result // per connection
	lag     []time.Duration
	conns   int // connections opened
}

// run sends rate requests a second until ctx is done. Each request goes to
// an idle connection, or to a new one while fewer than maxConns are open:
// the generator must not be what queues requests when the servers stall
// (an open loop keeps rate × latency requests in flight). Latency counts
// from each request's scheduled time.
func (l *load) run(ctx context.Context, addr string, rate, maxConns int) {
	type job struct {
		i   int
		due time.Time
	}
	jobs := make(chan job) // unbuffered: a send succeeds only to an idle connection
	var wg sync.WaitGroup
	open := 0
	worker := func(first job) {
		cl := &loadgen.Client{Addr: addr, Capture: []byte("x-seen-user:"), Timeout: 15 * time.Second}
		defer cl.Close()
		var buf []byte
		out := make([]result, 0, 1024)
		do := func(j job) {
			c := l.w.pick(j.i)
			buf = request(buf[:0], "/", c.header)
			raiseMax(&l.maxIn, l.inflight.Add(1))
			sent := time.Now()
			status, user, err := cl.RoundTrip(buf)
			done := time.Now()
			l.inflight.Add(-1)
			res := result{due: j.due.Sub(l.start), sent: sent.Sub(l.start), done: done.Sub(l.start)}
			l.w.judge(c, &res, sent, status, user, err)
			out = append(out, res)
		}
		do(first)
		for j := range jobs {
			do(j)
		}
		l.mu.Lock()
		l.results = append(l.results, out)
		l.mu.Unlock()
	}
	lag := loadgen.Pace(ctx, rate, 24*time.Hour, func(i int, due time.Time) {
		j := job{i, due}
		select {
		case jobs <- j:
			return
		default:
		}
		if open < maxConns {
			open++
			wg.Go(func() { worker(j) })
			return
		}
		jobs <- j // every connection busy: the schedule slips, and lag says so
	})
	close(jobs)
	wg.Wait()
	l.mu.Lock()
	l.lag = lag
	l.conns = open
	l.mu.Unlock()
}

// raiseMax sets m to v if v is larger.
func raiseMax(m *atomic.Int64, v int64) {
	for {
		old := m.Load()
		if v <= old || m.CompareAndSwap(old, v) {
			return
		}
	}
}

// all returns every record, after run has returned.
func (l *load) all() []result {
	var out []result
	for _, rs := range l.results {
		out = append(out, rs...)
	}
	return out
}

// request appends a GET of path with one extra header line.
func request(buf []byte, path, header string) []byte {
	buf = append(buf, "GET "...)
	buf = append(buf, path...)
	buf = append(buf, " HTTP/1.1\r\nHost: chaos.test\r\nUser-Agent: authresolver-chaos\r\nAccept: */*\r\n"...)
	buf = append(buf, header...)
	return append(buf, "\r\n\r\n"...)
}
