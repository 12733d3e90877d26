package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"time"
)

// The harness re-runs its own binary as the ceiling and as NGINX's upstream,
// so that their CPU and memory are their own and not the load generator's.
// The parent passes the listening socket as file descriptor 3.

// ceilingHeaders is what an allow of the resolver carries for a JWT: the ten
// identity headers and Cache-Control, and no body.
var ceilingHeaders = map[string][]string{
	"X-Auth-Session-Valid":            {"true"},
	"X-Auth-User-Id":                  {"user-ceiling"},
	"X-Auth-User-Anonymous":           {"false"},
	"X-Auth-User-Verified":            {"true"},
	"X-Auth-User-Roles":               {"reader,writer"},
	"X-Auth-Session-Amr":              {"pwd otp"},
	"X-Auth-Session-Authenticated-At": {"1767225600"},
	"X-Auth-Expires-At":               {"1767232800"},
	"X-Auth-Credential":               {"jwt"},
	"X-Auth-Issuer":                   {"https://issuer.bench.test"},
	"Cache-Control":                   {"private, max-age=5"},
}

// introspectionAnswer is the RFC 7662 answer of the "introspection"
// child for the opaque token of scenario 2i: the same identity as the JWT
// of scenario 2, so that the allow carries the same headers.
const introspectionAnswer = `{"active":true,"sub":"user-hot","iss":"https://issuer.bench.test","iat":%d,"exp":%d,"jti":"jti-opaque",` +
	`"email_verified":true,"roles":["reader","writer"],"amr":["pwd","otp"],"scope":"openid profile","client_id":"bench","token_type":"Bearer"}`

// serveChild runs the ceiling ("ceiling"), the upstream ("upstream") or an
// introspection endpoint ("introspection") on the inherited listener until
// killed.
func serveChild(kind string) error {
	ln, err := net.FileListener(os.NewFile(3, "listener"))
	if err != nil {
		return fmt.Errorf("%s: inherited listener: %w", kind, err)
	}
	var h http.HandlerFunc
	switch kind {
	case "ceiling":
		// The same work an allow needs from net/http, and nothing else:
		// prepared header slices assigned without canonicalising.
		h = func(w http.ResponseWriter, _ *http.Request) {
			hdr := w.Header()
			for k, v := range ceilingHeaders {
				hdr[k] = v
			}
			w.WriteHeader(http.StatusOK)
		}
	case "upstream":
		body := []byte("ok\n")
		h = func(w http.ResponseWriter, _ *http.Request) {
			w.Header()["Content-Type"] = []string{"text/plain"}
			_, _ = w.Write(body)
		}
	case "introspection":
		now := time.Now()
		body := []byte(fmt.Sprintf(introspectionAnswer, now.Unix(), now.Add(2*time.Hour).Unix()))
		h = func(w http.ResponseWriter, r *http.Request) {
			if id, secret, ok := r.BasicAuth(); !ok || id != "bench" || secret != "bench-secret" {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			w.Header()["Content-Type"] = []string{"application/json"}
			_, _ = w.Write(body)
		}
	default:
		return fmt.Errorf("unknown -serve %q", kind)
	}
	// The resolver's listener settings (cmd/authresolver/serve.go).
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	return srv.Serve(ln)
}
