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
// cookie. The first credential present decides; a present but malformed one
// is a denial, never skipped for the next.
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
		tok, reason := tokenHeader(vs)
		if reason != ReasonNone {
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

// bearer reads Authorization header values. A value whose first six bytes
// are "bearer" in any case is ours whatever follows: "Bearer<TAB>x",
// "Bearer", "Bearerx" are refused (malformed_authorization), never passed
// over for a token header or the cookie. Only "Bearer" 1*SP token is
// accepted (RFC 6750 §2.1). Another scheme (Basic for an upstream app) is
// not present as far as the resolver is concerned.
func bearer(vs []string) (token string, present bool, reason Reason) {
	if len(vs) != 1 {
		// Two Authorization headers: refuse rather than guess which one the
		// upstream will read.
		return "", true, ReasonMalformedHeader
	}
	return cutBearer(trimOWS(vs[0]))
}

// tokenHeader reads a configured token header: exactly one value, the raw
// token, or "Bearer" 1*SP token under the same rule as Authorization.
func tokenHeader(vs []string) (string, Reason) {
	if len(vs) != 1 {
		return "", ReasonMalformedHeader
	}
	v := trimOWS(vs[0])
	if tok, ours, reason := cutBearer(v); ours {
		return tok, reason
	}
	return v, checkToken(v)
}

// cutBearer returns the token of a Bearer credential. ours is false when v
// does not start with "bearer" (any case).
func cutBearer(v string) (tok string, ours bool, reason Reason) {
	const scheme = "bearer"
	if len(v) < len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
		return "", false, ReasonNone
	}
	rest := v[len(scheme):]
	if rest == "" || rest[0] != ' ' {
		return "", true, ReasonMalformedHeader
	}
	tok = strings.TrimLeft(rest, " ")
	return tok, true, checkToken(tok)
}

// trimOWS strips the optional whitespace (SP, HTAB) around a field value,
// which HTTP/1 parsers drop but other transports may pass on. (A loop:
// strings.Trim builds its cutset's table on every call, on the hot path.)
func trimOWS(v string) string {
	for v != "" && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for v != "" && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	return v
}

// checkToken refuses empty, oversized and malformed values before they
// reach a verifier: a token must be an RFC 6750 b64token (base64url or
// base64 characters, dots and '~', then optional '=' padding), which every
// compact JWS is and which opaque tokens for introspection may use in full.
// The verifier or introspection does the real parsing.
func checkToken(tok string) Reason {
	switch {
	case tok == "":
		return ReasonMalformedHeader
	case len(tok) > MaxCredentialBytes:
		return ReasonTokenTooLarge
	}
	body := strings.TrimRight(tok, "=")
	if body == "" {
		return ReasonMalformedToken
	}
	for i := 0; i < len(body); i++ {
		if c := body[i]; !isTokenChar(c) && c != '~' && c != '+' && c != '/' {
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

// cookieValue finds the named cookie in Cookie header lines. The name
// matches exactly (RFC 6265: case-sensitive). A second cookie of that name,
// in one line or across lines, is refused rather than picking one: another
// component (a proxy's cache key, the upstream app) may pick the other.
// For the same reason a cookie whose name differs from it only in case or
// by whitespace before '=' ("SESSION=", "session =", which NGINX's
// $cookie_session and some frameworks read as the session) is refused.
func cookieValue(lines []string, name string) (value string, present bool, reason Reason) {
	for _, line := range lines {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			k, v, ok := strings.Cut(trimOWS(part), "=")
			if !ok {
				continue
			}
			if k != name {
				if tk := trimOWS(k); len(tk) == len(name) && strings.EqualFold(tk, name) {
					return "", true, ReasonMalformedSession
				}
				continue
			}
			if present {
				return "", true, ReasonMalformedSession
			}
			value, present, reason = cookieID(v), true, ReasonNone
			if value == "" {
				reason = ReasonMalformedSession
			}
		}
	}
	return value, present, reason
}

// cookieID returns the session ID in a cookie value, or "" when it is
// empty, oversized or holds a character a session ID never has.
func cookieID(v string) string {
	v = trimOWS(v)
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	if v == "" || len(v) > MaxCredentialBytes {
		return ""
	}
	for i := 0; i < len(v); i++ {
		if !isTokenChar(v[i]) {
			return ""
		}
	}
	return v
}
