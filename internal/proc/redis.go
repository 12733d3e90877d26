package proc

import (
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/authresolver/authresolver/internal/redistest"
)

// Redis is a redis-server on loopback that persists nothing.
type Redis struct {
	*Proc
	Addr string
	dir  string
	port int
}

// StartRedis starts redis-server on a free loopback port and waits until it
// answers PING.
func StartRedis(dir string) (*Redis, error) {
	var lastErr error
	for range 5 {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		r := &Redis{dir: dir, port: port, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
		if lastErr = r.start(); lastErr == nil {
			return r, nil
		}
	}
	return nil, fmt.Errorf("proc: redis-server: %w", lastErr)
}

// Restart starts a new, empty redis-server on the same port once the old one
// has exited (the caller kills it first), retrying while the port is still
// held.
func (r *Redis) Restart(d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		err := r.start()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("proc: restart redis-server: %w", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *Redis) start() error {
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--dir", r.dir, "--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning")
	p, err := Start("redis", r.dir, cmd)
	if err != nil {
		return err
	}
	err = WaitFor(p, 10*time.Second, func() error {
		reply, err := redistest.Do(r.Addr, "PING")
		if err == nil && reply != "PONG" {
			err = fmt.Errorf("PING answered %q", reply)
		}
		return err
	})
	if err != nil {
		p.Kill()
		return err
	}
	r.Proc = p
	return nil
}

// Commands is the server's total_commands_processed (0 if unreachable).
func (r *Redis) Commands() int64 {
	info, err := redistest.Do(r.Addr, "INFO", "stats")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_commands_processed:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}
