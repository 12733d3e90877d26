package main

import (
	"context"
	"github.com/authresolver/authresolver/internal/syncbuf"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDevPrintsWorkingCredentials runs `authresolver dev` and follows what it
// printed: the token and the cookie resolve, the role check forbids, the
// printed revoke call revokes.
func TestDevPrintsWorkingCredentials(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncbuf.Buffer{}
	done := make(chan int, 1)
	env := map[string]string{"AUTHRESOLVER_LISTEN_ADDR": "127.0.0.1:0", "AUTHRESOLVER_ADMIN_ADDR": "127.0.0.1:0", "AUTHRESOLVER_DEMO_ADDR": "127.0.0.1:0", "AUTHRESOLVER_LOG_FORMAT": "json"}
	go func() { done <- run(ctx, []string{"dev"}, env, out, io.Discard) }()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("dev exited %d", code)
		}
	}()
	waitFor(t, 10*time.Second, "dev output", func() bool { return strings.Contains(out.String(), "metrics") })
	text := out.String()
	curl := regexp.MustCompile(`curl -i '?(http://[^ ']+)'? (?:-H '([^:]+): ([^']+)')?`)
	var calls [][]string
	for _, line := range strings.Split(text, "\n") {
		if m := curl.FindStringSubmatch(line); m != nil && !strings.Contains(line, "-X DELETE") {
			calls = append(calls, m)
		}
	}
	wantCodes := []int{200, 200, 403, 401, 401}
	if len(calls) != len(wantCodes) {
		t.Fatalf("found %d curl lines, want %d:\n%s", len(calls), len(wantCodes), text)
	}
	revoke := regexp.MustCompile(`curl -i -X DELETE (\S+) -H 'Authorization: ([^']+)'`).FindStringSubmatch(text)
	if revoke == nil {
		t.Fatalf("no revoke line:\n%s", text)
	}
	for i, c := range calls {
		if i == 4 { // the line after the printed revoke
			req := newRequest(t, "DELETE", revoke[1], map[string]string{"Authorization": revoke[2]})
			if code := do(t, req); code != 204 {
				t.Fatalf("printed revoke = %d, want 204", code)
			}
		}
		hdr := map[string]string{}
		if c[2] != "" {
			hdr[c[2]] = c[3]
		}
		if code, _, _ := get(t, c[1], hdr); code != wantCodes[i] {
			t.Errorf("printed curl %d (%s) = %d, want %d", i, c[1], code, wantCodes[i])
		}
	}
}
