package resolver

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestVerdictTags(t *testing.T) {
	const iss = "https://idp.example"
	for _, tc := range []struct {
		name string
		v    Verdict
		want []string
	}{
		{"session", Verdict{Identity: Identity{Credential: CredentialSession, UserID: "u", SessionHandle: "h"}},
			[]string{"s:h", "us:u"}},
		{"jwt with jti", Verdict{Identity: Identity{Credential: CredentialJWT, UserID: "u", Issuer: iss, TokenID: "j"}},
			[]string{"j:j", "uj:u", IssuerTokenTag(iss, "j"), IssuerUserTokensTag(iss, "u")}},
		{"jwt without jti", Verdict{Identity: Identity{Credential: CredentialJWT, UserID: "u", Issuer: iss}},
			[]string{"uj:u", IssuerUserTokensTag(iss, "u")}},
		{"token without issuer", Verdict{Identity: Identity{Credential: CredentialJWT, UserID: "u", TokenID: "j"}},
			[]string{"j:j", "uj:u"}},
		{"denial", Verdict{Identity: Identity{Credential: CredentialJWT, UserID: "u"}, Reason: ReasonTokenRevoked}, nil},
	} {
		if diff := cmp.Diff(tc.want, tc.v.Tags()); diff != "" {
			t.Errorf("%s: Tags (-want +got):\n%s", tc.name, diff)
		}
	}
}

// TestTagsDoNotCollide checks that no two revocations share a tag, whatever
// the issuer, user, jti and handle strings: an issuer-scoped revocation of
// one pair must never drop another pair's verdicts.
func TestTagsDoNotCollide(t *testing.T) {
	parts := []string{"", "a", "b", ":", "a:", ":b", "1:", "1:a", "ab", "j:", "uj:a", "3:abc"}
	seen := map[string]string{}
	add := func(tag, what string) {
		t.Helper()
		if prev, ok := seen[tag]; ok && prev != what {
			t.Errorf("tag %q names both %s and %s", tag, prev, what)
		}
		seen[tag] = what
	}
	for _, x := range parts {
		add(SessionTag(x), "session "+x)
		add(UserSessionsTag(x), "user sessions "+x)
		add(TokenTag(x), "jti "+x)
		add(UserTokensTag(x), "user tokens "+x)
		for _, iss := range parts[1:] {
			add(IssuerTokenTag(iss, x), "jti "+x+" of "+iss)
			add(IssuerUserTokensTag(iss, x), "user tokens "+x+" of "+iss)
		}
	}
}
