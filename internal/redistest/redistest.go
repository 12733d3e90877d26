// Package redistest starts real redis-server processes for tests: a single
// server (Start) that can be stopped and restarted on the same port, a
// Sentinel watching it (StartSentinel) and a three-master Redis Cluster
// (StartCluster).
//
// Servers listen on 127.0.0.1 only, keep their files in tb.TempDir(), persist
// nothing (--save "" --appendonly no) and are killed by tb.Cleanup. When
// redis-server is not on PATH the test is skipped, unless the environment
// variable CI is "true": then it fails, so CI cannot go green by skipping.
package redistest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// startTimeout bounds how long a server or cluster may take to answer.
const startTimeout = 15 * time.Second

// Server is one redis-server process owned by a test.
type Server struct {
	tb   testing.TB
	bin  string
	dir  string
	port int
	conf string // config file, first argument (Sentinel)
	args []string

	mu     sync.Mutex
	proc   *os.Process   // nil while stopped
	exited chan struct{} // closed when proc has exited
}

// Start starts a standalone redis-server on a free loopback port and returns
// once it answers PING. The server is killed when the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	bin := lookPath(tb, "redis-server")
	dir := tb.TempDir()
	var lastErr error
	for range 5 { // a free port can be taken before redis-server binds it
		s := &Server{tb: tb, bin: bin, dir: dir, port: freePort(tb, false)}
		if lastErr = s.start(); lastErr == nil {
			tb.Cleanup(s.Stop)
			return s
		}
	}
	tb.Fatalf("redistest: %v", lastErr)
	return nil
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL returns a redis:// URL for the server, database 0.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Stop kills the server and waits for it to exit. Stopping a stopped server
// does nothing. Data is lost: Restart starts empty.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return
	}
	_ = s.proc.Kill()
	<-s.exited
	s.proc, s.exited = nil, nil
}

// Restart starts a stopped server again on the same port (stopping it first
// if it runs) and returns once it answers PING.
func (s *Server) Restart() {
	s.tb.Helper()
	s.Stop()
	deadline := time.Now().Add(startTimeout)
	for {
		err := s.start()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.tb.Fatalf("redistest: restart: %v", err)
		}
	}
}

func (s *Server) start() error {
	var args []string
	if s.conf != "" {
		args = []string{s.conf, "--sentinel"}
	}
	args = append(args,
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--loglevel", "warning",
		"--logfile", "")
	args = append(args, s.args...)
	cmd := exec.Command(s.bin, args...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-exited:
			return fmt.Errorf("redis-server on port %d exited: %v: %s", s.port, waitErr, strings.TrimSpace(out.String()))
		default:
		}
		if reply, err := Do(s.Addr(), "PING"); err == nil && reply == "PONG" {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("redis-server on port %d did not answer PING within %v", s.port, startTimeout)
		}
		time.Sleep(10 * time.Millisecond) // polling a process we started, not a race
	}
	s.mu.Lock()
	s.proc, s.exited = cmd.Process, exited
	s.mu.Unlock()
	return nil
}

// StartSentinel starts a redis-server in Sentinel mode on a free loopback
// port, monitoring master under masterName (quorum 1), and returns its
// host:port once it answers PING. Clients configured with that address and
// master name reach master. The Sentinel is killed when the test ends.
func StartSentinel(tb testing.TB, masterName string, master *Server) string {
	tb.Helper()
	bin := lookPath(tb, "redis-server")
	dir := tb.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	var lastErr error
	for range 5 {
		// Sentinel rewrites its config file, so write a fresh one each try.
		line := fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 1\n", masterName, master.port)
		if err := os.WriteFile(conf, []byte(line), 0o600); err != nil {
			tb.Fatalf("redistest: %v", err)
		}
		s := &Server{tb: tb, bin: bin, dir: dir, port: freePort(tb, false), conf: conf}
		if lastErr = s.start(); lastErr == nil {
			tb.Cleanup(s.Stop)
			return s.Addr()
		}
	}
	tb.Fatalf("redistest: sentinel: %v", lastErr)
	return ""
}

// StartCluster starts three redis-server masters with cluster-enabled yes,
// joins them with redis-cli --cluster create (no replicas), waits until every
// node reports cluster_state:ok and returns their host:port addresses. The
// nodes are killed when the test ends.
func StartCluster(tb testing.TB) []string {
	tb.Helper()
	bin := lookPath(tb, "redis-server")
	cli := lookPath(tb, "redis-cli")
	var addrs []string
	for i := range 3 {
		var s *Server
		var err error
		for range 5 {
			s = &Server{
				tb: tb, bin: bin, dir: filepath.Join(tb.TempDir(), strconv.Itoa(i)),
				port: freePort(tb, true),
				args: []string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000"},
			}
			if err = os.MkdirAll(s.dir, 0o700); err != nil {
				tb.Fatalf("redistest: %v", err)
			}
			if err = s.start(); err == nil {
				break
			}
		}
		if err != nil {
			tb.Fatalf("redistest: cluster node: %v", err)
		}
		tb.Cleanup(s.Stop)
		addrs = append(addrs, s.Addr())
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		tb.Fatalf("redistest: redis-cli --cluster create: %v: %s", err, out)
	}
	deadline := time.Now().Add(startTimeout)
	for _, addr := range addrs {
		for {
			info, err := Do(addr, "CLUSTER", "INFO")
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("redistest: cluster node %s not ok within %v: %v %q", addr, startTimeout, err, info)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return addrs
}

// Do sends one command to the server at addr over a fresh connection and
// returns a simple-string, bulk-string or integer reply as text. An error
// reply is returned as an error. It is meant for harness checks, not for
// exercising code under test.
func Do(addr string, args ...string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := conn.Write([]byte(b.String())); err != nil {
		return "", err
	}
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", errors.New("redistest: empty reply")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", errors.New(line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", fmt.Errorf("redistest: bad bulk reply %q", line)
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	default:
		return "", fmt.Errorf("redistest: unsupported reply %q", line)
	}
}

func lookPath(tb testing.TB, name string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("%s not found: apt-get install redis-server", name)
	}
	tb.Skipf("%s not found (install redis-server; with CI=true this fails)", name)
	return ""
}

// freePort returns a loopback TCP port that was free a moment ago. With
// clusterBus, port+10000 (the cluster bus) is free too.
func freePort(tb testing.TB, clusterBus bool) int {
	tb.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("redistest: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		if !clusterBus {
			l.Close()
			return port
		}
		if port+10000 > 65535 {
			l.Close()
			continue
		}
		bus, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+10000)))
		l.Close()
		if err != nil {
			continue
		}
		bus.Close()
		return port
	}
	tb.Fatal("redistest: no free port")
	return 0
}
