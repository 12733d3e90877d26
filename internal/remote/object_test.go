package remote

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/authresolver/authresolver/resolver"
)

func TestParseObject(t *testing.T) {
	tests := []struct {
		body string
		want int // members; -1: refused
	}{
		{`{}`, 0},
		{` { } `, 0},
		{`{"a":1}`, 1},
		{`{"a":"x,y","b":[1,2,{"c":3}],"d":{"e":",","f":"\"}"}}`, 3},
		{`{"a\"b":1,"a":2}`, 2},
		{`{"a":{"x":1},"b":{"x":2}}`, 2},
		{`{"a":1,"a":1}`, -1},
		{`{"a":1,"b":2,"a":3}`, -1},
		{`{"\u0061":1,"a":2}`, -1}, // the same name, escaped
		{`null`, -1},
		{`[]`, -1},
		{`"a"`, -1},
		{`{"a":1}{}`, -1},
		{`{"a":1}x`, -1},
		{"{\"a\":\"\xff\"}", -1},
		{``, -1},
	}
	for _, tt := range tests {
		obj, err := ParseObject([]byte(tt.body))
		if tt.want < 0 {
			if !errors.Is(err, ErrNotObject) {
				t.Errorf("%s: error %v, want ErrNotObject", tt.body, err)
			}
			continue
		}
		if err != nil || len(obj) != tt.want {
			t.Errorf("%s: %d members, error %v; want %d", tt.body, len(obj), err, tt.want)
		}
	}
}

func FuzzParseObject(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1,"a":2}`, `{"a":"\\","b":[{"c":","}]}`, `{"sub":"x","active":true}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(_ *testing.T, body []byte) {
		obj, err := ParseObject(body)
		if err != nil {
			return
		}
		_, _ = obj.Identity()
	})
}

func TestIdentity(t *testing.T) {
	obj, err := ParseObject([]byte(`{"sub":"alice","iss":"https://idp","jti":"j","role":"anon","email_verified":"false",
		"https://authgear.com/claims/user/roles":["a"],"scp":["s1","s2"],"amr":"pwd","iat":1700000000.5,"exp":1700003600,"nbf":null}`))
	if err != nil {
		t.Fatal(err)
	}
	got, err := obj.Identity()
	if err != nil {
		t.Fatal(err)
	}
	want := resolver.Identity{UserID: "alice", Issuer: "https://idp", TokenID: "j", Anonymous: true, Roles: []string{"a"},
		Scopes: []string{"s1", "s2"}, AMR: []string{"pwd"}, IssuedAt: time.Unix(1700000000, 5e8), AuthenticatedAt: time.Unix(1700000000, 5e8),
		ExpiresAt: time.Unix(1700003600, 0)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("identity (-want +got):\n%s", diff)
	}
	for _, bad := range []string{`{"sub":1}`, `{"sub":"a","email_verified":"yes"}`, `{"sub":"a","roles":[1]}`, `{"sub":"a","exp":"1"}`, `{"sub":"a","exp":-1}`} {
		obj, err := ParseObject([]byte(bad))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := obj.Identity(); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
