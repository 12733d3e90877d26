package resolver

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestWellFormedJWS(t *testing.T) {
	enc := base64.RawURLEncoding.EncodeToString
	hdr := enc([]byte(`{"alg":"ES256","kid":"k1"}`))
	tests := []struct {
		tok  string
		want bool
	}{
		{hdr + ".eyJzdWIiOiJhIn0.c2ln", true},
		{enc([]byte(` { } `)) + ".e30.c2ln", true},
		{hdr + ".eyJzdWIiOiJhIn0.", false},           // no signature (alg none)
		{hdr + "..c2ln", false},                      // empty payload
		{".e30.c2ln", false},                         // empty header
		{hdr + ".e30", false},                        // two segments
		{hdr + ".e30.c2ln.x", false},                 // four segments
		{hdr + ".e30.c2ln.x.y", false},               // JWE shape
		{hdr + "=.e30.c2ln", false},                  // padding
		{hdr + ".e3+0.c2ln", false},                  // base64, not base64url
		{hdr + ".e30.c2lu1", false},                  // impossible length
		{enc([]byte(`[1]`)) + ".e30.c2ln", false},    // header not an object
		{enc([]byte(`{"a":}`)) + ".e30.c2ln", false}, // header not JSON
		{enc([]byte(`{}x`)) + ".e30.c2ln", false},
		{"bm90anNvbg.e30.c2ln", false},
		{"aaa.bbb.ccc", false},
		{strings.Repeat("a", 100), false},
	}
	for _, tt := range tests {
		if got := wellFormedJWS(tt.tok); got != tt.want {
			t.Errorf("wellFormedJWS(%q) = %v, want %v", tt.tok, got, tt.want)
		}
	}
}
