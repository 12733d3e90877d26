// Package e2e runs the built authresolver binary behind the real proxies the
// project ships configurations for: NGINX (nginx/), Caddy (caddy/), against a
// real redis-server, an httptest issuer serving a JWKS and an upstream that
// echoes the headers it receives. The hardening tests put CGI-style apps
// behind the proxies (an echo app that names headers as PHP, WSGI and Rack do,
// and PHP's built-in server) and a tap in front of the resolver. Traefik and
// Envoy cannot be installed on the test machines; their contracts are covered
// by sending the resolver exactly what they send, and their hardening
// settings by reading the shipped files as the proxy applies them.
//
// The configurations are used as shipped: only listen ports, upstream
// addresses and file paths are substituted. A missing nginx, caddy, php or
// redis-server skips the tests that need it, unless CI=true.
package e2e
