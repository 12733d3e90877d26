package admin_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/authresolver/authresolver/admin"
	"github.com/authresolver/authresolver/session"
)

var errStopped = errors.New("store stopped")

var knownMethods = map[string]bool{
	"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true,
	"DELETE": true, "OPTIONS": true, "CONNECT": true, "TRACE": true,
}

// stoppedStore is a session store that cannot be reached.
type stoppedStore struct{}

func (stoppedStore) Create(context.Context, session.Params) (session.Created, error) {
	return session.Created{}, errStopped
}
func (stoppedStore) List(context.Context, string) ([]session.Session, error) { return nil, errStopped }
func (stoppedStore) Revoke(context.Context, string) (session.Revoked, error) {
	return session.Revoked{}, errStopped
}
func (stoppedStore) RevokeUser(context.Context, string) (int, error) { return 0, errStopped }
func (stoppedStore) RevokeToken(context.Context, string, string, time.Time) error {
	return errStopped
}
func (stoppedStore) RevokeUserTokens(context.Context, string, string, time.Time, time.Duration) error {
	return errStopped
}

// FuzzAdmin sends arbitrary admin calls — method, raw path with any
// escapes, JSON body — as net/http would parse them off the wire, to an
// API over a working in-memory store or a stopped one. It never panics,
// answers every error as JSON with a code and a message, and answers 5xx
// only as 503 from the stopped store.
//
//	go test -run '^$' -fuzz FuzzAdmin -fuzztime 2m -parallel 1 ./admin
func FuzzAdmin(f *testing.F) {
	id := string(session.NewID())
	for _, seed := range []struct {
		method, path, body string
	}{
		{"POST", "/v1/sessions", `{"user_id":"alice@example.com","ttl":"1h","roles":["admin"],"amr":["pwd"],"attributes":{"email":"a@example.com"}}`},
		{"POST", "/v1/sessions", `{"user_id":"a/b","anonymous":true,"verified":true}`},
		{"GET", "/v1/users/alice%40example.com/sessions", ""},
		{"DELETE", "/v1/users/a%2Fb/sessions", ""},
		{"GET", "/v1/users/a%252Fb/sessions", ""},
		{"GET", "/v1/users/%C3%A9%20x/sessions", ""},
		{"DELETE", "/v1/users/%zz/sessions", ""},
		{"DELETE", "/v1/sessions/" + id, ""},
		{"DELETE", "/v1/sessions/%41" + id[1:], ""},
		{"POST", "/v1/revocations", `{"jti":"j","expires_at":"2030-01-01T00:00:00Z","issuer":"https://idp.example"}`},
		{"POST", "/v1/revocations", `{"user_id":"u","before":"2020-01-01T00:00:00Z"}`},
		{"POST", "/v1/revocations", `{"user_id":"u","issuer":""}`},
		{"PUT", "/v1/sessions", `{}`},
		{"GET", "/v1/../v1/users/x/sessions", ""},
	} {
		f.Add(seed.method, seed.path, seed.body, false)
		f.Add(seed.method, seed.path, seed.body, true)
	}
	f.Fuzz(func(t *testing.T, method, path, body string, down bool) {
		raw := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: admin\r\nAuthorization: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
			method, path, bearer, len(body), body)
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
		if err != nil {
			return // net/http answers 400 before any handler runs
		}
		var s interface {
			admin.Sessions
			admin.SessionRevoker
			admin.TokenRevoker
		} = session.NewMemoryStore(session.Options{})
		if down {
			s = stoppedStore{}
		}
		r := chi.NewRouter()
		admin.New(admin.Options{
			Sessions: s, Revoker: s, Tokens: s, Token: token,
			Lifetime: 24 * time.Hour, RevocationTTL: time.Hour, Leeway: 30 * time.Second,
		}).Mount(r)
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)

		if w.Code >= 500 && (w.Code != http.StatusServiceUnavailable || !down) {
			t.Fatalf("%s %q (store down: %v) = %d %s", method, path, down, w.Code, w.Body)
		}
		// chi answers a method it does not know with an empty 405 in the
		// caller's router, before any admin route is consulted.
		if w.Code < 400 || !strings.HasPrefix(req.URL.Path, "/v1/") || !knownMethods[req.Method] {
			return
		}
		var answer struct{ Error, Message string }
		if err := json.Unmarshal(w.Body.Bytes(), &answer); err != nil || answer.Error == "" || answer.Message == "" {
			t.Fatalf("%s %q = %d with body %q: want a JSON error with a code and a message", method, path, w.Code, w.Body)
		}
	})
}
