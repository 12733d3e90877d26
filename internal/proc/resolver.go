package proc

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Resolver is one authresolver process.
type Resolver struct {
	*Proc
	Addr, Admin string // resolve and admin listeners, host:port
	Log         string // its JSON log (stderr)
}

// StartResolver runs the authresolver binary bin with env (AUTHRESOLVER_*
// settings without the prefix) and waits until /readyz answers 200. Without
// LISTEN_ADDR or ADMIN_ADDR in env it listens on loopback ports of its own
// choosing, which it logs.
func StartResolver(bin, dir, name string, env map[string]string) (*Resolver, error) {
	cmd := exec.Command(bin, "serve")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	full := map[string]string{"LISTEN_ADDR": "127.0.0.1:0", "ADMIN_ADDR": "127.0.0.1:0", "LOG_FORMAT": "json"}
	for k, v := range env {
		full[k] = v
	}
	for k, v := range full {
		cmd.Env = append(cmd.Env, "AUTHRESOLVER_"+k+"="+v)
	}
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	p, err := Start(name, dir, cmd)
	if err != nil {
		return nil, err
	}
	r := &Resolver{Proc: p, Log: filepath.Join(dir, name+".stderr.log")}
	found := make(chan struct{})
	go func() {
		// Copy the log to a file and pick the listeners' addresses from it.
		logf, _ := os.Create(r.Log)
		defer logf.Close()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			fmt.Fprintln(logf, sc.Text())
			var line struct{ Msg, Listener, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) != nil || line.Msg != "listening" {
				continue
			}
			if line.Listener == "resolve" {
				r.Addr = line.Addr
			} else {
				r.Admin = line.Addr
			}
			if r.Addr != "" && r.Admin != "" {
				close(found)
			}
		}
		_, _ = io.Copy(io.Discard, pr) // a line too long for the scanner must not block the child
	}()
	go func() { <-p.exited; pw.Close() }()
	select {
	case <-found:
	case <-p.exited:
		return nil, fmt.Errorf("proc: %s exited at start-up; see %s", name, r.Log)
	case <-time.After(30 * time.Second):
		p.Stop(3 * time.Second)
		return nil, fmt.Errorf("proc: %s did not log its listeners within 30s", name)
	}
	err = WaitFor(p, 30*time.Second, func() error { return ExpectStatus("http://"+r.Admin+"/readyz", 200) })
	if err != nil {
		p.Stop(3 * time.Second)
		return nil, fmt.Errorf("proc: %w", err)
	}
	return r, nil
}

// CreateSession creates a session for user through the admin API and
// returns its ID.
func CreateSession(r *Resolver, adminToken, user string) (string, error) {
	body := fmt.Sprintf(`{"user_id":%q,"ttl":"2h","verified":true,"roles":["reader","writer"],"amr":["pwd","otp"]}`, user)
	req, _ := http.NewRequest("POST", "http://"+r.Admin+"/v1/sessions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return "", fmt.Errorf("proc: create session: %w", err)
	}
	defer resp.Body.Close()
	var out struct {
		SessionID string `json:"session_id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 201 || out.SessionID == "" {
		return "", fmt.Errorf("proc: POST /v1/sessions: %s: %v", resp.Status, err)
	}
	return out.SessionID, nil
}

// Metrics reads the samples of the resolver's /metrics, keyed by name and
// labels as exposed (`name{label="v"}`).
func Metrics(r *Resolver) (map[string]float64, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + r.Admin + "/metrics")
	if err != nil {
		return nil, fmt.Errorf("proc: metrics: %w", err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		i := strings.LastIndexByte(line, ' ')
		if i < 0 || strings.HasPrefix(line, "#") {
			continue
		}
		name, v := line[:i], line[i+1:]
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			out[name] = f
		}
	}
	return out, sc.Err()
}

// Metric reads one unlabelled gauge or counter from the resolver's /metrics.
func Metric(r *Resolver, name string) (float64, error) {
	m, err := Metrics(r)
	if err != nil {
		return 0, err
	}
	v, ok := m[name]
	if !ok {
		return 0, errors.New("proc: " + name + " not found in /metrics")
	}
	return v, nil
}

// Sum adds up every series of the metric family name in m.
func Sum(m map[string]float64, name string) float64 {
	var n float64
	for k, v := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			n += v
		}
	}
	return n
}

// RepoRoot finds the module root from the working directory upwards.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("go.mod not found above the working directory: run from the repository")
		}
		dir = parent
	}
}
