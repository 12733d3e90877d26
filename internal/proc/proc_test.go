package proc

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/authresolver/authresolver/internal/redistest"
)

func needRedis(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("internal/proc: redis-server not found on PATH: apt-get install redis-server")
	}
	t.Skip("internal/proc: redis-server not found on PATH (with CI=true this fails)")
}

// TestRedisFaults drives the faults the chaos harness injects: SIGSTOP
// (the server stops answering, connections stay open), SIGCONT, SIGKILL and
// a restart on the same port, empty.
func TestRedisFaults(t *testing.T) {
	needRedis(t)
	r, err := StartRedis(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Kill()
	if _, err := redistest.Do(r.Addr, "SET", "k", "v"); err != nil {
		t.Fatal(err)
	}
	if err := r.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := redistest.Do(r.Addr, "PING"); err == nil {
		t.Errorf("PING answered while the server was stopped")
	}
	if took := time.Since(start); took < time.Second {
		t.Errorf("PING failed after %v while stopped, want the client's 2 s deadline (a hang, not a refusal)", took)
	}
	if err := r.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if got, err := redistest.Do(r.Addr, "GET", "k"); err != nil || got != "v" {
		t.Errorf("GET after SIGCONT = %q, %v; want the value kept", got, err)
	}
	old := r.Pid()
	r.Kill()
	if r.Running() {
		t.Fatal("still running after Kill")
	}
	if _, err := redistest.Do(r.Addr, "PING"); err == nil {
		t.Errorf("PING answered after SIGKILL")
	}
	if err := r.Restart(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if r.Pid() == old {
		t.Errorf("restart kept pid %d", old)
	}
	if got, err := redistest.Do(r.Addr, "EXISTS", "k"); err != nil || got != "0" {
		t.Errorf("EXISTS k after the restart = %q, %v; want an empty server", got, err)
	}
}

// TestStopReachesTheGroup: Stop ends a process that ignores nothing, and a
// stopped (SIGSTOP) one too, by its process group.
func TestStopReachesTheGroup(t *testing.T) {
	// sh starts a child sleep in the same group; Stop must end both.
	cmd := exec.Command("sh", "-c", "sleep 60 & echo $! > child; wait")
	dir := t.TempDir()
	cmd.Dir = dir
	p, err := Start("sh", dir, cmd)
	if err != nil {
		t.Fatal(err)
	}
	var child int
	for range 100 {
		b, _ := os.ReadFile(dir + "/child")
		if _, err := fmt.Sscan(string(b), &child); err == nil && child > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if child == 0 {
		t.Fatal("the child's pid was not written")
	}
	_ = p.Signal(syscall.SIGSTOP)
	p.Stop(2 * time.Second)
	if p.Running() {
		t.Errorf("still running after Stop")
	}
	deadline := time.Now().Add(2 * time.Second)
	for syscall.Kill(child, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("the child %d of the group outlived Stop", child)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
