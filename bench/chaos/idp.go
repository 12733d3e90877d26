package main

import (
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// idpMode is how the identity provider behaves; scenario 4 walks through
// them.
type idpMode int32

const (
	idpUp   idpMode = iota
	idpDown         // nothing listens: connections are refused
	idp500          // every request answers 500
	idpHang         // requests are read and never answered
	numIDPModes
)

var idpModeNames = [numIDPModes]string{"up", "down (refused)", "500", "hanging"}

// idp is the identity provider on a fixed loopback port: it serves the
// issuer's JWKS at /jwks and an RFC 7662 introspection endpoint at
// /introspect (client_secret_basic), counts every request by mode, and can
// be taken down, made to fail or to hang without changing its address.
type idp struct {
	addr string

	// opaque are the active opaque tokens: token → user. Guarded by mu.
	opaque map[string]string

	mu    sync.Mutex
	mode  idpMode
	srv   *http.Server  // nil while down
	hang  chan struct{} // closed when the hanging mode ends
	jwks  []byte
	count [numIDPModes]atomic.Int64
}

func startIDP(jwks []byte) (*idp, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("idp: %w", err)
	}
	i := &idp{addr: ln.Addr().String(), jwks: jwks, hang: make(chan struct{}), opaque: map[string]string{}}
	i.serve(ln)
	return i, nil
}

// URL is where the JWKS is served.
func (i *idp) URL() string { return "http://" + i.addr + "/jwks" }

// IntrospectionURL is the RFC 7662 endpoint.
func (i *idp) IntrospectionURL() string { return "http://" + i.addr + "/introspect" }

// Introspection client credentials the replicas are given.
const (
	introspectionClient = "chaos-resolver"
	introspectionSecret = "chaos-secret"
)

// addOpaque makes token an active opaque token of user.
func (i *idp) addOpaque(token, user string) {
	i.mu.Lock()
	i.opaque[token] = user
	i.mu.Unlock()
}

func (i *idp) serve(ln net.Listener) {
	i.srv = &http.Server{Handler: http.HandlerFunc(i.handle), ReadHeaderTimeout: 5 * time.Second}
	go func(s *http.Server) { _ = s.Serve(ln) }(i.srv)
}

func (i *idp) handle(w http.ResponseWriter, r *http.Request) {
	i.mu.Lock()
	mode, hang, jwks := i.mode, i.hang, i.jwks
	i.mu.Unlock()
	i.count[mode].Add(1)
	switch mode {
	case idp500:
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	case idpHang:
		select {
		case <-hang:
		case <-r.Context().Done():
		}
		return // an empty 200 at worst, never keys
	}
	switch r.URL.Path {
	case "/jwks":
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(jwks)
	case "/introspect":
		i.introspect(w, r)
	default:
		http.NotFound(w, r)
	}
}

// introspect answers as RFC 7662 says: active tokens with sub, iat and exp,
// anything else {"active":false}.
func (i *idp) introspect(w http.ResponseWriter, r *http.Request) {
	id, secret, ok := r.BasicAuth()
	if r.Method != http.MethodPost || !ok || id != introspectionClient || secret != introspectionSecret {
		http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
		return
	}
	i.mu.Lock()
	user, active := i.opaque[r.PostFormValue("token")]
	i.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if !active {
		_, _ = w.Write([]byte(`{"active":false}`))
		return
	}
	now := time.Now()
	fmt.Fprintf(w, `{"active":true,"sub":%q,"iat":%d,"exp":%d,"jti":%q,"client_id":"chaos-app","token_type":"Bearer"}`,
		user, now.Unix(), now.Add(2*time.Hour).Unix(), "jti-"+user)
}

// setJWKS replaces the published key set (a key rotation).
func (i *idp) setJWKS(b []byte) {
	i.mu.Lock()
	i.jwks = b
	i.mu.Unlock()
}

// setMode switches the behaviour. Going down closes the listener and every
// connection; coming back listens on the same address again.
func (i *idp) setMode(m idpMode) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.mode == idpHang && m != idpHang {
		close(i.hang)
		i.hang = make(chan struct{})
	}
	switch {
	case m == idpDown && i.srv != nil:
		_ = i.srv.Close()
		i.srv = nil
	case m != idpDown && i.srv == nil:
		var ln net.Listener
		var err error
		for range 100 { // the closed listener's port may take a moment to free
			if ln, err = net.Listen("tcp", i.addr); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil {
			return fmt.Errorf("idp: listen again on %s: %w", i.addr, err)
		}
		i.serve(ln)
	}
	i.mode = m
	return nil
}

// requests returns how many requests reached the IdP in each mode.
func (i *idp) requests() [numIDPModes]int64 {
	var out [numIDPModes]int64
	for m := range out {
		out[m] = i.count[m].Load()
	}
	return out
}

func (i *idp) close() {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.mode == idpHang {
		close(i.hang)
		i.hang = make(chan struct{})
	}
	if i.srv != nil {
		_ = i.srv.Close()
		i.srv = nil
	}
}
