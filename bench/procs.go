package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/authresolver/authresolver/internal/redistest"
)

// proc is a server process the harness started and measures.
type proc struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{}
}

// start runs cmd with its output in dir/name.log. The kernel kills it if the
// harness dies without cleaning up.
func start(name, dir string, cmd *exec.Cmd) (*proc, error) {
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	if cmd.Stdout == nil {
		cmd.Stdout = logf
	}
	if cmd.Stderr == nil {
		cmd.Stderr = logf
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(p.exited)
	}()
	return p, nil
}

// stop asks the process to end, and kills it after a grace period.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(3 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// pids are the process and its children (NGINX's workers).
func (p *proc) pids() []int {
	pid := p.cmd.Process.Pid
	out := []int{pid}
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	for _, f := range strings.Fields(string(b)) {
		if c, err := strconv.Atoi(f); err == nil {
			out = append(out, c)
		}
	}
	return out
}

// cpuTicks returns utime+stime of pid in clock ticks (USER_HZ, 100 a second).
func cpuTicks(pid int) int64 {
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

const ticksPerSecond = 100

// statusBytes returns a memory field of /proc/PID/status (VmHWM, VmRSS).
func statusBytes(pid int, field string) int64 {
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

// freePort returns a loopback port that was free a moment ago; callers retry
// when another process takes it first.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startRedis(dir string) (*proc, string, error) {
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			return nil, "", err
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--dir", dir, "--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning")
		p, err := start("redis", dir, cmd)
		if err != nil {
			return nil, "", err
		}
		lastErr = waitFor(p, 10*time.Second, func() error {
			reply, err := redistest.Do(addr, "PING")
			if err == nil && reply != "PONG" {
				err = fmt.Errorf("PING answered %q", reply)
			}
			return err
		})
		if lastErr == nil {
			return p, addr, nil
		}
		p.stop()
	}
	return nil, "", fmt.Errorf("redis-server: %w", lastErr)
}

// redisCommands is the server's total_commands_processed.
func redisCommands(addr string) int64 {
	info, err := redistest.Do(addr, "INFO", "stats")
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

// startSelf runs this binary as the ceiling or the upstream and returns its
// address.
func startSelf(kind, dir string) (*proc, string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	defer l.Close() // the child holds its own copy
	f, err := l.(*net.TCPListener).File()
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	exe, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(exe, "-serve", kind)
	cmd.ExtraFiles = []*os.File{f}
	p, err := start(kind, dir, cmd)
	if err != nil {
		return nil, "", err
	}
	return p, l.Addr().String(), nil
}

// resolverProc is one authresolver process.
type resolverProc struct {
	*proc
	addr, admin string
}

// startResolver runs the authresolver binary with env (AUTHRESOLVER_*
// without the prefix) on loopback ports of its own choosing, which it logs,
// and waits until /readyz answers 200.
func startResolver(bin, dir, name string, env map[string]string) (*resolverProc, error) {
	cmd := exec.Command(bin, "serve")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	env["LISTEN_ADDR"] = "127.0.0.1:0"
	env["ADMIN_ADDR"] = "127.0.0.1:0"
	env["LOG_FORMAT"] = "json"
	for k, v := range env {
		cmd.Env = append(cmd.Env, "AUTHRESOLVER_"+k+"="+v)
	}
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	p, err := start(name, dir, cmd)
	if err != nil {
		return nil, err
	}
	r := &resolverProc{proc: p}
	found := make(chan struct{})
	go func() {
		// Copy the log to a file and pick the listeners' addresses from it.
		logf, _ := os.Create(filepath.Join(dir, name+".stderr.log"))
		defer logf.Close()
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			fmt.Fprintln(logf, sc.Text())
			var line struct{ Msg, Listener, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) != nil || line.Msg != "listening" {
				continue
			}
			if line.Listener == "resolve" {
				r.addr = line.Addr
			} else {
				r.admin = line.Addr
			}
			if r.addr != "" && r.admin != "" {
				close(found)
			}
		}
	}()
	go func() { <-p.exited; pw.Close() }()
	select {
	case <-found:
	case <-p.exited:
		return nil, fmt.Errorf("%s exited at start-up; see %s", name, filepath.Join(dir, name+".stderr.log"))
	case <-time.After(30 * time.Second):
		p.stop()
		return nil, fmt.Errorf("%s did not log its listeners within 30s", name)
	}
	err = waitFor(p, 30*time.Second, func() error { return expectStatus("http://"+r.admin+"/readyz", 200) })
	if err != nil {
		p.stop()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return r, nil
}

// waitFor polls check until it succeeds, the process exits or d passes.
func waitFor(p *proc, d time.Duration, check func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if !p.running() {
			return fmt.Errorf("%s exited: %v", p.name, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready within %v: %v", p.name, d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func expectStatus(url string, want int) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// createSession creates a session through the admin API and returns its ID.
func createSession(r *resolverProc, adminToken, user string) (string, error) {
	body := fmt.Sprintf(`{"user_id":%q,"ttl":"2h","verified":true,"roles":["reader","writer"],"amr":["pwd","otp"]}`, user)
	req, _ := http.NewRequest("POST", "http://"+r.admin+"/v1/sessions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		SessionID string `json:"session_id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 201 || out.SessionID == "" {
		return "", fmt.Errorf("POST /v1/sessions: %s: %v", resp.Status, err)
	}
	return out.SessionID, nil
}

// metric reads one unlabelled gauge from the resolver's /metrics.
func metric(r *resolverProc, name string) (float64, error) {
	resp, err := http.Get("http://" + r.admin + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, errors.New(name + " not found in /metrics")
}

// nginxConf fronts the upstream twice: without authentication, and protected
// by the shipped nginx/authresolver.conf (auth_request to the resolver).
const nginxConf = `daemon off;
%[7]s
worker_processes auto;
pid %[1]s/nginx.pid;
error_log %[1]s/nginx-error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 1000000; # clients; as with the Go servers, which have no limit
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;

    upstream authresolver { server %[2]s; keepalive 64; }
    upstream app { server %[3]s; keepalive 64; }

    server {
        listen 127.0.0.1:%[4]d;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
    server {
        listen 127.0.0.1:%[5]d;
        include authresolver.conf;
        proxy_http_version 1.1;
        location / {
            proxy_pass http://app;
        }
    }

    # The same with the shipped optional NGINX decision cache turned on.
    proxy_cache_path %[1]s/cache levels=1:2 keys_zone=authresolver:10m max_size=64m inactive=60s use_temp_path=off;
    server {
        listen 127.0.0.1:%[6]d;
        include authresolver-cached.conf;
        proxy_http_version 1.1;
        location / {
            proxy_pass http://app;
        }
    }
}
`

// nginxAddrs are the three servers of nginxConf.
type nginxAddrs struct{ plain, auth, cached string }

// startNginx runs nginxConf with the shipped nginx/*.conf files; the cached
// server uses authresolver.conf with its include of authresolver-cache.conf
// uncommented, as that file says to.
func startNginx(dir, repo, resolverAddr, upstreamAddr string) (*proc, nginxAddrs, error) {
	conf := filepath.Join(dir, "nginx")
	if err := os.MkdirAll(conf, 0o755); err != nil {
		return nil, nginxAddrs{}, err
	}
	for _, f := range []string{"authresolver.conf", "authresolver-headers.conf", "authresolver-cache.conf"} {
		b, err := os.ReadFile(filepath.Join(repo, "nginx", f))
		if err != nil {
			return nil, nginxAddrs{}, err
		}
		if err := os.WriteFile(filepath.Join(conf, f), b, 0o644); err != nil {
			return nil, nginxAddrs{}, err
		}
		if f == "authresolver.conf" {
			const off, on = "    # include authresolver-cache.conf;", "    include authresolver-cache.conf;"
			if !bytes.Contains(b, []byte(off)) {
				return nil, nginxAddrs{}, fmt.Errorf("nginx/authresolver.conf: %q not found", off)
			}
			b = bytes.Replace(b, []byte(off), []byte(on), 1)
			if err := os.WriteFile(filepath.Join(conf, "authresolver-cached.conf"), b, 0o644); err != nil {
				return nil, nginxAddrs{}, err
			}
		}
	}
	var lastErr error
	for range 5 {
		plain, err1 := freePort()
		auth, err2 := freePort()
		cached, err3 := freePort()
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, nginxAddrs{}, err
		}
		main := filepath.Join(conf, "nginx.conf")
		// Run as root, NGINX's workers would drop to nobody, who cannot
		// write the cache in our private temporary directory.
		user := ""
		if os.Geteuid() == 0 {
			user = "user root;"
		}
		text := fmt.Sprintf(nginxConf, dir, resolverAddr, upstreamAddr, plain, auth, cached, user)
		if err := os.WriteFile(main, []byte(text), 0o644); err != nil {
			return nil, nginxAddrs{}, err
		}
		cmd := exec.Command("nginx", "-p", dir, "-c", main, "-e", filepath.Join(dir, "nginx-error.log"))
		p, err := start("nginx", dir, cmd)
		if err != nil {
			return nil, nginxAddrs{}, err
		}
		a := nginxAddrs{
			plain:  fmt.Sprintf("127.0.0.1:%d", plain),
			auth:   fmt.Sprintf("127.0.0.1:%d", auth),
			cached: fmt.Sprintf("127.0.0.1:%d", cached),
		}
		lastErr = waitFor(p, 10*time.Second, func() error { return expectStatus("http://"+a.plain+"/", 200) })
		if lastErr == nil {
			return p, a, nil
		}
		p.stop()
	}
	return nil, nginxAddrs{}, fmt.Errorf("nginx: %w (see %s)", lastErr, filepath.Join(dir, "nginx-error.log"))
}
