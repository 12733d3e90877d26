package main

import (
	"fmt"
	"strings"
	"time"
)

// revStats summarises the revocations made within [from, to).
type revStats struct {
	made, failed, skipped, notWarm int
	denial                         summary
	undenied                       int
	probes, wrongProbes, late      int
}

func revocationStats(revs []revocation, from, to time.Duration) revStats {
	var s revStats
	var d []time.Duration
	for _, rv := range revs {
		if rv.at < from || rv.at >= to {
			continue
		}
		switch {
		case rv.skipped != "":
			s.skipped++
			continue
		case rv.status != 204:
			s.failed++
			continue
		}
		s.made++
		if !rv.warmedOK {
			s.notWarm++
		}
		if rv.denied {
			d = append(d, rv.denial)
		} else {
			s.undenied++
		}
		for _, p := range rv.probes {
			s.probes++
			if p.wrong {
				s.wrongProbes++
			}
			if p.late {
				s.late++
			}
		}
	}
	s.denial = summarize(d)
	return s
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond))
}

func secs(d time.Duration) string {
	return fmt.Sprintf("%.1f s", d.Seconds())
}

// markdown is the scenario's section of the report.
func (a *analysis) markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("### Scenario %d: %s\n\n", a.sc.id, a.sc.name)
	verdict := "PASS"
	for _, c := range a.checks {
		if !c.ok {
			verdict = "FAIL"
		}
	}
	p("**%s**. Load %d req/s open loop through NGINX (%d connections opened as needed, at most %d); a revocation every %v through one replica's admin API, probed on the other; CACHE_TTL=%v, REVOCATION_CHECK_FAILURE=%s.\n\n",
		verdict, a.cfg.rate, a.conns, a.cfg.conns, a.cfg.revokeEvery, a.cfg.cacheTTL, a.cfg.revocationFailure)
	if a.cfg.introspection {
		p("Opaque tokens (introspected at the IdP) are part of the mix.\n\n")
	} else {
		p("No opaque tokens: this cmd/authresolver has no AUTHRESOLVER_INTROSPECTION_URL, so the load is JWTs and sessions only.\n\n")
	}
	p("| phase | window | requests | 200 | 401/403 | 5xx | other | client error | wrong | late allows | p50 ms | p99 ms | max ms | p99 / max ms from send |\n")
	p("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, ph := range a.phases {
		c := a.counts[ph.name]
		n := 0
		for _, v := range c {
			n += v
		}
		l := a.lat[ph.name]
		ls := a.latSent[ph.name]
		p("| %s | %s–%s | %d | %d | %d | %d | %d | %d | %d | %d | %s | %s | %s | %s / %s |\n", ph.name,
			secs(ph.from-a.marks["baseline"]), secs(ph.to-a.marks["baseline"]), n,
			c[outAllow], c[outDeny], c[outUnavailable], c[outOther], c[outClientError],
			a.wrong[ph.name], a.late[ph.name], ms(l.p50), ms(l.p99), ms(l.max), ms(ls.p99), ms(ls.max))
	}
	p("\nLatency counts from each request's scheduled send time (no coordinated omission); the last column counts from the moment it was written to its connection, leaving out the load generator's own delays (its schedule slip p99 was %s ms). \"5xx\" is NGINX's 500 for an auth subrequest the resolver answered 503 (or could not be reached); wrong answers and late allows include the revocation probes.\n\n", ms(a.lagP99))
	if a.hasFault {
		p("Recovery after the fault healed: first correct answer after **%s ms**", ms(a.rec.firstCorrect))
		if !a.rec.ok {
			p(" (none)")
		}
		p("; every answer correct from %s ms; p99 back within 1.5× the baseline p99 (%s ms) ", ms(a.rec.allClear), ms(a.baseP99))
		if a.rec.p99Back < 0 {
			p("**not within the run**.\n\n")
		} else {
			p("after %s (first clean 1 s window).\n\n", secs(a.rec.p99Back))
		}
	}
	p("| revocations | made | failed calls | skipped | not cached on the other replica first | other replica: first denial p50 / p99 / max ms | never denied | probes | wrong | late allows |\n")
	p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, ph := range a.phases {
		s := revocationStats(a.revs, ph.from, ph.to)
		p("| %s | %d | %d | %d | %d | %s / %s / %s | %d | %d | %d | %d |\n", ph.name, s.made, s.failed, s.skipped, s.notWarm,
			ms(s.denial.p50), ms(s.denial.p99), ms(s.denial.max), s.undenied, s.probes, s.wrongProbes, s.late)
	}
	p("\nRevocation-to-denial is measured from the moment the revocation call returned to the first 401 from the other replica, probed back to back on a direct connection.\n\n")
	p("| by credential | 200 | 401/403 | 5xx | other | client error | wrong |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for k := range numKinds {
		c := a.byKind[k]
		if c == [numOutcomes]int{} {
			continue
		}
		p("| %s | %d | %d | %d | %d | %d | %d |\n", kindNames[k], c[outAllow], c[outDeny], c[outUnavailable], c[outOther], c[outClientError], a.wrongKinds[k])
	}
	p("\n")
	for i, g := range a.goroutines {
		p("- replica %c: goroutines %0.f at baseline", 'A'+i, g[0])
		if a.hasFault {
			p(", %0.f at most during the fault", g[1])
		}
		p(", %0.f at the end; log lines %d (WARN %d, ERROR %d)", g[2], a.logs[i].lines, a.logs[i].warn, a.logs[i].errors)
		if a.logs[i].errors > 0 {
			p("; ERROR messages: %s", topMsgs(a.logs[i].errorMsgs, 4))
		}
		if a.logs[i].warn > 0 {
			p("; WARN messages: %s", topMsgs(a.logs[i].warnMsgs, 4))
		}
		p("\n")
	}
	if a.hasFault {
		p("- harness in-flight requests at most: baseline %d, fault %d, after %d\n", a.maxIn["baseline"], a.maxIn["fault"], a.maxIn["after"])
	} else {
		p("- harness in-flight requests at most: %d\n", a.maxIn["run"])
	}
	for _, l := range a.lines {
		p("- %s\n", l)
	}
	p("\nChecks:\n\n")
	for _, c := range a.checks {
		mark := "x"
		if !c.ok {
			mark = " "
		}
		p("- [%s] %s: %s\n", mark, c.what, c.detail)
	}
	p("\n")
	return b.String()
}

// passed reports whether every check held.
func (a *analysis) passed() bool {
	for _, c := range a.checks {
		if !c.ok {
			return false
		}
	}
	return true
}
