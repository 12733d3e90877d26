package main

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/authresolver/authresolver/internal/mint"
	"github.com/authresolver/authresolver/internal/proc"
)

// cluster is everything one scenario runs against, all on loopback: Redis,
// the identity provider, two authresolver replicas and NGINX in front of
// them with the shipped auth_request configuration.
type cluster struct {
	cfg        config
	dir        string
	adminToken string
	iss        *mint.Issuer
	rotated    *mint.Issuer // the key scenario 4 rotates in; same iss, other kid
	idp        *idp
	redis      *proc.Redis
	replicas   [2]*replica
	nginx      *proc.Proc
	front      string // NGINX's protected server
	// introspection: the binary takes AUTHRESOLVER_INTROSPECTION_URL, so
	// opaque tokens join the mix.
	introspection bool
}

// replica is one authresolver replica on fixed ports, so that it can be
// restarted behind NGINX.
type replica struct {
	name          string
	listen, admin string
	env           map[string]string

	mu     sync.Mutex
	r      *proc.Resolver // nil while stopped
	starts int
	pids   []int
}

func (rp *replica) current() *proc.Resolver {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return rp.r
}

// start runs the replica (again) on its ports.
func (rp *replica) start(c *cluster) error {
	rp.mu.Lock()
	rp.starts++
	name := fmt.Sprintf("%s-%d", rp.name, rp.starts)
	rp.mu.Unlock()
	var r *proc.Resolver
	var err error
	for range 50 { // the old process's port can take a moment to free
		if r, err = proc.StartResolver(c.cfg.bin, c.dir, name, maps.Clone(rp.env)); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	rp.mu.Lock()
	rp.r = r
	rp.pids = append(rp.pids, r.Pid())
	rp.mu.Unlock()
	return nil
}

// stop sends SIGTERM and waits for the graceful exit (shutdown delay, then
// in-flight requests).
func (rp *replica) stop(grace time.Duration) {
	rp.mu.Lock()
	r := rp.r
	rp.r = nil
	rp.mu.Unlock()
	if r != nil {
		r.Stop(grace)
	}
}

// logs are the log files of every start of the replica.
func (rp *replica) logs(dir string) []string {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	var out []string
	for i := 1; i <= rp.starts; i++ {
		out = append(out, filepath.Join(dir, fmt.Sprintf("%s-%d.stderr.log", rp.name, i)))
	}
	return out
}

func startCluster(cfg config, extraEnv map[string]string) (c *cluster, err error) {
	dir, err := os.MkdirTemp("", "authresolver-chaos-")
	if err != nil {
		return nil, err
	}
	c = &cluster{cfg: cfg, dir: dir, adminToken: rand.Text()}
	defer func() {
		if err != nil {
			c.stop()
		}
	}()
	if c.iss, err = mint.New("https://issuer.chaos.test", "chaos-1"); err != nil {
		return c, err
	}
	if c.rotated, err = mint.New("https://issuer.chaos.test", "chaos-2"); err != nil {
		return c, err
	}
	if c.idp, err = startIDP(c.iss.JWKS()); err != nil {
		return c, err
	}
	if c.redis, err = proc.StartRedis(dir); err != nil {
		return c, err
	}
	for i, name := range []string{"replica-a", "replica-b"} {
		listen, err1 := proc.FreePort()
		admin, err2 := proc.FreePort()
		if err1 != nil || err2 != nil {
			return c, fmt.Errorf("free port: %v %v", err1, err2)
		}
		env := map[string]string{
			"LISTEN_ADDR":              "127.0.0.1:" + strconv.Itoa(listen),
			"ADMIN_ADDR":               "127.0.0.1:" + strconv.Itoa(admin),
			"REDIS_URL":                "redis://" + c.redis.Addr + "/0",
			"JWT_ISSUER":               c.iss.URL,
			"JWT_JWKS_URL":             c.idp.URL(),
			"JWT_ALGORITHMS":           "ES256",
			"ADMIN_TOKEN":              c.adminToken,
			"CACHE_TTL":                cfg.cacheTTL.String(),
			"REVOCATION_CHECK_FAILURE": cfg.revocationFailure,
			"SHUTDOWN_DELAY":           cfg.shutdownDelay.String(),
			"JWKS_REFETCH_COOLDOWN":    cfg.cooldown.String(),
		}
		if c.introspection = cfg.introspection; c.introspection {
			env["INTROSPECTION_URL"] = c.idp.IntrospectionURL()
			env["INTROSPECTION_CLIENT_ID"] = introspectionClient
			env["INTROSPECTION_CLIENT_SECRET"] = introspectionSecret
		}
		maps.Copy(env, extraEnv)
		rp := &replica{name: name, env: env,
			listen: env["LISTEN_ADDR"], admin: env["ADMIN_ADDR"]}
		c.replicas[i] = rp
		if err := rp.start(c); err != nil {
			return c, err
		}
	}
	if err := c.startNginx(); err != nil {
		return c, err
	}
	return c, nil
}

// stop ends every process and removes the directory (unless -keep).
func (c *cluster) stop() {
	for _, rp := range c.replicas {
		if rp != nil {
			rp.stop(3 * time.Second)
		}
	}
	if c.nginx != nil {
		c.nginx.Stop(3 * time.Second)
	}
	if c.redis != nil && c.redis.Proc != nil {
		c.redis.Kill()
	}
	if c.idp != nil {
		c.idp.close()
	}
	if c.cfg.keep {
		fmt.Fprintf(os.Stderr, "chaos: kept %s\n", c.dir)
		return
	}
	os.RemoveAll(c.dir)
}

// nginxConf is the http block around the shipped nginx/authresolver.conf:
// an upstream with both replicas, the protected server, and the app it
// protects (NGINX itself, answering 200 and echoing the user id it was
// given, so that the harness sees which identity reached the app).
//
// The upstream settings are the ones RELIABILITY.md documents for a rolling
// restart without a failed request: with two servers, NGINX's default
// proxy_next_upstream (error timeout) passes an auth subrequest whose
// connection is refused or reset to the other replica; max_fails=1
// fail_timeout=2s takes a refusing replica out of the rotation for 2 s.
const nginxConf = `daemon off;
%[1]s
worker_processes 2;
pid %[2]s/nginx.pid;
error_log %[2]s/nginx-error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path %[2]s/client_body;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;

    upstream authresolver {
        server %[3]s max_fails=1 fail_timeout=2s;
        server %[4]s max_fails=1 fail_timeout=2s;
        keepalive 64;
    }
    upstream app {
        server 127.0.0.1:%[5]d;
        keepalive 64;
    }

    server {
        listen 127.0.0.1:%[5]d;
        location / {
            add_header X-Seen-User $http_x_auth_user_id always;
            return 200 "ok\n";
        }
    }
    server {
        listen 127.0.0.1:%[6]d;
        set $authresolver_origin http://127.0.0.1:%[6]d;
        include authresolver.conf;
        proxy_http_version 1.1;
        location / {
            proxy_pass http://app;
        }
    }
}
`

func (c *cluster) startNginx() error {
	conf := filepath.Join(c.dir, "nginx")
	if err := os.MkdirAll(conf, 0o755); err != nil {
		return err
	}
	for _, f := range []string{"authresolver.conf", "authresolver-headers.conf"} {
		b, err := os.ReadFile(filepath.Join(c.cfg.repo, "nginx", f))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(conf, f), b, 0o644); err != nil {
			return err
		}
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;" // workers would drop to nobody, who cannot write our temp directory
	}
	var lastErr error
	for range 5 {
		app, err1 := proc.FreePort()
		front, err2 := proc.FreePort()
		if err1 != nil || err2 != nil {
			return fmt.Errorf("free port: %v %v", err1, err2)
		}
		main := filepath.Join(conf, "nginx.conf")
		text := fmt.Sprintf(nginxConf, user, c.dir, c.replicas[0].listen, c.replicas[1].listen, app, front)
		if err := os.WriteFile(main, []byte(text), 0o644); err != nil {
			return err
		}
		cmd := exec.Command("nginx", "-p", c.dir, "-c", main, "-e", filepath.Join(c.dir, "nginx-error.log"))
		// On SIGTERM the master stops its workers; killed, it would leave
		// them running.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
		p, err := proc.Start("nginx", c.dir, cmd)
		if err != nil {
			return err
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(front))
		lastErr = proc.WaitFor(p, 10*time.Second, func() error { return proc.ExpectStatus("http://"+addr+"/", 401) })
		if lastErr == nil {
			c.nginx, c.front = p, addr
			return nil
		}
		p.Stop(3 * time.Second)
	}
	b, _ := os.ReadFile(filepath.Join(c.dir, "nginx-error.log"))
	return fmt.Errorf("nginx: %w: %s", lastErr, bytes.TrimSpace(b))
}
