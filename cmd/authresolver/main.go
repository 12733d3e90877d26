// Command authresolver is a forward-authentication service: reverse proxies
// and gateways send it the headers of each request and it answers who the
// caller is (200 + identity headers) or a denial, from a Bearer JWT verified
// against the issuer's JWKS or a session cookie looked up in Redis.
//
// Usage:
//
//	authresolver [serve]    the production server, configured by AUTHRESOLVER_* variables
//	authresolver dev        a self-contained demo: in-memory store, its own issuer, ready credentials, a browser demo
//	authresolver version    print the version
//	authresolver healthcheck  exit 0 if the local server's /healthz answers 200 (for container HEALTHCHECKs)
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// version is stamped at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], environMap(os.Environ()), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `usage: authresolver [serve|dev|version|healthcheck]

  serve        run the server (default); configuration from AUTHRESOLVER_* variables
  dev          run a self-contained demo server; print ready credentials and a URL to open
  version      print the version
  healthcheck  exit 0 if the local server answers /healthz with 200
`

// run is main without the process: tests call it with their own environment
// and a context they cancel. It returns the exit code: 2 for bad usage or
// configuration, 1 for a failure while running.
func run(ctx context.Context, args []string, environ map[string]string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 {
		cmd = args[0]
	}
	if len(args) > 1 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch cmd {
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "authresolver", version)
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	case "healthcheck":
		return healthcheck(ctx, environ, stderr)
	case "serve", "dev":
	default:
		fmt.Fprintf(stderr, "authresolver: unknown command %q\n%s", cmd, usage)
		return 2
	}
	cfg, err := loadConfig(environ)
	if err != nil {
		fmt.Fprintln(stderr, "authresolver:", err)
		return 2
	}
	logger := newLogger(cfg, stderr)
	if cmd == "dev" {
		err = dev(ctx, cfg, logger, stdout)
	} else {
		err = serve(ctx, cfg, logger, nil)
	}
	var ce *configError
	switch {
	case errors.As(err, &ce):
		fmt.Fprintln(stderr, "authresolver:", err)
		return 2
	case err != nil:
		logger.Error("stopped", "error", err)
		return 1
	}
	return 0
}

// environMap turns os.Environ's KEY=VALUE list into a map.
func environMap(list []string) map[string]string {
	m := make(map[string]string, len(list))
	for _, kv := range list {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}
