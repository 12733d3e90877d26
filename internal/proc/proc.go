// Package proc starts and watches the server processes of the load and chaos
// harnesses (bench, bench/chaos): redis-server, authresolver built from this
// repository, NGINX. Every process runs in its own process group with its
// output in a log file, and the kernel kills it if the harness dies without
// cleaning up (Pdeathsig), so a run never leaves anything behind.
package proc

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Proc is a server process the harness started.
type Proc struct {
	Name   string
	Cmd    *exec.Cmd
	exited chan struct{}
}

// Start runs cmd with its output in dir/name.log (unless cmd has its own
// Stdout or Stderr), in a process group of its own. The kernel sends it
// SIGKILL if the harness dies, or the signal cmd.SysProcAttr.Pdeathsig
// names when set: NGINX needs SIGTERM, as its workers outlive a killed
// master.
func Start(name, dir string, cmd *exec.Cmd) (*Proc, error) {
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, fmt.Errorf("proc: %w", err)
	}
	if cmd.Stdout == nil {
		cmd.Stdout = logf
	}
	if cmd.Stderr == nil {
		cmd.Stderr = logf
	}
	// Pdeathsig is tied to the thread that forks; Go keeps that thread
	// unless a goroutine exits while locked to it, which the harnesses never
	// do between Start and the end of a run.
	death := syscall.SIGKILL
	if cmd.SysProcAttr != nil && cmd.SysProcAttr.Pdeathsig != 0 {
		death = cmd.SysProcAttr.Pdeathsig
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: death, Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("proc: start %s: %w", name, err)
	}
	p := &Proc{Name: name, Cmd: cmd, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(p.exited)
	}()
	return p, nil
}

// Pid is the process's id (also its process group's).
func (p *Proc) Pid() int { return p.Cmd.Process.Pid }

// Signal sends sig to the process only (SIGSTOP, SIGCONT, SIGTERM).
func (p *Proc) Signal(sig syscall.Signal) error {
	return syscall.Kill(p.Pid(), sig)
}

// Stop asks the process group to end (SIGTERM), kills it after grace, and
// waits until the process has exited.
func (p *Proc) Stop(grace time.Duration) {
	_ = syscall.Kill(-p.Pid(), syscall.SIGCONT) // a stopped process cannot act on SIGTERM
	_ = syscall.Kill(-p.Pid(), syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(grace):
		p.Kill()
	}
}

// Kill sends SIGKILL to the process group and waits until the process has
// exited.
func (p *Proc) Kill() {
	_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
	<-p.exited
}

// Exited is closed once the process has exited.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// Running reports whether the process has not exited yet.
func (p *Proc) Running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// PIDs are the process and its children (NGINX's workers).
func (p *Proc) PIDs() []int {
	pid := p.Pid()
	out := []int{pid}
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	for _, f := range strings.Fields(string(b)) {
		if c, err := strconv.Atoi(f); err == nil {
			out = append(out, c)
		}
	}
	return out
}

// TicksPerSecond is USER_HZ, the unit of CPUTicks.
const TicksPerSecond = 100

// CPUTicks returns utime+stime of pid in clock ticks.
func CPUTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name may hold spaces; the fields we want follow its ')'.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64) // field 14, utime
	s, _ := strconv.ParseInt(f[12], 10, 64) // field 15, stime
	return u + s
}

// StatusBytes returns a memory field of /proc/PID/status (VmHWM, VmRSS).
func StatusBytes(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// FreePort returns a loopback port that was free a moment ago; callers retry
// when another process takes it first.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("proc: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// WaitFor polls check until it succeeds, the process exits or d passes.
func WaitFor(p *Proc, d time.Duration, check func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if !p.Running() {
			return fmt.Errorf("%s exited: %v", p.Name, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready within %v: %v", p.Name, d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ExpectStatus GETs url and wants status want.
func ExpectStatus(url string, want int) error {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
