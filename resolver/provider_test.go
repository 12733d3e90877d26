package resolver

import (
	"errors"
	"testing"
)

func TestParseProfileRequirement(t *testing.T) {
	tests := []struct {
		query string
		want  bool
		err   bool
	}{
		{"profile=true", true, false},
		{"profile=false", false, false},
		{"profile=true&profile=true", true, false},
		{"profile=true&verified=true", true, false},
		{"profile=1", false, true},
		{"profile=TRUE", false, true},
		{"profile=", false, true},
		{"profile=true&profile=false", false, true},
		{"profiles=true", false, true},
	}
	for _, tt := range tests {
		req, err := ParseRequirement(tt.query, false)
		if tt.err {
			if !errors.Is(err, ErrInvalidRequirement) {
				t.Errorf("%q: error %v, want ErrInvalidRequirement", tt.query, err)
			}
			continue
		}
		if err != nil || req.Profile != tt.want {
			t.Errorf("%q: Profile %v, error %v; want %v", tt.query, req.Profile, err, tt.want)
		}
	}
}
