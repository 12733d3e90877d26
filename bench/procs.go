package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/authresolver/authresolver/internal/proc"
)

// startSelf runs this binary as the ceiling or the upstream and returns its
// address.
func startSelf(kind, dir string) (*proc.Proc, string, error) {
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
	p, err := proc.Start(kind, dir, cmd)
	if err != nil {
		return nil, "", err
	}
	return p, l.Addr().String(), nil
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
        set $authresolver_origin http://127.0.0.1:%[5]d;
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
        set $authresolver_origin http://127.0.0.1:%[6]d;
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
func startNginx(dir, repo, resolverAddr, upstreamAddr string) (*proc.Proc, nginxAddrs, error) {
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
		plain, err1 := proc.FreePort()
		auth, err2 := proc.FreePort()
		cached, err3 := proc.FreePort()
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
		// On SIGTERM the master stops its workers; killed, it would leave
		// them running.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
		p, err := proc.Start("nginx", dir, cmd)
		if err != nil {
			return nil, nginxAddrs{}, err
		}
		a := nginxAddrs{
			plain:  fmt.Sprintf("127.0.0.1:%d", plain),
			auth:   fmt.Sprintf("127.0.0.1:%d", auth),
			cached: fmt.Sprintf("127.0.0.1:%d", cached),
		}
		lastErr = proc.WaitFor(p, 10*time.Second, func() error { return proc.ExpectStatus("http://"+a.plain+"/", 200) })
		if lastErr == nil {
			return p, a, nil
		}
		p.Stop(3 * time.Second)
	}
	return nil, nginxAddrs{}, fmt.Errorf("nginx: %w (see %s)", lastErr, filepath.Join(dir, "nginx-error.log"))
}
