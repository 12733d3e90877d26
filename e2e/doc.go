// Package e2e runs the built authresolver binary behind the real proxies the
// project ships configurations for: NGINX (nginx/), Caddy (caddy/), against a
// real redis-server, an httptest issuer serving a JWKS and an upstream that
// echoes the headers it receives. Traefik and Envoy cannot be installed on the
// test machines; their contracts are covered by sending the resolver exactly
// what they send.
//
// The configurations are used as shipped: only listen ports, upstream
// addresses and file paths are substituted. A missing nginx, caddy or
// redis-server skips the tests that need it, unless CI=true.
package e2e
