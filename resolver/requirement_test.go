package resolver

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func TestParseRequirement(t *testing.T) {
	tests := []struct {
		query         string
		allowOptional bool
		want          Requirement
		wantErr       bool
	}{
		{"", true, Requirement{}, false},
		{"optional=true", true, Requirement{Optional: true}, false},
		{"optional=false", true, Requirement{}, false},
		{"anonymous=false&verified=true", true, Requirement{DenyAnonymous: true, RequireVerified: true}, false},
		{"anonymous=true", true, Requirement{}, false},
		{"role=admin&role=ops&scope=read", true, Requirement{Roles: []string{"admin", "ops"}, Scopes: []string{"read"}}, false},
		{"role=org+admin&role=a%2Cb&role=caf%C3%A9", true, Requirement{Roles: []string{"org admin", "a,b", "café"}}, false},
		{"verified=true&verified=true", true, Requirement{RequireVerified: true}, false},
		{"role=admin&verified=true", false, Requirement{Roles: []string{"admin"}, RequireVerified: true}, false},
		{"login=redirect", true, Requirement{Login: LoginRedirect}, false},
		{"login=header&role=admin", false, Requirement{Login: LoginHeader, Roles: []string{"admin"}}, false},
		{"login=redirect&optional=false", true, Requirement{Login: LoginRedirect}, false},

		// Login: one of two values, once, never with optional=true.
		{"login=popup", true, Requirement{}, true},
		{"login=", true, Requirement{}, true},
		{"login=Redirect", true, Requirement{}, true},
		{"login=redirec%74", true, Requirement{}, true},
		{"login=redirect&login=header", true, Requirement{}, true},
		{"login=redirect&login=redirect", true, Requirement{}, true},
		{"login=redirect&optional=true", true, Requirement{}, true},
		{"optional=true&login=header", true, Requirement{}, true},

		// Unknown names: a typo never lifts a requirement.
		{"roles=admin", true, Requirement{}, true},
		{"Role=admin", true, Requirement{}, true},
		{"ro%6Ce=admin", true, Requirement{}, true},
		{"role=admin&x=1", true, Requirement{}, true},
		// Empty and unparsable values.
		{"role=", true, Requirement{}, true},
		{"scope=", true, Requirement{}, true},
		{"verified=", true, Requirement{}, true},
		{"verified", true, Requirement{}, true},
		{"verified=maybe", true, Requirement{}, true},
		{"verified=TRUE", true, Requirement{}, true},
		{"verified=1", true, Requirement{}, true},
		{"verified=tru%65", true, Requirement{}, true},
		{"role=%zz", true, Requirement{}, true},
		{"role=a%2", true, Requirement{}, true},
		{"role=a%00b", true, Requirement{}, true},
		{"role=%ff", true, Requirement{}, true},
		{"role=a=b", true, Requirement{}, true},
		{"role=a b", true, Requirement{}, true},
		{"role=é", true, Requirement{}, true},
		{"scope=a+b", true, Requirement{}, true},
		{"scope=a%5Cb", true, Requirement{}, true},
		{"role=" + strings.Repeat("r", maxRequirementValue+1), true, Requirement{}, true},
		{strings.Repeat("role=r&", maxRequirementValues) + "role=r", true, Requirement{}, true},
		// Odd separators, which url.ParseQuery half-accepts.
		{"role=admin;optional=true", true, Requirement{}, true},
		{"role=admin&", true, Requirement{}, true},
		{"&role=admin", true, Requirement{}, true},
		{"role=admin&&verified=true", true, Requirement{}, true},
		{"=admin", true, Requirement{}, true},
		// Repeated single-valued names with another value.
		{"optional=true&optional=false", true, Requirement{}, true},
		{"anonymous=false&anonymous=true", true, Requirement{}, true},
		{"verified=true&verified=false", true, Requirement{}, true},
		// optional is not accepted from the gateway header.
		{"optional=true", false, Requirement{}, true},
		{"optional=false", false, Requirement{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			got, err := ParseRequirement(tt.query, tt.allowOptional)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseRequirement(%q, %v) error = %v, want error %v", tt.query, tt.allowOptional, err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrInvalidRequirement) {
				t.Errorf("error %v does not wrap ErrInvalidRequirement", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("requirement (-want +got):\n%s", diff)
			}
		})
	}
}

// TestInvalidRequirementFailsClosed drives every form of invalid
// requirement through the handler, on the query and on the gateway header:
// 403 invalid_requirement with a valid credential, 401 without one (never
// the 200 of optional).
func TestInvalidRequirementFailsClosed(t *testing.T) {
	h := newTestHandler(t, nil)
	for _, q := range []string{
		"roles=admin", "role=", "verified=", "anonymous=", "verified=maybe", "role=%zz",
		"role=admin;x=y", "verified=true&verified=false", "optional=true&optional=false",
		"optional=true&roles=admin", "role=admin&",
	} {
		t.Run(q, func(t *testing.T) {
			const code, valid = "X-Auth-Error", "X-Auth-Session-Valid"
			for _, c := range []struct {
				name, method, target string
				hdr                  map[string]string
			}{
				{"query", "GET", "/resolve?" + q, nil},
				{"authgear query", "GET", "/_resolver/resolve?" + q, nil},
				{"gateway header", "POST", "/resolve/x", map[string]string{RequireHeader: q}},
			} {
				withCred := map[string]string{"Authorization": "Bearer " + tokenAlice}
				for k, v := range c.hdr {
					withCred[k] = v
				}
				got := do(t, h, c.method, c.target, withCred, code, valid)
				want := answer{403, map[string]string{code: "invalid_requirement", valid: "true"}}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("%s, valid credential (-want +got):\n%s", c.name, diff)
				}
				got = do(t, h, c.method, c.target, c.hdr, code, valid)
				want = answer{401, map[string]string{valid: "false"}}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("%s, no credential (-want +got):\n%s", c.name, diff)
				}
			}
		})
	}
}

// refPair is the documented grammar of one pair, written independently of
// ParseRequirement: a boolean name with a literal true/false, or role/scope
// with a value of unreserved-ish printable ASCII, %XX escapes and '+'.
var refPair = regexp.MustCompile(`^(?:(optional|anonymous|verified)=(true|false)|(role|scope)=((?:[\x21\x22\x24\x27-\x2a\x2c-\x3a\x3c\x3e-\x7e]|%[0-9A-Fa-f]{2}|\+)+))$`)

// refParse is the reference validator of the requirement grammar for the
// fuzz target. ok is false for anything the README does not allow.
func refParse(q string, allowOptional bool) (req Requirement, ok bool) {
	if q == "" {
		return req, true
	}
	bools := map[string]string{}
	for _, pair := range strings.Split(q, "&") {
		m := refPair.FindStringSubmatch(pair)
		if m == nil {
			return Requirement{}, false
		}
		if name := m[1]; name != "" {
			if name == "optional" && !allowOptional {
				return Requirement{}, false
			}
			if prev, seen := bools[name]; seen && prev != m[2] {
				return Requirement{}, false
			}
			bools[name] = m[2]
			continue
		}
		v := refUnescape(m[4])
		if len(v) > 256 || !utf8.ValidString(v) || strings.IndexFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
			return Requirement{}, false
		}
		if m[3] == "scope" {
			if strings.ContainsAny(v, " \"\\") {
				return Requirement{}, false
			}
			req.Scopes = append(req.Scopes, v)
		} else {
			req.Roles = append(req.Roles, v)
		}
	}
	if len(req.Roles) > 32 || len(req.Scopes) > 32 {
		return Requirement{}, false
	}
	req.Optional = bools["optional"] == "true"
	req.DenyAnonymous = bools["anonymous"] == "false"
	req.RequireVerified = bools["verified"] == "true"
	return req, true
}

// refUnescape decodes a value already matched by refPair.
func refUnescape(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '+':
			b = append(b, ' ')
		case '%':
			c, _ := strconv.ParseUint(s[i+1:i+3], 16, 8) // refPair matched two hex digits
			b = append(b, byte(c))
			i += 2
		default:
			b = append(b, s[i])
		}
	}
	return string(b)
}

// refAllows is the reference answer: whether a request with id (nil: no
// credential) may get a 200 under requirement q.
func refAllows(q string, allowOptional bool, id *Identity) bool {
	req, ok := refParse(q, allowOptional)
	switch {
	case !ok:
		return false
	case id == nil:
		return req.Optional
	case req.DenyAnonymous && id.Anonymous, req.RequireVerified && !id.Verified:
		return false
	}
	anyRole := len(req.Roles) == 0
	for _, r := range req.Roles {
		anyRole = anyRole || slices.Contains(id.Roles, r)
	}
	for _, s := range req.Scopes {
		if !slices.Contains(id.Scopes, s) {
			return false
		}
	}
	return anyRole
}

// FuzzRequirement compares ParseRequirement with the reference grammar, and
// the handler's answers with the reference decision: a 200 only for
// exactly the documented grammar, on the query and on the gateway header,
// with and without a credential.
func FuzzRequirement(f *testing.F) {
	for _, s := range []string{
		"", "role=admin", "roles=admin", "role=", "verified=true&verified=false", "optional=true",
		"role=a%2Cb&scope=read", "role=admin;optional=true", "scope=a+b", "anonymous=false&role=dev&role=x",
		"role=caf%C3%A9", "role=%ff", "verified=tru%65", "role=admin&&scope=read", "role=a%2",
	} {
		f.Add(s)
	}
	h := newTestHandler(f, nil)
	id := alice()
	f.Fuzz(func(t *testing.T, q string) {
		for _, allowOptional := range []bool{true, false} {
			want, wantOK := refParse(q, allowOptional)
			got, err := ParseRequirement(q, allowOptional)
			if (err == nil) != wantOK {
				t.Fatalf("ParseRequirement(%q, %v) error = %v, reference accepts: %v", q, allowOptional, err, wantOK)
			}
			if diff := cmp.Diff(want, got); wantOK && diff != "" {
				t.Fatalf("ParseRequirement(%q, %v) (-reference +got):\n%s", q, allowOptional, diff)
			}
		}
		if strings.ContainsAny(q, "\r\n\x00") || !utf8.ValidString(q) {
			return // not sendable as a header value or a URL
		}
		for _, c := range []struct {
			route         string
			allowOptional bool
		}{{"query", true}, {"header", false}} {
			for _, cred := range []*Identity{nil, &id} {
				r := httptest.NewRequest(http.MethodGet, "/resolve", nil)
				r.URL.RawQuery = q
				if c.route == "header" {
					r = httptest.NewRequest(http.MethodGet, "/resolve/x", nil)
					r.Header.Set(RequireHeader, q)
				}
				if cred != nil {
					r.Header.Set("Authorization", "Bearer "+tokenAlice)
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if allowed := w.Code == http.StatusOK; allowed != refAllows(q, c.allowOptional, cred) {
					t.Fatalf("%s %q, credential %v: status %d, reference allows: %v", c.route, q, cred != nil, w.Code, !allowed)
				}
			}
		}
	})
}
