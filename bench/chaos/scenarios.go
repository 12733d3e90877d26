package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/authresolver/authresolver/internal/loadgen"
	"github.com/authresolver/authresolver/internal/proc"
	"github.com/authresolver/authresolver/internal/redistest"
)

func scenarios(cfg config) []scenario {
	return []scenario{
		{id: 1, name: fmt.Sprintf("Redis SIGKILLed under load, restarted empty after %v", cfg.redisDown),
			inject: injectRedisKill, check: checkRedisKill},
		{id: 2, name: fmt.Sprintf("Redis SIGSTOPped for %v, then SIGCONT (FLIGHT_TIMEOUT=%v)", cfg.stall, cfg.redisTimeout),
			env:    map[string]string{"FLIGHT_TIMEOUT": cfg.redisTimeout.String()},
			inject: injectRedisStop, check: checkRedisStop},
		{id: 3, name: fmt.Sprintf("pub/sub connections killed (CLIENT KILL TYPE pubsub) every %v for %v while revocations continue", cfg.pubsubEvery, cfg.pubsubFault),
			inject: injectPubsubKill, check: checkPubsubKill},
		{id: 4, name: fmt.Sprintf("identity provider down %v, then answering 500 for %v, then hanging for %v; a new key rotated in when it heals", cfg.idpDown, cfg.idpPhase, cfg.idpPhase),
			mix: idpMix, inject: injectIDP, check: checkIDP},
		{id: 5, name: "rolling restart: SIGTERM replica A, start it again, then replica B",
			inject: injectRoll, check: checkRoll},
		{id: 6, name: fmt.Sprintf("soak: %v of the mixed load, no fault", cfg.soak),
			inject: injectSoak, check: checkSoak, sampleEvery: cfg.soakSample},
	}
}

// replicaPIDs are the process ids of both replicas now.
func (r *scenarioRun) replicaPIDs() [2]int {
	var out [2]int
	for i, rp := range r.c.replicas {
		if p := rp.current(); p != nil {
			out[i] = p.Pid()
		}
	}
	return out
}

// --- 1: Redis SIGKILL ------------------------------------------------------

func injectRedisKill(ctx context.Context, r *scenarioRun) error {
	pids := r.replicaPIDs()
	r.addLine("replica pids before the fault: %v", pids)
	r.mark("fault")
	r.w.loseRedisData(time.Now())
	r.c.redis.Kill()
	r.mu.Lock()
	r.marks["killed"] = r.now()
	r.mu.Unlock()
	if err := sleep(ctx, r.cfg.redisDown); err != nil {
		return err
	}
	r.mu.Lock()
	r.marks["restarting"] = r.now()
	r.mu.Unlock()
	if err := r.c.redis.Restart(10 * time.Second); err != nil {
		return err
	}
	r.w.sessionsGone(time.Now())
	r.mark("heal")
	// New sessions as a login service would create them once Redis is back;
	// the replicas must accept them without a restart.
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := r.w.newSessions(32)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sessions after the restart: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.addLine("new sessions accepted by the admin API %s after Redis answered", secs(r.now()-r.marks["heal"]))
	return nil
}

func checkRedisKill(r *scenarioRun, a *analysis) {
	killed, restarting, heal := r.marks["killed"], r.marks["restarting"], r.marks["heal"]
	// REVOCATION_CHECK_FAILURE=closed: a new token cannot pass its revocation
	// check while Redis is dead.
	freshAllowed, freshDown := 0, 0
	lost401, lost503, lostLate503 := 0, 0, 0
	for _, x := range a.results {
		if x.kind == kindFreshJWT && x.sent >= killed && x.done < restarting {
			freshDown++
			if x.outcome == outAllow {
				freshAllowed++
			}
		}
		if x.kind == kindLost && x.sent >= heal {
			switch x.outcome {
			case outDeny:
				lost401++
			case outUnavailable:
				lost503++
				if x.sent >= heal+time.Second {
					lostLate503++
				}
			}
		}
	}
	if r.cfg.revocationFailure == "open" {
		r.addCheck(freshAllowed == freshDown, "new JWTs follow REVOCATION_CHECK_FAILURE=open while Redis is dead",
			"%d of %d new tokens sent while Redis was dead were allowed", freshAllowed, freshDown)
	} else {
		r.addCheck(freshAllowed == 0, "new JWTs follow REVOCATION_CHECK_FAILURE=closed while Redis is dead",
			"%d of %d new tokens sent while Redis was dead were allowed", freshAllowed, freshDown)
	}
	r.addCheck(lostLate503 == 0 && lost401 > 0, "lost sessions are 401, not 503, once Redis is back",
		"after Redis answered: %d×401, %d×5xx (%d of them sent more than 1 s after)", lost401, lost503, lostLate503)
	undone := 0
	for _, x := range a.results {
		if x.kind == kindRevoked && x.outcome == outAllow && x.expect == expectEither && !x.late && x.sent >= heal {
			undone++
		}
	}
	r.addLine("revoked tokens allowed again after Redis came back empty (their jti revocations were lost with its data; not counted as wrong): %d", undone)
	r.checkNoRestart()
	r.checkGoroutines(a)
}

// checkNoRestart: the replicas that were running before the fault are the
// ones running now.
func (r *scenarioRun) checkNoRestart() {
	ok := true
	for _, rp := range r.c.replicas {
		p := rp.current()
		ok = ok && p != nil && p.Running() && rp.starts == 1
	}
	r.addCheck(ok, "no replica restarted", "pids %v, one start each", r.replicaPIDs())
}

// checkGoroutines: at the end, the goroutines not attached to a connection
// (goroutines − open FDs) are back within 10 of the baseline. The raw count
// also follows NGINX's idle keep-alive connections, one goroutine each.
func (r *scenarioRun) checkGoroutines(a *analysis) {
	ok := true
	var parts []string
	for i, u := range a.unattached {
		ok = ok && u[1] <= u[0]+10
		g := a.goroutines[i]
		parts = append(parts, fmt.Sprintf("%c: %.0f → %.0f (goroutines %.0f → %.0f)", 'A'+i, u[0], u[1], g[0], g[2]))
	}
	r.addCheck(ok, "goroutines back to baseline (goroutines − open FDs within 10)", "%s", strings.Join(parts, ", "))
}

// --- 2: Redis SIGSTOP ------------------------------------------------------

func injectRedisStop(ctx context.Context, r *scenarioRun) error {
	r.mark("fault")
	if err := r.c.redis.Signal(syscall.SIGSTOP); err != nil {
		return err
	}
	direct := r.directFresh(ctx, r.cfg.stall)
	err := sleep(ctx, r.cfg.stall)
	if err2 := r.c.redis.Signal(syscall.SIGCONT); err2 != nil && err == nil {
		err = err2
	}
	r.mark("heal")
	d := <-direct
	r.direct = d
	r.addLine("new JWTs sent straight to replica B during the stall (4 sequential clients, no NGINX): %d, %d answered 503, latency p50 %s / p99 %s / max %s ms",
		d.n, d.unavailable, ms(d.lat.p50), ms(d.lat.p99), ms(d.lat.max))
	return err
}

// directResult is what directFresh measured.
type directResult struct {
	n, unavailable int
	lat            summary
}

// directFresh sends new tokens straight to replica B from 4 clients, one
// after the other, for d: the resolver's own latency during a fault, without
// NGINX and without the load generator's queueing.
func (r *scenarioRun) directFresh(ctx context.Context, d time.Duration) <-chan directResult {
	out := make(chan directResult, 1)
	go func() {
		end := time.Now().Add(d)
		var mu sync.Mutex
		var res directResult
		var lat []time.Duration
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				p := r.c.replicas[1].current()
				if p == nil {
					return
				}
				cl := &loadgen.Client{Addr: p.Addr, Timeout: 15 * time.Second}
				defer cl.Close()
				for n := 0; time.Now().Before(end) && ctx.Err() == nil; n++ {
					user := fmt.Sprintf("direct-%d-%d", w, n)
					req := request(nil, "/resolve", "Authorization: Bearer "+r.c.iss.Token(user, "jti-"+user, time.Now()))
					t0 := time.Now()
					status, _, err := cl.RoundTrip(req)
					took := time.Since(t0)
					mu.Lock()
					res.n++
					if err != nil || status == 503 {
						res.unavailable++
					}
					lat = append(lat, took)
					mu.Unlock()
					time.Sleep(20 * time.Millisecond)
				}
			})
		}
		wg.Wait()
		res.lat = summarize(lat)
		out <- res
	}()
	return out
}

func checkRedisStop(r *scenarioRun, a *analysis) {
	bound := r.cfg.redisTimeout + 100*time.Millisecond
	l, ls := a.lat["fault"], a.latSent["fault"]
	d := r.direct
	r.addCheck(d.n > 0 && d.lat.max <= bound, "the resolver itself answers within the configured timeout + 100 ms during the stall",
		"new JWTs straight to replica B: %d, max %s ms, bound %s ms", d.n, ms(d.lat.max), ms(bound))
	r.addCheck(l.p99 <= bound, "p99 during the stall within the configured timeout + 100 ms",
		"p99 %s ms, max %s ms from the scheduled time (%s / %s ms from the send), bound %s ms (FLIGHT_TIMEOUT %v)",
		ms(l.p99), ms(l.max), ms(ls.p99), ms(ls.max), ms(bound), r.cfg.redisTimeout)
	// Little's law: what an open loop keeps in flight when every request
	// takes the bound; more would be a pile-up.
	limit := int64(float64(r.cfg.rate)*bound.Seconds()) + a.maxIn["baseline"]
	r.addCheck(a.maxIn["fault"] <= limit, "in-flight bounded during the stall",
		"harness in-flight at most %d (bound: rate × (timeout + 100 ms) + the baseline's %d = %d); replica goroutines at most %.0f / %.0f",
		a.maxIn["fault"], a.maxIn["baseline"], limit, a.goroutines[0][1], a.goroutines[1][1])
	r.checkNoRestart()
	r.checkGoroutines(a)
}

// --- 3: pub/sub connections killed -----------------------------------------

func injectPubsubKill(ctx context.Context, r *scenarioRun) error {
	r.w.mu.Lock()
	r.w.grace = r.cfg.cacheTTL
	r.w.mu.Unlock()
	r.mark("fault")
	end := time.Now().Add(r.cfg.pubsubFault)
	kills := 0
	for time.Now().Before(end) {
		reply, err := redistest.Do(r.c.redis.Addr, "CLIENT", "KILL", "TYPE", "pubsub")
		if err != nil {
			return fmt.Errorf("CLIENT KILL TYPE pubsub: %w", err)
		}
		n, _ := strconv.Atoi(reply)
		kills += n
		if err := sleep(ctx, r.cfg.pubsubEvery); err != nil {
			return err
		}
	}
	r.mark("heal")
	r.addLine("pub/sub connections killed: %d", kills)
	// The spec's grace ends one CACHE_TTL after the last kill.
	time.AfterFunc(r.cfg.cacheTTL, func() {
		r.w.mu.Lock()
		r.w.grace = 0
		r.w.mu.Unlock()
	})
	return nil
}

func checkPubsubKill(r *scenarioRun, a *analysis) {
	s := revocationStats(a.revs, r.marks["fault"], r.marks["heal"])
	r.addCheck(s.made > 0 && s.undenied == 0 && s.denial.max <= r.cfg.cacheTTL,
		"every revocation during the kills denied on the other replica within CACHE_TTL",
		"%d revocations, never denied %d, first denial p50 %s / p99 %s / max %s ms (CACHE_TTL %v), late allows %d",
		s.made, s.undenied, ms(s.denial.p50), ms(s.denial.p99), ms(s.denial.max), r.cfg.cacheTTL, s.late)
	up := 0.0
	for i := range r.c.replicas {
		_, v := r.series(i, "authresolver_cache_subscription_up", r.marks["end"]-3*time.Second, r.marks["end"]+time.Second)
		if len(v) > 0 {
			up += v[len(v)-1]
		}
	}
	r.addCheck(up == 2, "both replicas subscribed again", "authresolver_cache_subscription_up sums to %.0f at the end", up)
	r.checkNoRestart()
	r.checkGoroutines(a)
}

// --- 4: identity provider down, failing, hanging --------------------------

// idpMix replaces the lost-session slot with a token signed by an unknown
// key (refetch bait) and one cached-JWT slot with the rotated key (a cached
// JWT until the rotation).
var idpMix = []kind{
	kindHotJWT, kindFreshJWT, kindSession, kindHotJWT, kindFreshJWT,
	kindSession, kindRotated, kindInvalid, kindFreshJWT, kindSession,
	kindHotJWT, kindRevoked, kindFreshJWT, kindSession, kindHotJWT,
	kindUnknownKid, kindFreshJWT, kindSession, kindHotJWT, kindRotated,
}

func fetches(r *scenarioRun) [2]float64 {
	var out [2]float64
	for i, rp := range r.c.replicas {
		if p := rp.current(); p != nil {
			m, _ := proc.Metrics(p)
			out[i] = proc.Sum(m, "authresolver_jwks_refresh_total")
		}
	}
	return out
}

func injectIDP(ctx context.Context, r *scenarioRun) error {
	before := fetches(r)
	r.mark("fault")
	steps := []struct {
		mode idpMode
		d    time.Duration
	}{{idpDown, r.cfg.idpDown}, {idp500, r.cfg.idpPhase}, {idpHang, r.cfg.idpPhase}}
	for _, s := range steps {
		if err := r.c.idp.setMode(s.mode); err != nil {
			return err
		}
		r.mu.Lock()
		r.marks["idp "+idpModeNames[s.mode]] = r.now()
		r.mu.Unlock()
		if err := sleep(ctx, s.d); err != nil {
			return err
		}
	}
	after := fetches(r)
	// Heal with a rotated key set: the old key and a new one.
	both := mergeJWKS(r.c.iss.JWKS(), r.c.rotated.JWKS())
	r.c.idp.setJWKS(both)
	if err := r.c.idp.setMode(idpUp); err != nil {
		return err
	}
	r.mark("heal")
	healedAt := time.Now()
	validFrom := healedAt.Add(r.cfg.cooldown + r.cfg.cacheTTL + time.Second)
	var rot []*cred
	for i := range 8 {
		user := fmt.Sprintf("rotated-%d", i)
		rot = append(rot, &cred{kind: kindRotated, user: user, t: truth{validFrom: validFrom},
			header: "Authorization: Bearer " + r.c.rotated.Token(user, "jti-"+user, healedAt)})
	}
	r.w.mu.Lock()
	r.w.rotated = rot
	r.w.mu.Unlock()
	counts := r.c.idp.requests()
	r.mu.Lock()
	r.fetches = [2]float64{after[0] - before[0], after[1] - before[1]}
	r.mu.Unlock()
	r.addLine("requests that reached the IdP during the fault: %d while answering 500, %d while hanging (refused connections never reach it)",
		counts[idp500], counts[idpHang])
	r.addLine("JWKS fetches the replicas attempted during the fault (authresolver_jwks_refresh_total): A %.0f, B %.0f", after[0]-before[0], after[1]-before[1])
	return nil
}

// mergeJWKS returns one key set with the keys of both.
func mergeJWKS(a, b []byte) []byte {
	var ka, kb struct {
		Keys []json.RawMessage `json:"keys"`
	}
	_ = json.Unmarshal(a, &ka) // both come from mint.Issuer.JWKS
	_ = json.Unmarshal(b, &kb)
	out, _ := json.Marshal(struct {
		Keys []json.RawMessage `json:"keys"`
	}{append(ka.Keys, kb.Keys...)})
	return out
}

func checkIDP(r *scenarioRun, a *analysis) {
	fault, heal := r.marks["fault"], r.marks["heal"]
	freshBad := 0
	freshN := 0
	rotatedOK := time.Duration(-1)
	for _, x := range a.results {
		if x.kind == kindFreshJWT && x.due >= fault && x.due < heal {
			freshN++
			if x.outcome != outAllow {
				freshBad++
			}
		}
		if x.kind == kindRotated && x.sent >= heal && x.outcome == outAllow && (rotatedOK < 0 || x.done-heal < rotatedOK) {
			rotatedOK = x.done - heal
		}
	}
	r.addCheck(freshBad == 0, "cached keys keep verifying",
		"%d of %d new tokens (known key) sent during the fault were not allowed", freshBad, freshN)
	d := heal - fault
	// Per replica: one forced refetch per cooldown, background refreshes at
	// most once per JWKS_MIN_REFRESH (1 m by default), one in flight at the
	// start of each IdP mode.
	bound := float64(d/r.cfg.cooldown) + float64(d/time.Minute) + 3
	fa, fb := r.fetches[0], r.fetches[1]
	r.addCheck(fa <= bound && fb <= bound, "refetches bounded by the cooldown",
		"%.0f and %.0f fetches in %v, bound %.0f per replica (fault / JWKS_REFETCH_COOLDOWN %v + fault / 1 m + 3)", fa, fb, d.Round(time.Second), bound, r.cfg.cooldown)
	ready, notReady := 0, 0
	r.mu.Lock()
	for _, s := range r.samples {
		if s.at >= fault && s.at < heal {
			if s.ready == 200 {
				ready++
			} else {
				notReady++
			}
		}
	}
	r.mu.Unlock()
	// Honest: the replicas kept verifying with the cached keys, so they were
	// able to serve, and /readyz must say so (and did not lie the other way:
	// freshBad above is 0 exactly when serving held).
	r.addCheck(notReady == 0 && freshBad == 0, "/readyz honest: ready while the cached keys serve",
		"/readyz during the fault: %d×200, %d×not ready", ready, notReady)
	limit := r.cfg.cooldown + r.cfg.cacheTTL + time.Second
	r.addCheck(rotatedOK >= 0 && rotatedOK <= limit, "recovery without restart: the rotated-in key verifies",
		"first allow of a token signed by the new key %s ms after the IdP healed (bound JWKS_REFETCH_COOLDOWN + CACHE_TTL + 1 s = %v)", ms(rotatedOK), limit)
	r.checkNoRestart()
	r.checkGoroutines(a)
}

// --- 5: rolling restart ----------------------------------------------------

func injectRoll(ctx context.Context, r *scenarioRun) error {
	r.mark("fault")
	for i, rp := range r.c.replicas {
		t0 := time.Now()
		rp.stop(r.cfg.shutdownDelay + 20*time.Second)
		stopped := time.Since(t0)
		if err := rp.start(r.c); err != nil {
			return err
		}
		r.addLine("replica %c: SIGTERM → exited in %s (SHUTDOWN_DELAY %v), ready again %s later", 'A'+i, secs(stopped), r.cfg.shutdownDelay, secs(time.Since(t0)-stopped))
		// Longer than the upstream's fail_timeout (2 s), so that NGINX has
		// the restarted replica back before the other one goes.
		if err := sleep(ctx, r.cfg.rollPause); err != nil {
			return err
		}
	}
	r.mark("heal")
	return nil
}

func checkRoll(r *scenarioRun, a *analysis) {
	c := a.counts["whole run"]
	failed := c[outUnavailable] + c[outOther] + c[outClientError]
	r.addCheck(failed == 0, "zero failed client requests across the roll",
		"%d requests: %d×5xx, %d other, %d client errors", c[outAllow]+c[outDeny]+failed, c[outUnavailable], c[outOther], c[outClientError])
}

// --- 6: soak -------------------------------------------------------------

func injectSoak(ctx context.Context, r *scenarioRun) error {
	return sleep(ctx, r.cfg.soak)
}

func checkSoak(r *scenarioRun, a *analysis) {
	base, end := r.marks["baseline"], r.marks["end"]
	from := end - r.cfg.soakWindow
	if from < base {
		from = base
	}
	for i := range r.c.replicas {
		for _, m := range []struct{ name, label, unit string }{
			{"process_resident_memory_bytes", "RSS", "MiB"},
			{"go_memstats_heap_inuse_bytes", "heap in use", "MiB"},
			{"go_goroutines", "goroutines", ""},
			{"process_open_fds", "open FDs", ""},
		} {
			t, v := r.series(i, m.name, from, end+time.Second)
			scale := 1.0
			if m.unit == "MiB" {
				scale = 1 << 20
			}
			for j := range v {
				v[j] /= scale
			}
			b, mean, resid := slope(t, v)
			span := end - from
			r.addCheck(len(v) >= 3 && flat(b, mean, resid, span), fmt.Sprintf("replica %c %s flat", 'A'+i, m.label),
				"%d samples over the last %v: mean %.1f %s, slope %+.3f %s/min (drift %+.2f over the window), residual sd %.2f",
				len(v), span.Round(time.Second), mean, m.unit, b*60, m.unit, b*span.Seconds(), resid)
		}
	}
	for i := range r.c.replicas {
		_, first := r.series(i, "authresolver_cache_entries", from, end+time.Second)
		if len(first) > 0 {
			r.addLine("replica %c: decisions in the in-process cache (authresolver_cache_entries) %.0f at the start of the window, %.0f at the end",
				'A'+i, first[0], first[len(first)-1])
		}
	}
	errs := a.logs[0].errors + a.logs[1].errors
	r.addCheck(errs == 0, "no error lines in the replicas' logs", "%d ERROR lines", errs)
}
