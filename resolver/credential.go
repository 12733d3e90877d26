package resolver

import (
	"log/slog"
	"net/http"
	"strings"
)

// MaxCredentialBytes bounds a token or session ID. Larger credentials are
// refused before any parsing.
const MaxCredentialBytes = 16 << 10

// Credential is the one credential a request carries. Its value is secret:
// it is never logged (LogValue redacts it) nor written to a header.
type Credential struct {
	Kind  string // CredentialJWT or CredentialSession; empty when none
	Value string
}

// LogValue implements slog.LogValuer so that a credential never reaches a log.
func (c Credential) LogValue() slog.Value {
	return slog.StringValue(c.Kind + ":REDACTED")
}

// Extractor finds the credential of a request, in the order of SPEC §3:
// Authorization: Bearer, then the configured token headers, then the session
// cookie. The first credential present decides.
type Extractor struct {
	TokenHeaders  []string // canonical header names
	SessionCookie string   // empty: cookie sessions off
}

// Extract returns the request's credential, or a Reason when a credential is
// present but malformed. A request without any credential gets a zero
// Credential and ReasonNone.
func (e *Extractor) Extract(h http.Header) (Credential, Reason) {
	if vs, ok := h["Authorization"]; ok {
		tok, present, reason := bearer(vs)
		if present {
			if reason != ReasonNone {
				return Credential{Kind: CredentialJWT}, reason
			}
			return Credential{Kind: CredentialJWT, Value: tok}, ReasonNone
		}
	}
	for _, name := range e.TokenHeaders {
		vs, ok := h[name]
		if !ok {
			continue
		}
		if len(vs) != 1 {
			return Credential{Kind: CredentialJWT}, ReasonMalformedHeader
		}
		tok := strings.TrimSpace(vs[0])
		if t, ok := cutScheme(tok); ok {
			tok = t
		}
		if reason := checkToken(tok); reason != ReasonNone {
			return Credential{Kind: CredentialJWT}, reason
		}
		return Credential{Kind: CredentialJWT, Value: tok}, ReasonNone
	}
	if e.SessionCookie == "" {
		return Credential{}, ReasonNone
	}
	id, present, reason := cookieValue(h["Cookie"], e.SessionCookie)
	if !present {
		return Credential{}, ReasonNone
	}
	if reason != ReasonNone {
		return Credential{Kind: CredentialSession}, reason
	}
	return Credential{Kind: CredentialSession, Value: id}, ReasonNone
}

// bearer reads Authorization header values. Only the Bearer scheme (any case)
// is a credential of ours: another scheme (Basic for an upstream app) is not
// present as far as the resolver is concerned.
func bearer(vs []string) (token string, present bool, reason Reason) {
	if len(vs) != 1 {
		// Two Authorization headers: refuse rather than guess which one the
		// upstream will read.
		return "", true, ReasonMalformedHeader
	}
	v := strings.TrimSpace(vs[0])
	tok, ok := cutScheme(v)
	if !ok {
		if strings.EqualFold(v, "bearer") {
			return "", true, ReasonMalformedHeader
		}
		return "", false, ReasonNone
	}
	return tok, true, checkToken(tok)
}

// cutScheme strips a case-insensitive "Bearer " prefix.
func cutScheme(v string) (string, bool) {
	const scheme = "bearer "
	if len(v) < len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
		return "", false
	}
	return strings.TrimLeft(v[len(scheme):], " "), true
}

// checkToken refuses empty, oversized and obviously non-JWT values before they
// reach a verifier. The verifier does the real parsing.
func checkToken(tok string) Reason {
	switch {
	case tok == "":
		return ReasonMalformedHeader
	case len(tok) > MaxCredentialBytes:
		return ReasonTokenTooLarge
	}
	for i := 0; i < len(tok); i++ {
		if !isTokenChar(tok[i]) {
			return ReasonMalformedToken
		}
	}
	return ReasonNone
}

// isTokenChar reports whether c may appear in a compact JWS (base64url and dots).
func isTokenChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '_' || c == '.'
}

// cookieValue finds the named cookie in Cookie header lines. The first cookie
// of that name wins, as browsers send the most specific path first.
func cookieValue(lines []string, name string) (value string, present bool, reason Reason) {
	for _, line := range lines {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = strings.TrimSpace(part)
			k, v, ok := strings.Cut(part, "=")
			if !ok || strings.TrimSpace(k) != name {
				continue
			}
			v = strings.TrimSpace(v)
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			switch {
			case v == "":
				return "", true, ReasonMalformedSession
			case len(v) > MaxCredentialBytes:
				return "", true, ReasonMalformedSession
			}
			for i := 0; i < len(v); i++ {
				if !isTokenChar(v[i]) {
					return "", true, ReasonMalformedSession
				}
			}
			return v, true, ReasonNone
		}
	}
	return "", false, ReasonNone
}
