package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/authresolver/authresolver/internal/proc"
)

// check sends one request of s and looks at the whole answer: 200, and for
// the resolver the identity headers an allow must carry.
func check(s *scenario) error {
	resp, err := sendOnce(s.addr, s.next(nil, 0))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %s", resp.Status)
	}
	n := 0
	for k := range resp.Header {
		if strings.HasPrefix(k, "X-Auth-") {
			n++
		}
	}
	switch s.id {
	case "1", "2", "2i", "2o", "3", "3n", "3m", "4", "5":
		if n < 10 || resp.Header.Get("X-Auth-User-Id") == "" {
			return fmt.Errorf("%d X-Auth-* headers, want 10: %v", n, resp.Header)
		}
	case "6a", "6c":
		// The same server must deny a request without credential, or
		// auth_request is not in the path at all.
		resp, err := sendOnce(s.addr, request(nil, "/", "X-Bench: no-credential"))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != 401 {
			return fmt.Errorf("without a credential: status %s, want 401", resp.Status)
		}
	}
	return nil
}

func sendOnce(addr string, req []byte) (*http.Response, error) {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write(req); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	return resp, nil
}

// percentile returns the p-th percentile of lat, sorting it in place.
func percentile(lat []time.Duration, p float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	if !slices.IsSorted(lat) {
		slices.Sort(lat)
	}
	i := int(float64(len(lat))*p/100+0.5) - 1
	return lat[min(max(i, 0), len(lat)-1)]
}

type machine struct {
	cpus    int
	model   string
	kernel  string
	goVer   string
	nginx   string
	redis   string
	commit  string
	dirty   string // directories with uncommitted changes
	loadavg string
}

func describeMachine(repo string) machine {
	m := machine{cpus: runtime.NumCPU(), goVer: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.model = strings.TrimSpace(v)
				break
			}
		}
	}
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	m.kernel = strings.TrimSpace(string(b))
	b, _ = os.ReadFile("/proc/loadavg")
	m.loadavg = strings.Join(strings.Fields(string(b))[:min(3, len(strings.Fields(string(b))))], " ")
	out := func(dir, name string, args ...string) string {
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		b, _ := cmd.CombinedOutput()
		return strings.TrimSpace(string(b))
	}
	m.nginx = strings.TrimPrefix(out(repo, "nginx", "-v"), "nginx version: ")
	m.redis = out(repo, "redis-server", "--version")
	if i := strings.Index(m.redis, " v="); i >= 0 {
		m.redis = strings.Fields(m.redis[i+3:])[0]
	}
	m.commit = out(repo, "git", "describe", "--always", "--dirty")
	seen := map[string]bool{}
	var dirs []string
	for line := range strings.Lines(out(repo, "git", "status", "--porcelain")) {
		if len(line) < 4 {
			continue
		}
		d, _, _ := strings.Cut(strings.TrimSpace(line[3:]), "/")
		if !seen[d] {
			seen[d] = true
			dirs = append(dirs, d)
		}
	}
	m.dirty = strings.Join(dirs, ", ")
	return m
}

type report struct {
	cfg        config
	machine    machine
	scenarios  []*scenario
	rss        rssResult
	verifyCPU  time.Duration
	verifyWall time.Duration
	took       time.Duration
}

func (s *scenario) rps() float64 {
	if s.res.elapsed == 0 {
		return 0
	}
	return float64(s.res.requests) / s.res.elapsed.Seconds()
}

// cpuPerReq is the CPU time of s's processes per request.
func (s *scenario) cpuPerReq() time.Duration {
	if s.res.requests == 0 {
		return 0
	}
	return time.Duration(float64(s.cpu) / proc.TicksPerSecond * 1e9 / float64(s.res.requests))
}

func (s *scenario) redisPerReq() time.Duration {
	if s.res.requests == 0 {
		return 0
	}
	return time.Duration(float64(s.redis) / proc.TicksPerSecond * 1e9 / float64(s.res.requests))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()*1000) }

// perK writes a CPU time per request as seconds per 1,000 requests.
func perK(d time.Duration) string { return fmt.Sprintf("%.4f", d.Seconds()*1000) }

func mib(b int64) string { return fmt.Sprintf("%.1f", float64(b)/(1<<20)) }

func (r *report) find(id string) *scenario {
	for _, s := range r.scenarios {
		if s.id == id {
			return s
		}
	}
	return nil
}

func (r *report) markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	m, c := r.machine, r.cfg
	p("## Results\n\n")
	p("- Command: `go run ./bench %s` (from the repository root; `make bench` runs `go run ./bench`)\n", strings.Join(os.Args[1:], " "))
	p("- Machine: %d CPUs, %s; Linux %s; %s; nginx %s; redis %s; load average at start %s\n",
		m.cpus, m.model, m.kernel, m.goVer, m.nginx, m.redis, m.loadavg)
	p("- Code: %s", m.commit)
	if m.dirty != "" {
		p(" (uncommitted changes in: %s)", m.dirty)
	}
	p("; run took %v\n", r.took.Round(time.Second))
	p("- Load: %d rounds × %v per scenario, interleaved (rotating order), after %v warm-up each; closed loop over %d keep-alive connections; open loop %d req/s over up to %d connections; the Go load generator shares the cores\n",
		c.rounds, c.duration, c.warmup, c.conns, c.rate, c.openConns)
	p("- Raw P-256 verify (ecdsa.VerifyASN1): %v CPU, %v wall per verification\n\n", r.verifyCPU.Round(10*time.Nanosecond), r.verifyWall.Round(10*time.Nanosecond))

	p("| # | scenario | req/s | req/s per round (min–max) | p50 ms | p99 ms | p99.9 ms | CPU s / 1k req | redis-server CPU s / 1k req | Redis cmds / req | peak RSS MiB | ratio | errors |\n")
	p("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range r.scenarios {
		if s.open {
			continue
		}
		ratio := "—"
		if base := r.find(s.baseline); base != nil && base.rps() > 0 {
			ratio = fmt.Sprintf("%.2fx %s", s.rps()/base.rps(), s.baseline)
		}
		lo, hi := slices.Min(s.rounds), slices.Max(s.rounds)
		p("| %s | %s | %.0f | %.0f–%.0f | %s | %s | %s | %s | %s | %.2f | %s | %s | %d |\n",
			s.id, s.name, s.rps(), lo, hi,
			ms(percentile(s.res.lat, 50)), ms(percentile(s.res.lat, 99)), ms(percentile(s.res.lat, 99.9)),
			perK(s.cpuPerReq()), perK(s.redisPerReq()), float64(s.redisOp)/float64(max(s.res.requests, 1)),
			mib(s.rss), ratio, s.res.errors)
	}
	p("\nCPU and peak RSS are those of the processes under test: the ceiling (1), the scenario's own resolver instance (2–5, 3n, 3m), NGINX master and workers + upstream + resolver (6p, 6a, 6c). Peak RSS is VmHWM at the end of the run (summed for 6). Redis commands per request leave out the harness's own INFO polling. Rows in parentheses have no target; they show where the time goes.\n")
	for _, s := range r.scenarios {
		if len(s.procs) < 2 || s.res.requests == 0 {
			continue
		}
		var parts []string
		for i, pr := range s.procs {
			per := time.Duration(float64(s.procCPU[i]) / proc.TicksPerSecond * 1e9 / float64(s.res.requests))
			parts = append(parts, fmt.Sprintf("%s %s", pr.Name, perK(per)))
		}
		p("\nCPU s / 1k req of %s by process: %s.\n", s.id, strings.Join(parts, ", "))
	}
	if o := r.find("2o"); o != nil {
		p("\n**Open loop** (%s): offered %d req/s, achieved %.0f req/s; latency from the scheduled send time: p50 %s ms, p99 %s ms, p99.9 %s ms, max %s ms; the generator's own schedule slip p99 %s ms, and p99 from the actual send (not the target's measure) %s ms; CPU %s s / 1k req; errors %d.\n",
			o.name, c.rate, o.rps(),
			ms(percentile(o.res.lat, 50)), ms(percentile(o.res.lat, 99)), ms(percentile(o.res.lat, 99.9)),
			ms(percentile(o.res.lat, 100)), ms(percentile(o.res.lag, 99)), ms(percentile(o.res.sent, 99)), perK(o.cpuPerReq()), o.res.errors)
	}
	for _, s := range r.scenarios {
		if s.note != "" {
			p("\nNote on %s: %s\n", s.id, s.note)
		}
		if s.res.firstErr != nil {
			p("\nFirst error in %s: %v\n", s.id, s.res.firstErr)
		}
	}
	rs := r.rss
	p("\n**Memory**: a resolver with CACHE_TTL=1h after %d distinct tokens (each verified once, %v): %.0f live cached decisions (`authresolver_cache_entries`), VmRSS %s MiB (idle before: %s MiB), VmHWM %s MiB; errors %d.\n",
		rs.entries, rs.warmedFor.Round(100*time.Millisecond), rs.cached, mib(rs.rss), mib(rs.idleRSS), mib(rs.hwm), rs.errors)

	p("\n### Targets (issue 6)\n\n| target | measured | limit | result |\n|---|---|---|---|\n")
	verdict := func(ok bool) string {
		if ok {
			return "PASS"
		}
		return "**FAIL**"
	}
	row := func(name string, ids []string, measured func() (string, bool), limit string) {
		for _, id := range ids {
			if r.find(id) == nil {
				p("| %s | not run | %s | n/a |\n", name, limit)
				return
			}
		}
		v, ok := measured()
		p("| %s | %s | %s | %s |\n", name, v, limit, verdict(ok))
	}
	ratio := func(id, base string, floor float64) func() (string, bool) {
		return func() (string, bool) {
			x := r.find(id).rps() / r.find(base).rps()
			return fmt.Sprintf("%.2fx", x), x >= floor
		}
	}
	row("(2) JWT L1 hit req/s vs ceiling", []string{"1", "2"}, ratio("2", "1", 0.70), "≥ 0.70x")
	row("(2) JWT L1 hit p99 vs ceiling p99", []string{"1", "2"}, func() (string, bool) {
		a, b := percentile(r.find("2").res.lat, 99), percentile(r.find("1").res.lat, 99)
		x := float64(a) / float64(b)
		return fmt.Sprintf("%s ms / %s ms = %.2fx", ms(a), ms(b), x), x <= 1.5
	}, "≤ 1.5x")
	row("(issue 11) introspected token L1 hit req/s vs ceiling", []string{"1", "2i"}, ratio("2i", "1", 0.70), "≥ 0.70x")
	row(fmt.Sprintf("(2) open loop %d req/s p99", c.rate), []string{"2o"}, func() (string, bool) {
		o := r.find("2o")
		p99 := percentile(o.res.lat, 99)
		return ms(p99) + " ms", p99 <= time.Millisecond && o.res.errors == 0
	}, "≤ 1 ms")
	row("(3) CPU per new-token request", []string{"1", "3"}, func() (string, bool) {
		got := r.find("3").cpuPerReq()
		limit := time.Duration(1.3 * float64(r.verifyCPU+r.find("1").cpuPerReq()))
		return fmt.Sprintf("%v (limit 1.3 × (%v verify + %v ceiling) = %v)", got.Round(100*time.Nanosecond),
			r.verifyCPU.Round(100*time.Nanosecond), r.find("1").cpuPerReq().Round(100*time.Nanosecond), limit.Round(100*time.Nanosecond)), got <= limit
	}, "≤ 1.3x (verify + ceiling)")
	row("(4) session L1 hit req/s vs ceiling", []string{"1", "4"}, ratio("4", "1", 0.65), "≥ 0.65x")
	row("(5) session, L1 off, req/s vs ceiling", []string{"1", "5"}, ratio("5", "1", 0.35), "≥ 0.35x")
	row("(6) NGINX auth_request vs plain NGINX", []string{"6p", "6a"}, ratio("6a", "6p", 0.50), "≥ 0.50x")
	ok := rs.rss <= 100<<20 && rs.cached >= float64(rs.entries) && rs.errors == 0
	p("| RSS with %d cached decisions | %s MiB (%.0f entries) | ≤ 100 MiB | %s |\n", rs.entries, mib(rs.rss), rs.cached, verdict(ok))
	p("\nOther processes were free to run on the machine; compare scenarios within one run, not across runs.\n")
	return b.String()
}
