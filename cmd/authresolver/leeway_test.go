package main

import (
	"testing"
	"time"
)

// TestMaxLeeway checks that the admin API keeps revocations for the
// largest leeway of all configured issuers, whichever variable set it.
func TestMaxLeeway(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want time.Duration
	}{
		{"no issuer", map[string]string{}, 0},
		{"single issuer", map[string]string{
			"AUTHRESOLVER_JWT_ISSUER": "https://a.example", "AUTHRESOLVER_JWT_JWKS_URL": "https://a.example/jwks",
			"AUTHRESOLVER_JWT_LEEWAY": "45s",
		}, 45 * time.Second},
		{"largest of several", map[string]string{
			"AUTHRESOLVER_JWT_ISSUER": "https://a.example", "AUTHRESOLVER_JWT_JWKS_URL": "https://a.example/jwks",
			"AUTHRESOLVER_ISSUERS": `[{"issuer":"https://b.example","jwks_url":"https://b.example/jwks","leeway":"2m"},
				{"issuer":"https://c.example","jwks_url":"https://c.example/jwks","leeway":"0s"}]`,
		}, 2 * time.Minute},
	} {
		cfg, err := loadConfig(tc.env)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := maxLeeway(cfg.issuers); got != tc.want {
			t.Errorf("%s: maxLeeway = %v, want %v", tc.name, got, tc.want)
		}
	}
}
