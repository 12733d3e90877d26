package admin_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/authresolver/authresolver/admin"
	"github.com/authresolver/authresolver/resolver"
	"github.com/authresolver/authresolver/session"
)

// escapeExcept percent-encodes every byte of s but ASCII letters, digits
// and the bytes in keep, as the encoders of other languages do.
func escapeExcept(s, keep string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(keep, c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// encoders are what clients put in a path segment.
var encoders = []struct {
	name   string
	encode func(string) string
}{
	{"javascript encodeURIComponent", func(s string) string { return escapeExcept(s, "-_.!~*'()") }},
	{"python quote safe=''", func(s string) string { return escapeExcept(s, "_.-~") }},
	{"go url.PathEscape", url.PathEscape},
}

// TestAdminPathEncodings creates a session for users whose ids need
// escaping in a path, lists and revokes them through the path in each
// client's encoding, and checks that the listing was right and the revoked
// session no longer resolves.
func TestAdminPathEncodings(t *testing.T) {
	users := []string{
		"alice@example.com",
		"tenant:42", "a+b", "a,b", "a;b", "a=b", "a$b", "a&b", "a/b", "a b", "zoë é",
		"a/b:c+d,e;f=g$h&i j é",
		"/leading", "trailing/", "a//b",
		"100%",
		"a%2Fb", // the literal characters %2F: sent as %252F
		"..", "a/../b", "?x#y",
	}
	for name, newStore := range stores(t) {
		t.Run(name, func(t *testing.T) {
			s := newStore(t, session.Options{})
			srv := server(t, s, admin.Options{})
			for _, user := range users {
				for _, enc := range encoders {
					path := "/v1/users/" + enc.encode(user) + "/sessions"
					t.Run(fmt.Sprintf("%q/%s", user, enc.name), func(t *testing.T) {
						body := fmt.Sprintf(`{"user_id":%q}`, user)
						created := call(t, srv, "POST", "/v1/sessions", bearer, body)
						if created.Status != 201 {
							t.Fatalf("create: %d %v", created.Status, created.Body)
						}
						id := created.Body["session_id"].(string)

						list := call(t, srv, "GET", path, bearer, "")
						if list.Status != 200 {
							t.Fatalf("GET %s = %d %v", path, list.Status, list.Body)
						}
						var got []string
						for _, e := range list.Body["sessions"].([]any) {
							got = append(got, e.(map[string]any)["user_id"].(string))
						}
						if diff := cmp.Diff([]string{user}, got); diff != "" {
							t.Errorf("GET %s: user ids (-want +got):\n%s", path, diff)
						}

						if got := call(t, srv, "DELETE", path, bearer, ""); got.Status != 204 {
							t.Fatalf("DELETE %s = %d %v", path, got.Status, got.Body)
						}
						empty := call(t, srv, "GET", path, bearer, "")
						if diff := cmp.Diff(map[string]any{"sessions": []any{}}, empty.Body); diff != "" {
							t.Errorf("GET %s after revoke-all (-want +got):\n%s", path, diff)
						}
						_, reason, err := s.Lookup(t.Context(), id)
						if err != nil || reason != resolver.ReasonSessionNotFound {
							t.Errorf("Lookup after revoke-all = %q, %v; want %q", reason, err, resolver.ReasonSessionNotFound)
						}
					})
				}
			}
		})
	}
}

// TestAdminSessionIDPath checks that a session ID in the path is decoded
// once too: an escaped letter is the letter.
func TestAdminSessionIDPath(t *testing.T) {
	s := session.NewMemoryStore(session.Options{})
	srv := server(t, s, admin.Options{})
	created := call(t, srv, "POST", "/v1/sessions", bearer, `{"user_id":"u"}`)
	id := created.Body["session_id"].(string)
	var escaped strings.Builder
	for i := 0; i < len(id); i++ {
		fmt.Fprintf(&escaped, "%%%02X", id[i]) // every letter escaped
	}
	path := "/v1/sessions/" + escaped.String()
	if got := call(t, srv, "DELETE", path, bearer, ""); got.Status != 204 {
		t.Fatalf("DELETE %s = %d %v", path, got.Status, got.Body)
	}
	if _, reason, _ := s.Lookup(t.Context(), id); reason != resolver.ReasonSessionNotFound {
		t.Errorf("Lookup after revoke = %q, want %q", reason, resolver.ReasonSessionNotFound)
	}
}

// TestAdminInvalidEscape checks that a path with an invalid escape is a
// 400: from net/http when it parses the request line, and from the API
// when a request reaches it with such a raw path all the same.
func TestAdminInvalidEscape(t *testing.T) {
	srv := server(t, session.NewMemoryStore(session.Options{}), admin.Options{})
	for _, path := range []string{"/v1/users/a%zz/sessions", "/v1/users/a%/sessions", "/v1/sessions/%G1"} {
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "DELETE %s HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\nConnection: close\r\n\r\n", path, bearer)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		conn.Close()
		if resp.StatusCode != 400 {
			t.Errorf("DELETE %s over the wire = %d, want 400", path, resp.StatusCode)
		}
	}

	r := chi.NewRouter()
	admin.New(withDefaults(session.NewMemoryStore(session.Options{}), admin.Options{})).Mount(r)
	for _, tc := range []struct {
		method, path, raw, want string
	}{
		{"GET", "/v1/users/a/sessions", "/v1/users/a%zz/sessions", "invalid_user_id"},
		{"DELETE", "/v1/users/a/sessions", "/v1/users/a%/sessions", "invalid_user_id"},
		{"DELETE", "/v1/sessions/a", "/v1/sessions/%G1", "invalid_session_id"},
	} {
		req := httptest.NewRequest(tc.method, tc.path, nil)
		req.URL.RawPath = tc.raw
		req.Header.Set("Authorization", bearer)
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		if w.Code != 400 || !strings.Contains(w.Body.String(), `"`+tc.want+`"`) {
			t.Errorf("%s raw path %s = %d %s, want 400 %s", tc.method, tc.raw, w.Code, w.Body, tc.want)
		}
	}
}
