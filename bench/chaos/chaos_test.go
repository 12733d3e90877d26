package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/authresolver/authresolver/internal/proc"
)

// need finds a binary the harness drives; missing, the test is skipped,
// except in CI (CI=true), where it fails naming the package.
func need(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("bench/chaos: %s not found on PATH: apt-get install redis-server nginx", name)
	}
	t.Skipf("bench/chaos: %s not found on PATH (with CI=true this fails)", name)
}

// TestScenario1Short runs scenario 1 (Redis SIGKILLed under load, restarted
// empty) with a 1 s fault at a low rate, end to end: the real binary, two
// replicas, NGINX, the oracle. Every check must hold, above all no wrong
// answer.
func TestScenario1Short(t *testing.T) {
	need(t, "redis-server")
	need(t, "nginx")
	repo, err := proc.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "authresolver")
	build := exec.Command("go", "build", "-o", bin, "./cmd/authresolver")
	build.Dir = repo
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/authresolver: %v\n%s", err, out)
	}
	cfg := config{
		bin: bin, repo: repo,
		rate: 300, conns: 32,
		warmup: 500 * time.Millisecond, baseline: 2 * time.Second, after: 4 * time.Second,
		redisDown: time.Second,
		cacheTTL:  5 * time.Second, shutdownDelay: 0, cooldown: 10 * time.Second,
		revokeEvery: 300 * time.Millisecond, revocationFailure: "closed",
		// No allowance for revocation propagation: a revocation call
		// returns only once every replica confirmed it (cache.Bus).
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a, err := runScenario(ctx, cfg, scenarios(cfg)[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + a.markdown())
	if a.wrongTotal != 0 {
		t.Errorf("%d wrong answers", a.wrongTotal)
	}
	for _, c := range a.checks {
		if !c.ok {
			t.Errorf("check failed: %s: %s", c.what, c.detail)
		}
	}
	if s := revocationStats(a.revs, 0, a.marks["end"]); s.made == 0 {
		t.Errorf("no revocation was made")
	}
}
