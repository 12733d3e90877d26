package jwks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"
)

// FuzzClaims checks the claims and header scanners against strictObject, a
// reference built on encoding/json that refuses duplicate member names:
// whatever the scanners accept, the reference accepts and reads the same;
// whatever has a duplicate top-level name, the scanners refuse.
func FuzzClaims(f *testing.F) {
	for _, seed := range []string{
		`{"iss":"a","sub":"b","exp":1,"aud":["x"]}`,
		`{"aud":[ "a\\" , "\u00e9" ,"" ]}`,
		`{"iss":"a\"b","sub":"\u0062","x":{"sub":"nested"},"y":[{"iss":"n"}]}`,
		` { "sub" : "s" , "ISS" : "upper" } `,
		`{"sub":"a","sub":"b"}`,
		`{"sub":null,"sub":"admin"}`,
		`{"exp":null,"exp":1}`,
		`{"x":1,"\u0078":2}`,
		`{"\ud800":1,"\udbff":2}`,
		`{"alg":"ES256","kid":"k","kid":"k"}`,
		`{"roles":"r","scope":"a b","scp":["c"],"amr":null,"email_verified":"true"}`,
		`{"exp":1.5e9,"nbf":-1,"iat":0.000001}`,
		`[]`, `null`, `{}`, `{"a":}`, `{} {}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := strictObject(data)
		var c claims
		var h header
		claimsOK, headerOK := c.parse(data), h.parse(data)
		if errors.Is(err, errDuplicate) && (claimsOK || headerOK) {
			t.Fatalf("accepted a duplicate member name (claims %v, header %v)", claimsOK, headerOK)
		}
		if (claimsOK || headerOK) && err != nil {
			t.Fatalf("accepted what the strict decoder rejects: %v", err)
		}
		if headerOK {
			for name, got := range map[string]string{"alg": h.alg, "kid": h.kid, "typ": h.typ} {
				if want := rawString(t, m[name]); got != want {
					t.Errorf("header %s: got %q, strict decoder says %q", name, got, want)
				}
			}
		}
		if !claimsOK {
			return
		}
		for name, got := range map[string]string{"iss": c.iss, "sub": c.sub, "jti": c.jti} {
			if want := rawString(t, m[name]); got != want {
				t.Errorf("%s: got %q, strict decoder says %q", name, got, want)
			}
		}
		var list []any
		if json.Unmarshal(m["aud"], &list) == nil && list != nil {
			want := make([]string, 0, len(list))
			for _, e := range list {
				want = append(want, e.(string)) // parse accepted only strings
			}
			if (len(c.aud) != 0 || len(want) != 0) && !slices.Equal(c.aud, want) {
				t.Errorf("aud: got %q, strict decoder says %q", c.aud, want)
			}
		}
	})
}

var errDuplicate = errors.New("duplicate member name")

// strictObject decodes a JSON object into its members with encoding/json,
// refusing a duplicate name at the top level (after unescaping) and any
// data after the object.
func strictObject(data []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("not an object: %v %v", tok, err)
	}
	m := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name := tok.(string) // object keys are strings
		if _, dup := m[name]; dup {
			return nil, fmt.Errorf("%w %q", errDuplicate, name)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		m[name] = v
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, fmt.Errorf("object not closed: %v %v", tok, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("data after the object: %v", err)
	}
	return m, nil
}

// rawString decodes a member the scanners read as a string; absent and
// null are "".
func rawString(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	if raw == nil {
		return ""
	}
	var s *string
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("scanner accepted %s as a string: %v", raw, err)
	}
	if s == nil {
		return ""
	}
	return *s
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
