// Command chaos is authresolver's fault-injection and soak harness (make
// chaos, make soak). For each scenario it starts on loopback a fresh
// redis-server, an identity provider, two authresolver replicas built from
// this repository and NGINX in front of them with the shipped auth_request
// configuration; drives an open-loop mixed load through NGINX while
// revoking a credential every second through one replica and probing the
// other; injects the scenario's fault; judges every answer with the
// wrong-answer oracle (oracle.go); and reports outcomes, latency, recovery
// and revocation-to-denial times. See RELIABILITY.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/authresolver/authresolver/internal/proc"
)

type config struct {
	bin, repo string
	rate      int
	conns     int
	warmup    time.Duration
	baseline  time.Duration
	after     time.Duration

	redisDown    time.Duration // 1
	stall        time.Duration // 2
	redisTimeout time.Duration // 2: FLIGHT_TIMEOUT, the bound the stall is held to
	pubsubFault  time.Duration // 3
	pubsubEvery  time.Duration // 3
	idpDown      time.Duration // 4
	idpPhase     time.Duration // 4: 500, then hanging, each this long
	rollPause    time.Duration // 5
	soak         time.Duration // 6
	soakWindow   time.Duration // 6: the slope's window
	soakSample   time.Duration // 6: sampling interval

	cacheTTL          time.Duration
	shutdownDelay     time.Duration
	cooldown          time.Duration
	revokeEvery       time.Duration
	revocationFailure string // closed or open

	propagation time.Duration // allowance for the pub/sub delivery delay (oracle.go)
	dump        string

	introspection bool // the checkout's cmd/authresolver knows AUTHRESOLVER_INTROSPECTION_URL

	scenarios   []int
	out         string
	reliability string
	keep        bool
}

func main() {
	var c config
	var only string
	var introspection string
	flag.StringVar(&only, "scenarios", "1,2,3,4,5", "comma list of scenarios to run (1–6; 6 is the soak)")
	flag.IntVar(&c.rate, "rate", 2000, "offered load through NGINX, requests per second (open loop)")
	flag.IntVar(&c.conns, "conns", 2048, "at most this many connections to NGINX (opened as the schedule needs them)")
	flag.DurationVar(&c.warmup, "warmup", 3*time.Second, "unmeasured load before the baseline")
	flag.DurationVar(&c.baseline, "baseline", 10*time.Second, "measured load before the fault")
	flag.DurationVar(&c.after, "after", 15*time.Second, "measured load after the fault healed")
	flag.DurationVar(&c.redisDown, "redis-down", 5*time.Second, "1: how long Redis stays dead")
	flag.DurationVar(&c.stall, "stall", 5*time.Second, "2: how long Redis stays SIGSTOPped")
	flag.DurationVar(&c.redisTimeout, "flight-timeout", time.Second, "2: the replicas' AUTHRESOLVER_FLIGHT_TIMEOUT (what bounds a verification or lookup); the stall's p99 is held to it + 100 ms")
	flag.DurationVar(&c.pubsubFault, "pubsub-fault", 10*time.Second, "3: how long pub/sub connections keep being killed")
	flag.DurationVar(&c.pubsubEvery, "pubsub-every", 2*time.Second, "3: interval between kills")
	flag.DurationVar(&c.idpDown, "idp-down", 30*time.Second, "4: how long the IdP refuses connections")
	flag.DurationVar(&c.idpPhase, "idp-phase", 15*time.Second, "4: then how long it answers 500, then how long it hangs")
	flag.DurationVar(&c.rollPause, "roll-pause", 5*time.Second, "5: wait after a restarted replica is ready before the next")
	flag.DurationVar(&c.soak, "soak", 10*time.Minute, "6: soak duration")
	flag.DurationVar(&c.soakSample, "soak-sample", 10*time.Second, "6: interval between samples of RSS, heap, goroutines and FDs")
	flag.DurationVar(&c.soakWindow, "soak-window", 8*time.Minute, "6: the trailing window of the slopes")
	flag.DurationVar(&c.cacheTTL, "cache-ttl", 5*time.Second, "replicas' AUTHRESOLVER_CACHE_TTL")
	flag.DurationVar(&c.shutdownDelay, "shutdown-delay", 2*time.Second, "replicas' AUTHRESOLVER_SHUTDOWN_DELAY")
	flag.DurationVar(&c.cooldown, "cooldown", 10*time.Second, "replicas' AUTHRESOLVER_JWKS_REFETCH_COOLDOWN")
	flag.StringVar(&c.revocationFailure, "revocation-check-failure", "closed", "replicas' AUTHRESOLVER_REVOCATION_CHECK_FAILURE (closed or open)")
	flag.DurationVar(&c.revokeEvery, "revoke-every", time.Second, "interval between revocations")
	flag.StringVar(&c.bin, "bin", "", "authresolver binary (default: go build ./cmd/authresolver)")
	flag.StringVar(&c.out, "out", "bench/out/chaos.md", "Markdown report file (also printed)")
	flag.StringVar(&c.reliability, "reliability", "", "also replace each scenario's section in this file (RELIABILITY.md)")
	flag.DurationVar(&c.propagation, "propagation", 0, "allow the other replica to grant a revoked credential for this long after the call returned (0: SPEC §4, no grant after the call returned)")
	flag.StringVar(&c.dump, "dump", "", "write every request's record as CSV to this directory")
	flag.StringVar(&introspection, "introspection", "auto", "opaque tokens introspected at the IdP: on, off, or auto (on when cmd/authresolver knows AUTHRESOLVER_INTROSPECTION_URL)")
	flag.BoolVar(&c.keep, "keep", false, "keep each scenario's temporary directory (logs, NGINX config)")
	flag.Parse()
	log.SetFlags(log.Ltime)
	var err error
	if c.scenarios, err = parseScenarios(only); err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ok, err := run(ctx, c, introspection, strings.Join(os.Args[1:], " "))
	if err != nil {
		log.Fatal(err)
	}
	if !ok {
		os.Exit(1)
	}
}

func parseScenarios(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 6 {
			return nil, fmt.Errorf("-scenarios: %q is not a scenario (1–6)", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// run runs the chosen scenarios one after the other and writes the report.
// It returns false if any check failed.
func run(ctx context.Context, c config, introspection, args string) (bool, error) {
	for _, bin := range []string{"redis-server", "nginx"} {
		if _, err := exec.LookPath(bin); err != nil {
			return false, fmt.Errorf("bench/chaos needs %s on PATH (Debian: apt-get install redis-server nginx)", bin)
		}
	}
	var err error
	if c.repo, err = proc.RepoRoot(); err != nil {
		return false, err
	}
	switch introspection {
	case "on", "off":
		c.introspection = introspection == "on"
	case "auto":
		src, err := os.ReadFile(filepath.Join(c.repo, "cmd", "authresolver", "config.go"))
		if err != nil {
			return false, err
		}
		c.introspection = strings.Contains(string(src), `"INTROSPECTION_URL"`)
	default:
		return false, fmt.Errorf("-introspection: want on, off or auto, got %q", introspection)
	}
	if !c.introspection {
		log.Printf("cmd/authresolver has no AUTHRESOLVER_INTROSPECTION_URL: driving JWTs and sessions only")
	}
	if c.bin == "" {
		dir, err := os.MkdirTemp("", "authresolver-chaos-bin-")
		if err != nil {
			return false, err
		}
		defer os.RemoveAll(dir)
		c.bin = filepath.Join(dir, "authresolver")
		log.Printf("building ./cmd/authresolver")
		build := exec.CommandContext(ctx, "go", "build", "-o", c.bin, "./cmd/authresolver")
		build.Dir, build.Stdout, build.Stderr = c.repo, os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return false, fmt.Errorf("go build ./cmd/authresolver: %w", err)
		}
	}
	header := describe(c, args)
	all := true
	text := header
	for _, sc := range scenarios(c) {
		if !slices.Contains(c.scenarios, sc.id) {
			continue
		}
		log.Printf("scenario %d: %s", sc.id, sc.name)
		a, err := runScenario(ctx, c, sc)
		if err != nil {
			return false, err
		}
		sec := a.markdown()
		fmt.Print(sec)
		text += sec
		all = all && a.passed()
		if c.reliability != "" {
			if err := replaceSection(c.reliability, sc.id, header+sec); err != nil {
				return false, err
			}
		}
	}
	if err := os.MkdirAll(filepath.Dir(c.out), 0o755); err != nil {
		return false, err
	}
	return all, os.WriteFile(c.out, []byte(text), 0o644)
}

// describe is the report's preamble: the command, the commit, the machine.
func describe(c config, args string) string {
	commit := strings.TrimSpace(output(c.repo, "git", "describe", "--always", "--dirty", "--abbrev=12"))
	load, _ := os.ReadFile("/proc/loadavg")
	return fmt.Sprintf("Command: `go run ./bench/chaos %s` at commit `%s`, %s; %d CPUs, load average at start %s; %s; %s.\n\n",
		args, commit, time.Now().UTC().Format("2006-01-02 15:04 UTC"), numCPU(),
		strings.Join(strings.Fields(string(load))[:3], " "),
		strings.TrimSpace(output(c.repo, "nginx", "-v")), firstField(output(c.repo, "redis-server", "--version"), "v="))
}

func output(dir, name string, args ...string) string {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	b, _ := cmd.CombinedOutput()
	return string(b)
}

func firstField(s, prefix string) string {
	for _, f := range strings.Fields(s) {
		if strings.HasPrefix(f, prefix) {
			return "redis " + strings.TrimPrefix(f, prefix)
		}
	}
	return "redis ?"
}

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}

// replaceSection puts text between the markers of scenario id in file,
// appending the markers at the end if they are missing.
func replaceSection(file string, id int, text string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	begin := fmt.Sprintf("<!-- chaos:scenario-%d:begin -->", id)
	end := fmt.Sprintf("<!-- chaos:scenario-%d:end -->", id)
	re := regexp.MustCompile(`(?s)` + regexp.QuoteMeta(begin) + `.*?` + regexp.QuoteMeta(end))
	block := begin + "\n" + text + end
	s := string(b)
	if re.MatchString(s) {
		s = re.ReplaceAllLiteralString(s, block)
	} else {
		s = strings.TrimRight(s, "\n") + "\n\n" + block + "\n"
	}
	return os.WriteFile(file, []byte(s), 0o644)
}
