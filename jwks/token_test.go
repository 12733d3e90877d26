package jwks

import (
	"encoding/json"
	"slices"
	"testing"
)

// FuzzClaims checks the claims scanner against encoding/json decoding into
// a map, which, unlike decoding into a struct, matches names exactly.
func FuzzClaims(f *testing.F) {
	for _, seed := range []string{
		`{"iss":"a","sub":"b","exp":1,"aud":["x"]}`,
		`{"aud":[ "a\\" , "\u00e9" ,"" ]}`,
		`{"iss":"a\"b","sub":"\u0062","x":{"sub":"nested"},"y":[{"iss":"n"}]}`,
		` { "sub" : "s" , "ISS" : "upper" } `,
		`{"sub":"a","sub":"b"}`,
		`{"roles":"r","scope":"a b","scp":["c"],"amr":null,"email_verified":"true"}`,
		`{"exp":1.5e9,"nbf":-1,"iat":0.000001}`,
		`[]`, `null`, `{}`, `{"a":}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var c claims
		if !c.parse(data) {
			return
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("parse accepted what encoding/json rejects: %v", err)
		}
		for name, got := range map[string]string{"iss": c.iss, "sub": c.sub, "jti": c.jti} {
			want, _ := m[name].(string)
			if got != want {
				t.Errorf("%s: got %q, encoding/json says %q", name, got, want)
			}
		}
		if list, isList := m["aud"].([]any); isList {
			want := make([]string, 0, len(list))
			for _, e := range list {
				want = append(want, e.(string)) // parse accepted only strings
			}
			if !slices.Equal(c.aud, want) && !(len(c.aud) == 0 && len(want) == 0) {
				t.Errorf("aud: got %q, encoding/json says %q", c.aud, want)
			}
		}
	})
}

func TestSignatureDER(t *testing.T) {
	tests := []struct {
		r, s []byte
		want []byte
	}{
		{[]byte{0, 0, 1}, []byte{0x7f}, []byte{0x30, 6, 2, 1, 1, 2, 1, 0x7f}},
		{[]byte{0x80}, []byte{0, 0}, []byte{0x30, 7, 2, 2, 0, 0x80, 2, 1, 0}},
	}
	for _, tt := range tests {
		got := appendSignatureDER(nil, tt.r, tt.s)
		if string(got) != string(tt.want) {
			t.Errorf("DER(%x, %x) = %x, want %x", tt.r, tt.s, got, tt.want)
		}
	}
	// P-521 halves of 66 bytes with the high bit set need the long length form.
	r := make([]byte, 66)
	r[0] = 0xff
	got := appendSignatureDER(nil, r, r)
	if got[1] != 0x81 || int(got[2]) != len(got)-3 {
		t.Errorf("long form: % x", got[:4])
	}
}

func TestJSONStrings(t *testing.T) {
	tests := []struct {
		in     string
		split  bool
		want   []string
		wantOK bool
	}{
		{`"a b"`, false, []string{"a b"}, true},
		{`"a  b "`, true, []string{"a", "b"}, true},
		{`[]`, false, nil, true},
		{`[ "a" , "b\"c" ]`, false, []string{"a", `b"c`}, true},
		{`["a",1]`, false, nil, false},
		{`["a",null]`, false, nil, false},
		{`[["a"]]`, false, nil, false},
		{`null`, false, nil, true},
		{`7`, false, nil, false},
		{`{"a":"b"}`, false, nil, false},
	}
	for _, tt := range tests {
		got, ok := jsonStrings([]byte(tt.in), tt.split)
		if ok != tt.wantOK || !slices.Equal(got, tt.want) {
			t.Errorf("jsonStrings(%s) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}
