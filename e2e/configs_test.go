package e2e

import (
	"net/textproto"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Traefik and Envoy cannot run on the test machines. These tests read the
// shipped files and check each hardening setting the way the proxy applies
// it: Go regexps as Traefik compiles them (RE2 for Envoy's safe_regex), header
// names as Go canonicalizes them.

func readShipped(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, path))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// spellings returns name with its separators as "-", "_" and "." and in
// lower case, each as Go (Traefik) canonicalizes it.
func spellings(name string) []string {
	var out []string
	for _, sep := range []string{"-", "_", "."} {
		for _, s := range []string{strings.ReplaceAll(name, "-", sep), strings.ToLower(strings.ReplaceAll(name, "-", sep))} {
			out = append(out, textproto.CanonicalMIMEHeaderKey(s))
		}
	}
	return out
}

// unsafePaths are paths a proxy must refuse (finding 2); safePaths must not be.
var (
	unsafePaths = []string{"/public/..;/admin/users", "/admin;/users", "/public/..%3B/admin", "/admin%3b/x", `/public/..\admin`, "/public/..%5Cadmin", "/public%5c..%5cadmin"}
	safePaths   = []string{"/", "/public/x", "/admin/users", "/x/y.json"}
)

func TestTraefikHardeningConfig(t *testing.T) {
	static := readShipped(t, "traefik/traefik.yml")
	dynamic := readShipped(t, "traefik/dynamic.yml")

	t.Run("underscore header names are refused", func(t *testing.T) {
		if !regexp.MustCompile(`(?m)^\s+underscoreHeadersStrategy:\s*reject\s*$`).MatchString(static) {
			t.Error("traefik.yml: want entryPoints.web.http.underscoreHeadersStrategy: reject")
		}
	})

	t.Run("encoded ; and \\ are refused", func(t *testing.T) {
		for _, opt := range []string{"allowEncodedSemicolon", "allowEncodedBackSlash", "allowEncodedSlash"} {
			if !regexp.MustCompile(`(?m)^\s+` + opt + `:\s*false\s*$`).MatchString(static) {
				t.Errorf("traefik.yml: want encodedCharacters.%s: false", opt)
			}
		}
	})

	t.Run("authResponseHeadersRegex strips every spelling", func(t *testing.T) {
		ms := regexp.MustCompile(`(?m)^\s*authResponseHeadersRegex:\s*"?([^"\n]+?)"?\s*$`).FindAllStringSubmatch(dynamic, -1)
		if len(ms) != 4 {
			t.Fatalf("dynamic.yml: %d authResponseHeadersRegex, want one per middleware (4)", len(ms))
		}
		for _, m := range ms {
			re := regexp.MustCompile(m[1])
			for _, name := range append(identityHeaders, "X-Auth-Assertion", "X-Auth-Email") {
				for _, s := range spellings(name) {
					if !re.MatchString(s) {
						t.Errorf("%q does not strip a client's %s", m[1], s)
					}
				}
			}
			for _, name := range []string{"Authorization", "X-Authresolver-Require", "X-Forwarded-For", "X-Author", "Xauth-User"} {
				if re.MatchString(name) {
					t.Errorf("%q would strip (and copy) %s", m[1], name)
				}
			}
		}
	})

	section := dynamic[strings.Index(dynamic, "  routers:"):strings.Index(dynamic, "  services:")]
	routers := regexp.MustCompile(`(?ms)^    (app[\w-]*):\n(.*?)\n\n`).FindAllStringSubmatch(section, -1)
	if len(routers) != 4 {
		t.Fatalf("dynamic.yml: %d routers, want 4", len(routers))
	}
	// ruleMatches evaluates the PathPrefix/PathRegexp rules of dynamic.yml
	// (conjunctions, "!" negation) on a routing path.
	ruleMatches := func(t *testing.T, rule, path string) bool {
		t.Helper()
		for _, term := range strings.Split(rule, "&&") {
			term = strings.TrimSpace(term)
			neg := strings.HasPrefix(term, "!")
			m := regexp.MustCompile("^!?(PathPrefix|PathRegexp)\\(`([^`]*)`\\)$").FindStringSubmatch(term)
			if m == nil {
				t.Fatalf("rule term %q: not understood", term)
			}
			ok := strings.HasPrefix(path, m[2])
			if m[1] == "PathRegexp" {
				ok = regexp.MustCompile(m[2]).MatchString(path)
			}
			if ok == neg {
				return false
			}
		}
		return true
	}

	t.Run("routers", func(t *testing.T) {
		for _, r := range routers {
			name, body := r[1], r[2]
			rm := regexp.MustCompile(`(?m)^\s+rule:\s*'([^']*)'\s*$`).FindStringSubmatch(body)
			if rm == nil {
				t.Fatalf("router %s: no single-quoted rule", name)
			}
			if !regexp.MustCompile(`(?m)^\s+middlewares:\s*\[drop-connection-tokens,`).MatchString(body) {
				t.Errorf("router %s: drop-connection-tokens must be its first middleware", name)
			}
			for _, p := range unsafePaths {
				// Traefik routes on the escaped path with unreserved
				// characters decoded; Go escapes a raw "\" as %5C.
				routing := strings.ReplaceAll(p, `\`, "%5C")
				if ruleMatches(t, rm[1], routing) {
					t.Errorf("router %s matches %s", name, p)
				}
			}
			if name == "app-browser" {
				for _, p := range []string{"/app", "/app/", "/app/page"} {
					if !ruleMatches(t, rm[1], p) {
						t.Errorf("router %s does not match %s", name, p)
					}
				}
				if ruleMatches(t, rm[1], "/apple") {
					t.Errorf("router %s matches /apple", name)
				}
			}
			if name == "app-admin" {
				for _, p := range []string{"/admin", "/Admin/users", "/ADMIN/x", "/aDmIn"} {
					if !ruleMatches(t, rm[1], p) {
						t.Errorf("router %s does not match %s", name, p)
					}
				}
			}
		}
		for _, p := range safePaths {
			n := 0
			for _, r := range routers {
				if ruleMatches(t, regexp.MustCompile(`rule:\s*'([^']*)'`).FindStringSubmatch(r[2])[1], p) {
					n++
				}
			}
			if n == 0 {
				t.Errorf("no router matches %s", p)
			}
		}
	})

	t.Run("Connection is replaced", func(t *testing.T) {
		if !regexp.MustCompile(`(?m)^    drop-connection-tokens:\n      headers:\n        customRequestHeaders:\n          Connection: "Upgrade"$`).MatchString(dynamic) {
			t.Error(`dynamic.yml: want middleware drop-connection-tokens setting Connection: "Upgrade"`)
		}
	})
}

func TestEnvoyHardeningConfig(t *testing.T) {
	conf := readShipped(t, "envoy/envoy.yaml")

	t.Run("underscore header names are refused", func(t *testing.T) {
		if !regexp.MustCompile(`(?m)^\s+common_http_protocol_options:\n\s+headers_with_underscores_action: REJECT_REQUEST$`).MatchString(conf) {
			t.Error("envoy.yaml: want common_http_protocol_options.headers_with_underscores_action: REJECT_REQUEST")
		}
	})

	t.Run("dot header names are refused", func(t *testing.T) {
		if !strings.Contains(conf, `string.find(key, ".", 1, true)`) || !strings.Contains(conf, `request_handle:respond({[":status"] = "400"}`) {
			t.Error("envoy.yaml: the Lua filter must answer 400 to a header name with a dot")
		}
	})

	t.Run("; and \\ in the path are 400 before any other route", func(t *testing.T) {
		routes := conf[strings.Index(conf, "routes:"):]
		m := regexp.MustCompile(`(?s)^routes:\s*\n(?:\s*#[^\n]*\n)*\s*- match:\s*\n\s*safe_regex: \{ regex: '([^']*)' \}\s*\n\s*direct_response:\s*\n\s*status: 400`).FindStringSubmatch(routes)
		if m == nil {
			t.Fatal("envoy.yaml: the first route must be a safe_regex match with direct_response status 400")
		}
		re := regexp.MustCompile("^(?:" + m[1] + ")$") // RE2 full match, as Envoy
		for _, p := range unsafePaths {
			if !re.MatchString(p) {
				t.Errorf("%q does not match %s", m[1], p)
			}
		}
		for _, p := range safePaths {
			if re.MatchString(p) {
				t.Errorf("%q matches %s", m[1], p)
			}
		}
	})

	t.Run("admin prefix is case-insensitive", func(t *testing.T) {
		if !strings.Contains(conf, "- match: { prefix: /admin, case_sensitive: false }") {
			t.Error("envoy.yaml: want the /admin route with case_sensitive: false")
		}
	})
}
