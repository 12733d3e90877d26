package login_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/authresolver/authresolver/login"
)

// FuzzTarget: whatever the forwarded headers say, a Location is the login
// URL with the original URL as one encoded parameter, and that URL is an
// http(s) URL without userinfo on an allowed host, with a path that a
// browser cannot read as another host.
func FuzzTarget(f *testing.F) {
	f.Add("", "https", "app.example.com", "/x?y=1")
	f.Add("https://app.example.com/a", "", "", "")
	f.Add(`https:/\evil.example`, "", "", "")
	f.Add("", "https", "app.example.com", "//evil.example")
	f.Add("", "https", "app.example.com", "@evil.example")
	f.Add("", "https", "a.apps.example.com", "/%0d%0a")
	rd, err := login.New(login.Options{URL: "https://auth.example.com/login", AllowedHosts: []string{"app.example.com", ".apps.example.com"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, orig, proto, host, uri string) {
		h := http.Header{}
		for name, v := range map[string]string{"X-Original-Url": orig, "X-Forwarded-Proto": proto, "X-Forwarded-Host": host, "X-Forwarded-Uri": uri} {
			if v != "" {
				h[name] = []string{v}
			}
		}
		loc, err := rd.Target(h)
		if err != nil {
			return
		}
		rest, ok := strings.CutPrefix(loc, "https://auth.example.com/login?redirect_uri=")
		if !ok || strings.ContainsAny(rest, "&#\r\n") {
			t.Fatalf("Location %q", loc)
		}
		back, err := url.QueryUnescape(rest)
		if err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(back)
		if err != nil {
			t.Fatal(err)
		}
		host = strings.ToLower(u.Hostname())
		if (u.Scheme != "http" && u.Scheme != "https") || u.User != nil || strings.HasPrefix(u.Path, "//") ||
			(host != "app.example.com" && !strings.HasSuffix(host, ".apps.example.com")) ||
			strings.ContainsAny(back, "\\\r\n\t ") {
			t.Fatalf("unsafe original URL %q accepted", back)
		}
	})
}
