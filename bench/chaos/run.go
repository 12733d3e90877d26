package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/authresolver/authresolver/internal/proc"
)

// scenario is one fault schedule.
type scenario struct {
	id   int
	name string
	env  map[string]string // extra replica settings
	mix  []kind            // nil: defaultMix
	// inject runs after the baseline and returns once the fault has healed;
	// it marks "fault" and "heal".
	inject func(ctx context.Context, r *scenarioRun) error
	// check adds the scenario's own checks and lines.
	check       func(r *scenarioRun, a *analysis)
	sampleEvery time.Duration
}

// scenarioRun is one scenario in progress.
type scenarioRun struct {
	cfg config
	sc  scenario
	c   *cluster
	w   *world
	l   *load
	rv  *revoker

	mu      sync.Mutex
	marks   map[string]time.Duration
	samples []metricSample
	lines   []string // scenario-specific facts for the report
	checks  []check
	maxIn   map[string]int64 // harness in-flight maximum per phase
	fetches [2]float64       // JWKS fetches per replica during the fault (scenario 4)
	direct  directResult     // scenario 2: straight to a replica during the stall
	every   time.Duration    // metrics sampling interval
}

type check struct {
	ok     bool
	what   string
	detail string
}

// metricSample is one reading of a replica's /metrics and /readyz.
type metricSample struct {
	at      time.Duration
	replica int
	values  map[string]float64
	ready   int // /readyz status, 0 if no answer
}

func (r *scenarioRun) now() time.Duration { return time.Since(r.l.start) }

func (r *scenarioRun) mark(name string) {
	r.mu.Lock()
	r.marks[name] = r.now()
	r.mu.Unlock()
	// The harness's own in-flight maximum, per phase.
	prev := r.l.maxIn.Swap(r.l.inflight.Load())
	r.mu.Lock()
	switch name {
	case "fault":
		r.maxIn["baseline"] = prev
	case "heal":
		r.maxIn["fault"] = prev
	case "end":
		r.maxIn[map[bool]string{true: "after", false: "run"}[r.marks["fault"] > 0]] = prev
	}
	r.mu.Unlock()
}

func (r *scenarioRun) addLine(format string, args ...any) {
	r.mu.Lock()
	r.lines = append(r.lines, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

func (r *scenarioRun) addCheck(ok bool, what, format string, args ...any) {
	r.mu.Lock()
	r.checks = append(r.checks, check{ok: ok, what: what, detail: fmt.Sprintf(format, args...)})
	r.mu.Unlock()
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// runScenario starts a fresh cluster, runs the load, the revocations and
// the fault, stops everything and returns the analysis.
func runScenario(ctx context.Context, cfg config, sc scenario) (*analysis, error) {
	c, err := startCluster(cfg, sc.env)
	if err != nil {
		return nil, fmt.Errorf("scenario %d: start: %w", sc.id, err)
	}
	defer c.stop()
	w, err := newWorld(c)
	if err != nil {
		return nil, fmt.Errorf("scenario %d: %w", sc.id, err)
	}
	if sc.mix != nil {
		w.mix = sc.mix
		if c.introspection {
			w.mix = withOpaque(w.mix)
		}
	}
	w.propagation = cfg.propagation
	r := &scenarioRun{cfg: cfg, sc: sc, c: c, w: w, marks: map[string]time.Duration{}, maxIn: map[string]int64{}}
	r.l = &load{w: w, start: time.Now()}
	r.rv = &revoker{w: w, l: r.l, interval: cfg.revokeEvery}
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var wg sync.WaitGroup
	wg.Go(func() { r.l.run(loadCtx, c.front, cfg.rate, cfg.conns) })
	wg.Go(func() { r.rv.run(loadCtx) })
	every := sc.sampleEvery
	if every == 0 {
		every = 500 * time.Millisecond
	}
	r.every = every
	wg.Go(func() { r.sample(loadCtx, every) })

	injectErr := func() error {
		if err := sleep(ctx, cfg.warmup); err != nil {
			return err
		}
		r.mark("baseline")
		if err := sleep(ctx, cfg.baseline); err != nil {
			return err
		}
		if err := sc.inject(ctx, r); err != nil {
			return err
		}
		return sleep(ctx, cfg.after)
	}()
	r.mark("end")
	stopLoad()
	wg.Wait()
	if injectErr != nil {
		return nil, fmt.Errorf("scenario %d: %w", sc.id, injectErr)
	}
	a := r.analyze()
	if sc.check != nil {
		sc.check(r, a)
	}
	a.lines, a.checks = r.lines, r.checks
	if cfg.dump != "" {
		if err := a.dump(cfg.dump); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// sample reads both replicas' metrics and readiness every interval.
func (r *scenarioRun) sample(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	hc := &http.Client{Timeout: time.Second}
	for {
		for i, rp := range r.c.replicas {
			p := rp.current()
			if p == nil {
				continue
			}
			s := metricSample{at: r.now(), replica: i}
			s.values, _ = proc.Metrics(p)
			if resp, err := hc.Get("http://" + p.Admin + "/readyz"); err == nil {
				s.ready = resp.StatusCode
				resp.Body.Close()
			}
			r.mu.Lock()
			r.samples = append(r.samples, s)
			r.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// series returns (time, value) of metric name on replica i within [from, to).
func (r *scenarioRun) series(i int, name string, from, to time.Duration) ([]time.Duration, []float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ts []time.Duration
	var vs []float64
	for _, s := range r.samples {
		if s.replica != i || s.at < from || s.at >= to || s.values == nil {
			continue
		}
		if v, ok := s.values[name]; ok {
			ts, vs = append(ts, s.at), append(vs, v)
		} else if v := proc.Sum(s.values, name); v != 0 {
			ts, vs = append(ts, s.at), append(vs, v)
		}
	}
	return ts, vs
}

// unattached returns, per sample of replica i within [from, to), its
// goroutines minus its open file descriptors: every connection (from NGINX,
// to Redis) costs one descriptor and at most one goroutine, so this stays
// put while idle keep-alive connections come and go, and grows with
// goroutines that are stuck or leaked.
func (r *scenarioRun) unattached(i int, from, to time.Duration) []float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []float64
	for _, s := range r.samples {
		if s.replica != i || s.at < from || s.at >= to || s.values == nil {
			continue
		}
		g, ok1 := s.values["go_goroutines"]
		f, ok2 := s.values["process_open_fds"]
		if ok1 && ok2 {
			out = append(out, g-f)
		}
	}
	return out
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// phase is a window of the run by the requests' scheduled time.
type phase struct {
	name     string
	from, to time.Duration
}

// analysis is what the report says about one scenario.
type analysis struct {
	sc         scenario
	cfg        config
	phases     []phase
	counts     map[string]*[numOutcomes]int
	wrong      map[string]int
	late       map[string]int
	lat        map[string]summary
	latSent    map[string]summary // from the actual send: without the generator's own delay
	baseP99    time.Duration
	rec        recovery
	hasFault   bool
	revs       []revocation
	byKind     [numKinds][numOutcomes]int
	wrongKinds [numKinds]int
	wrongTotal int
	goroutines [2][3]float64 // per replica: baseline median, fault max, last-5 s median
	unattached [2][2]float64 // per replica: goroutines − open FDs, baseline and last-5 s medians
	logs       [2]logSummary
	lagP99     time.Duration
	lines      []string
	checks     []check
	results    []result
	maxIn      map[string]int64
	marks      map[string]time.Duration
	conns      int // connections the load opened
}

func (r *scenarioRun) analyze() *analysis {
	rs := r.l.all()
	r.mu.Lock()
	marks := maps.Clone(r.marks)
	maxIn := r.maxIn
	r.mu.Unlock()
	for _, rev := range r.rv.all() {
		rs = append(rs, rev.probes...)
	}
	a := &analysis{sc: r.sc, cfg: r.cfg, counts: map[string]*[numOutcomes]int{}, wrong: map[string]int{},
		late: map[string]int{}, lat: map[string]summary{}, latSent: map[string]summary{}, revs: r.rv.all(), results: rs, maxIn: maxIn, marks: marks}
	base, fault, heal, end := marks["baseline"], marks["fault"], marks["heal"], marks["end"]
	a.hasFault = fault > 0
	if a.hasFault {
		a.phases = []phase{{"baseline", base, fault}, {"fault", fault, heal}, {"after", heal, end}}
	} else {
		a.phases = []phase{{"run", base, end}}
	}
	a.phases = append(a.phases, phase{"whole run", base, end})
	for _, ph := range a.phases {
		a.counts[ph.name] = &[numOutcomes]int{}
		var lat, sent []time.Duration
		for _, x := range rs {
			if x.due < ph.from || x.due >= ph.to || x.kind == kindProbe {
				continue
			}
			a.counts[ph.name][x.outcome]++
			if x.outcome != outClientError {
				lat = append(lat, x.latency())
				sent = append(sent, x.done-x.sent)
			}
		}
		a.latSent[ph.name] = summarize(sent)
		for _, x := range rs {
			if x.due < ph.from || x.due >= ph.to {
				continue
			}
			if x.wrong {
				a.wrong[ph.name]++
			}
			if x.late {
				a.late[ph.name]++
			}
		}
		a.lat[ph.name] = summarize(lat)
	}
	for _, x := range rs {
		if x.due < base {
			continue
		}
		a.byKind[x.kind][x.outcome]++
		if x.wrong {
			a.wrongKinds[x.kind]++
			a.wrongTotal++
		}
	}
	if a.hasFault {
		a.baseP99 = a.lat["baseline"].p99
		var measured []result
		for _, x := range rs {
			if x.due >= base && x.kind != kindProbe {
				measured = append(measured, x)
			}
		}
		a.rec = recoverAfter(measured, fault, heal, a.baseP99)
	}
	for i := range r.c.replicas {
		_, b := r.series(i, "go_goroutines", base, fault)
		if !a.hasFault {
			_, b = r.series(i, "go_goroutines", base, base+time.Minute)
		}
		_, f := r.series(i, "go_goroutines", fault, heal)
		// The last samples: 5 s of them, or the last two at a slower rate.
		tail := end - max(5*time.Second, 2*r.every)
		_, e := r.series(i, "go_goroutines", tail, end+time.Second)
		a.goroutines[i] = [3]float64{median(b), slices.Max(append(f, 0)), median(e)}
		ub := r.unattached(i, base, fault)
		if !a.hasFault {
			ub = r.unattached(i, base, base+time.Minute)
		}
		a.unattached[i] = [2]float64{median(ub), median(r.unattached(i, tail, end+time.Second))}
		a.logs[i] = scanLogs(r.c.replicas[i].logs(r.c.dir))
	}
	r.l.mu.Lock()
	a.lagP99 = percentile(r.l.lag, 99)
	a.conns = r.l.conns
	r.l.mu.Unlock()
	r.addCheck(a.wrongTotal == 0, "no wrong answer", "%d wrong answers", a.wrongTotal)
	return a
}

// logSummary counts a replica's log lines by level, and the messages of
// the error lines.
type logSummary struct {
	lines, warn, errors int
	errorMsgs           map[string]int
	warnMsgs            map[string]int
}

func scanLogs(files []string) logSummary {
	s := logSummary{errorMsgs: map[string]int{}, warnMsgs: map[string]int{}}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			s.lines++
			var l struct{ Level, Msg string }
			if json.Unmarshal(sc.Bytes(), &l) != nil {
				continue
			}
			switch l.Level {
			case "ERROR":
				s.errors++
				s.errorMsgs[short(l.Msg)]++
			case "WARN":
				s.warn++
				s.warnMsgs[short(l.Msg)]++
			}
		}
		fh.Close()
	}
	return s
}

func short(msg string) string {
	if len(msg) > 80 {
		return msg[:80] + "…"
	}
	return msg
}

func topMsgs(m map[string]int, n int) string {
	type kv struct {
		k string
		v int
	}
	var all []kv
	for k, v := range m {
		all = append(all, kv{k, v})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].v > all[j].v || all[i].v == all[j].v && all[i].k < all[j].k })
	var parts []string
	for i, x := range all {
		if i == n {
			parts = append(parts, "…")
			break
		}
		parts = append(parts, fmt.Sprintf("%d× %q", x.v, x.k))
	}
	return strings.Join(parts, ", ")
}

// dump writes every record as CSV to dir/scenario-N.csv, for a closer look.
func (a *analysis) dump(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("kind,due_ms,sent_ms,done_ms,outcome,expect,wrong,late\n")
	for _, x := range a.results {
		fmt.Fprintf(&b, "%s,%.3f,%.3f,%.3f,%s,%d,%t,%t\n", kindNames[x.kind],
			float64(x.due)/1e6, float64(x.sent)/1e6, float64(x.done)/1e6, outcomeNames[x.outcome], x.expect, x.wrong, x.late)
	}
	var m strings.Builder
	for k, v := range a.marks {
		fmt.Fprintf(&m, "%s,%.3f\n", k, float64(v)/1e6)
	}
	if err := os.WriteFile(fmt.Sprintf("%s/scenario-%d-marks.csv", dir, a.sc.id), []byte(m.String()), 0o644); err != nil {
		return err
	}
	return os.WriteFile(fmt.Sprintf("%s/scenario-%d.csv", dir, a.sc.id), []byte(b.String()), 0o644)
}
