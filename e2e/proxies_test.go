package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// nginxOptions selects the optional parts of the shipped NGINX config.
type nginxOptions struct {
	// Cache turns on the decision cache the way authresolver-cache.conf
	// says to: uncomment its include and the proxy_cache_path line.
	Cache bool
	// CacheKey, if set, replaces the shipped proxy_cache_key: only to show
	// what an unsafe key does.
	CacheKey string
	// Claims turns on the claim header lines for email=Email that
	// authresolver-headers.conf documents (AUTHRESOLVER_CLAIM_HEADERS).
	Claims bool
	// ResolverAddr and AppAddr replace the resolver and the echo upstream
	// of the env (host:port), e.g. with a tap or another app.
	ResolverAddr, AppAddr string
}

// startNginx runs the shipped nginx/example.conf in front of e and returns
// the base URL. The shipped files are copied unchanged except for the
// substitutions below, each of which must match exactly once.
func startNginx(tb testing.TB, e *env, opt nginxOptions) string {
	tb.Helper()
	bin := lookPath(tb, "nginx", "nginx")
	dir := tb.TempDir()
	conf := filepath.Join(dir, "conf")
	if err := os.MkdirAll(conf, 0o755); err != nil {
		tb.Fatal(err)
	}
	shipped, err := filepath.Glob(filepath.Join(repoRoot, "nginx", "*.conf"))
	if err != nil || len(shipped) == 0 {
		tb.Fatalf("no nginx/*.conf in %s: %v", repoRoot, err)
	}
	for _, src := range shipped {
		b, err := os.ReadFile(src)
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(conf, filepath.Base(src)), b, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	if opt.Claims {
		headers := filepath.Join(conf, "authresolver-headers.conf")
		substitute(tb, headers, "#auth_request_set $authresolver_claim_email", "auth_request_set $authresolver_claim_email")
		substitute(tb, headers, "#proxy_set_header X-Auth-Email", "proxy_set_header X-Auth-Email")
	}
	if opt.Cache {
		substitute(tb, filepath.Join(conf, "authresolver.conf"),
			"    # include authresolver-cache.conf;", "    include authresolver-cache.conf;")
		substitute(tb, filepath.Join(conf, "example.conf"),
			"# proxy_cache_path /var/cache/nginx/authresolver ", "proxy_cache_path "+filepath.Join(dir, "cache")+" ")
		if opt.CacheKey != "" {
			substitute(tb, filepath.Join(conf, "authresolver-cache.conf"),
				`proxy_cache_key "r=$uri a=$http_authorization t=$http_x_stack_access_token c=$http_cookie";`,
				"proxy_cache_key "+opt.CacheKey+";")
		}
	}
	// Only the main context is the harness's own: NGINX as an unprivileged
	// foreground process with every file in dir.
	main := fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log stderr notice;
events { worker_connections 256; }
http {
    access_log %[1]s/access.log;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    include example.conf;
}
`, dir)
	if err := os.WriteFile(filepath.Join(conf, "nginx.conf"), []byte(main), 0o644); err != nil {
		tb.Fatal(err)
	}
	resolverAddr, appAddr := e.Resolver.ResolveAddr, e.Upstream.Listener.Addr().String()
	if opt.ResolverAddr != "" {
		resolverAddr = opt.ResolverAddr
	}
	if opt.AppAddr != "" {
		appAddr = opt.AppAddr
	}
	example := filepath.Join(conf, "example.conf")
	substitute(tb, example, "server 127.0.0.1:8080;", "server "+resolverAddr+";")
	substitute(tb, example, "server 127.0.0.1:3000;", "server "+appAddr+";")
	template, err := os.ReadFile(example)
	if err != nil {
		tb.Fatal(err)
	}

	port := onFreePort(tb, "nginx", func(port int) *process {
		listen := strings.Replace(string(template), "    listen 80;", "    listen 127.0.0.1:"+strconv.Itoa(port)+";", 1)
		if listen == string(template) {
			tb.Fatal(`nginx/example.conf: "    listen 80;" not found`)
		}
		const origin = "    set $authresolver_origin https://app.example.com;"
		if !strings.Contains(listen, origin) {
			tb.Fatalf("nginx/example.conf: %q not found", origin)
		}
		listen = strings.Replace(listen, origin, "    set $authresolver_origin http://127.0.0.1:"+strconv.Itoa(port)+";", 1)
		if err := os.WriteFile(example, []byte(listen), 0o644); err != nil {
			tb.Fatal(err)
		}
		cmd := exec.Command(bin, "-p", dir, "-c", filepath.Join(conf, "nginx.conf"), "-e", "stderr")
		p, err := startProcess(tb, "nginx", cmd, nil)
		if err != nil {
			tb.Fatal(err)
		}
		return p
	}, func(p *process, port int) error {
		return waitHTTP(p, "http://127.0.0.1:"+strconv.Itoa(port)+"/healthz", http.StatusOK)
	})
	return "http://127.0.0.1:" + strconv.Itoa(port)
}

// caddyOptions are the Caddyfile's environment variables a test sets.
type caddyOptions struct {
	// ClaimHeaders is CLAIM_HEADERS: the claim headers to copy.
	ClaimHeaders string
	// ResolverAddr and AppAddr replace the resolver and the echo upstream
	// of the env (host:port), e.g. with a tap or another app.
	ResolverAddr, AppAddr string
}

// startCaddy runs the shipped caddy/Caddyfile, unchanged, in front of e and
// returns the base URL. The Caddyfile reads its addresses from environment
// variables.
func startCaddy(tb testing.TB, e *env, opt caddyOptions) string {
	tb.Helper()
	bin := lookPath(tb, "caddy", "caddy")
	resolverAddr, appAddr := e.Resolver.ResolveAddr, e.Upstream.Listener.Addr().String()
	if opt.ResolverAddr != "" {
		resolverAddr = opt.ResolverAddr
	}
	if opt.AppAddr != "" {
		appAddr = opt.AppAddr
	}
	dir := tb.TempDir()
	base := func(port int) string { return "http://127.0.0.1:" + strconv.Itoa(port) }
	port := onFreePort(tb, "caddy", func(port int) *process {
		cmd := exec.Command(bin, "run", "--adapter", "caddyfile", "--config", filepath.Join(repoRoot, "caddy", "Caddyfile"))
		cmd.Dir = dir
		cmd.Env = append(os.Environ(),
			"HOME="+dir,
			"XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
			"XDG_DATA_HOME="+filepath.Join(dir, "data"),
			"SITE_ADDRESS="+base(port),
			"AUTHRESOLVER_ADDR="+resolverAddr,
			"APP_ADDR="+appAddr,
			"CADDY_ADMIN=off",
			"CLAIM_HEADERS="+opt.ClaimHeaders,
		)
		p, err := startProcess(tb, "caddy", cmd, nil)
		if err != nil {
			tb.Fatal(err)
		}
		return p
	}, func(p *process, port int) error {
		return waitHTTP(p, base(port)+"/healthz", http.StatusOK)
	})
	return base(port)
}

// substitute replaces old with replacement in file, failing unless old occurs
// exactly once: a shipped config that changed shape must fail loudly, not
// be tested half-substituted.
func substitute(tb testing.TB, file, old, replacement string) {
	tb.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		tb.Fatal(err)
	}
	if n := strings.Count(string(b), old); n != 1 {
		tb.Fatalf("%s: %q occurs %d times, want 1", filepath.Base(file), old, n)
	}
	if err := os.WriteFile(file, []byte(strings.Replace(string(b), old, replacement, 1)), 0o644); err != nil {
		tb.Fatal(err)
	}
}
