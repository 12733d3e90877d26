package resolver

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestExtract(t *testing.T) {
	const tok = "aaa.bbb.ccc"
	const sid = "c2Vzc2lvbg"
	e := Extractor{TokenHeaders: []string{"X-Token"}, SessionCookie: "session"}
	jwt := func(v string) Credential { return Credential{Kind: CredentialJWT, Value: v} }
	sess := func(v string) Credential { return Credential{Kind: CredentialSession, Value: v} }
	badJWT, badSession := Credential{Kind: CredentialJWT}, Credential{Kind: CredentialSession}
	tests := []struct {
		name       string
		h          http.Header
		want       Credential
		wantReason Reason
	}{
		{"bearer", http.Header{"Authorization": {"Bearer " + tok}}, jwt(tok), ReasonNone},
		{"bearer any case", http.Header{"Authorization": {"bEARER " + tok}}, jwt(tok), ReasonNone},
		{"bearer several spaces (1*SP)", http.Header{"Authorization": {"Bearer   " + tok}}, jwt(tok), ReasonNone},
		{"bearer surrounding OWS", http.Header{"Authorization": {" \tBearer " + tok + " \t"}}, jwt(tok), ReasonNone},
		{"basic is not ours", http.Header{"Authorization": {"Basic Zm9vOmJhcg=="}, "Cookie": {"session=" + sid}}, sess(sid), ReasonNone},
		{"empty authorization is not ours", http.Header{"Authorization": {""}, "Cookie": {"session=" + sid}}, sess(sid), ReasonNone},

		// The Bearer scheme is ours whatever follows: never a fall-through.
		{"bearer tab", http.Header{"Authorization": {"Bearer\t" + tok}, "Cookie": {"session=" + sid}}, badJWT, ReasonMalformedHeader},
		{"bearer no space", http.Header{"Authorization": {"Bearer" + tok}, "Cookie": {"session=" + sid}}, badJWT, ReasonMalformedHeader},
		{"bearerx", http.Header{"Authorization": {"Bearerx"}, "Cookie": {"session=" + sid}}, badJWT, ReasonMalformedHeader},
		{"bearer alone", http.Header{"Authorization": {"bearer"}, "Cookie": {"session=" + sid}}, badJWT, ReasonMalformedHeader},
		{"bearer space alone", http.Header{"Authorization": {"Bearer "}, "Cookie": {"session=" + sid}}, badJWT, ReasonMalformedHeader},
		{"bearer space tab token", http.Header{"Authorization": {"Bearer \t" + tok}, "Cookie": {"session=" + sid}}, badJWT, ReasonMalformedToken},
		{"bearer two tokens", http.Header{"Authorization": {"Bearer " + tok + " " + tok}}, badJWT, ReasonMalformedToken},
		{"two authorization headers", http.Header{"Authorization": {"Basic x", "Bearer " + tok}}, badJWT, ReasonMalformedHeader},
		// RFC 6750 b64token: opaque tokens may use base64 and '~', then '='.
		{"b64token", http.Header{"Authorization": {"Bearer ab~c+d/e.f_g-h=="}}, jwt("ab~c+d/e.f_g-h=="), ReasonNone},
		{"padding only", http.Header{"Authorization": {"Bearer =="}}, badJWT, ReasonMalformedToken},
		{"padding inside", http.Header{"Authorization": {"Bearer ab=c"}}, badJWT, ReasonMalformedToken},
		{"quote", http.Header{"Authorization": {`Bearer ab"c`}}, badJWT, ReasonMalformedToken},

		// Token headers: the same strictness.
		{"token header raw", http.Header{"X-Token": {tok}}, jwt(tok), ReasonNone},
		{"token header bearer", http.Header{"X-Token": {"Bearer " + tok}}, jwt(tok), ReasonNone},
		{"token header bearer tab", http.Header{"X-Token": {"Bearer\t" + tok}, "Cookie": {"session=" + sid}}, badJWT, ReasonMalformedHeader},
		{"token header bearerx", http.Header{"X-Token": {"Bearer" + tok}, "Cookie": {"session=" + sid}}, badJWT, ReasonMalformedHeader},
		{"token header empty", http.Header{"X-Token": {""}, "Cookie": {"session=" + sid}}, badJWT, ReasonMalformedHeader},
		{"token header twice", http.Header{"X-Token": {tok, tok}}, badJWT, ReasonMalformedHeader},
		{"token header garbage", http.Header{"X-Token": {"a b"}, "Cookie": {"session=" + sid}}, badJWT, ReasonMalformedToken},

		// Cookies.
		{"cookie", http.Header{"Cookie": {"a=b; session=" + sid + "; c=d"}}, sess(sid), ReasonNone},
		{"cookie quoted", http.Header{"Cookie": {`session="` + sid + `"`}}, sess(sid), ReasonNone},
		{"cookie across lines", http.Header{"Cookie": {"a=b", "session=" + sid}}, sess(sid), ReasonNone},
		{"cookie other names only", http.Header{"Cookie": {"sessionx=" + sid + "; xsession=" + sid}}, Credential{}, ReasonNone},
		{"two session cookies", http.Header{"Cookie": {"session=" + sid + "; session=" + sid + "x"}}, badSession, ReasonMalformedSession},
		{"two identical session cookies", http.Header{"Cookie": {"session=" + sid + "; session=" + sid}}, badSession, ReasonMalformedSession},
		{"two session cookies across lines", http.Header{"Cookie": {"session=" + sid, "a=b; session=" + sid + "x"}}, badSession, ReasonMalformedSession},
		{"empty then valid session cookie", http.Header{"Cookie": {"session=; session=" + sid}}, badSession, ReasonMalformedSession},
		{"case variant beside the cookie", http.Header{"Cookie": {"SESSION=; session=" + sid}}, badSession, ReasonMalformedSession},
		{"case variant alone", http.Header{"Cookie": {"Session=" + sid}}, badSession, ReasonMalformedSession},
		{"space before =", http.Header{"Cookie": {"session =" + sid}}, badSession, ReasonMalformedSession},
		{"empty session cookie", http.Header{"Cookie": {"session="}}, badSession, ReasonMalformedSession},
		{"bad session cookie", http.Header{"Cookie": {"session=a%0d"}}, badSession, ReasonMalformedSession},
		{"oversized session cookie", http.Header{"Cookie": {"session=" + strings.Repeat("a", MaxCredentialBytes+1)}}, badSession, ReasonMalformedSession},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason := e.Extract(tt.h)
			if diff := cmp.Diff(tt.want, got); diff != "" || reason != tt.wantReason {
				t.Errorf("Extract = %v, reason %q; want reason %q (-want +got):\n%s", got, reason, tt.wantReason, diff)
			}
		})
	}
}

// TestMalformedBearerIsNotSkipped: a malformed Bearer header next to a
// valid session cookie is a 401, through the whole handler.
func TestMalformedBearerIsNotSkipped(t *testing.T) {
	h := newTestHandler(t, nil)
	for _, authz := range []string{"Bearer\t" + tokenAlice, "Bearer" + tokenAlice, "Bearer", "BEARER\tx", "bearer \t" + tokenAlice} {
		got := do(t, h, "GET", "/resolve", map[string]string{"Authorization": authz, "Cookie": "session=" + sessionBob}, "X-Auth-Error", "X-Auth-User-Id")
		if got.Status != http.StatusUnauthorized || got.Headers["X-Auth-User-Id"] != "" {
			t.Errorf("Authorization %q with a valid cookie: %+v, want 401", authz, got)
		}
	}
	got := do(t, h, "GET", "/resolve", map[string]string{"Cookie": "session=" + sessionBob + "; session=" + sessionBob}, "X-Auth-Error")
	if want := (answer{401, map[string]string{"X-Auth-Error": "malformed_session"}}); !cmp.Equal(want, got) {
		t.Errorf("two session cookies: %+v, want %+v", got, want)
	}
}
