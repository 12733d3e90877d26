package jwks

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/authresolver/authresolver/resolver"
)

// MaxTokenSize is the largest token, in bytes, that Verify parses. Longer
// tokens are refused with resolver.ReasonTokenTooLarge before any decoding.
const MaxTokenSize = 16 << 10

// b64 decodes JWS segments: base64url without padding, and Strict so that
// each token has exactly one encoding.
var b64 = base64.RawURLEncoding.Strict()

// parsedToken is a compact JWS split and decoded, not yet verified.
type parsedToken struct {
	signingInput []byte // BASE64URL(header) "." BASE64URL(payload), as signed
	payload      []byte // decoded claims JSON, kept for extra claims
	sig          []byte
	header       header
	claims       claims
}

// header holds the JOSE header parameters this package reads. jku, x5u, jwk
// and x5c are deliberately not among them: keys come only from the
// configured JWKS, never from the token.
type header struct {
	alg string
	kid string
	typ string
}

// Bits of claims.has: which claims the payload carries.
const (
	hasIss = 1 << iota
	hasSub
	hasAud
	hasExp
	hasNbf
	hasIat
	hasAuthTime
	hasJti
	hasIsAnonymous
	hasAuthgearAnonymous
	hasRole
	hasEmailVerified
	hasAuthgearVerified
	hasRoles
	hasAuthgearRoles
	hasScope
	hasScp
	hasAMR
)

// claims holds the registered and identity claims of a payload.
type claims struct {
	has                  uint32
	iss, sub, jti        string
	aud                  []string
	exp, nbf, iat, auth  time.Time
	anonymous, verified  bool
	roles, authgearRoles []string
	scope, scp           []string
	amr                  []string
}

// parse splits and decodes s. It returns a non-empty Reason when s is not a
// well-formed compact JWS with JSON object header and claims.
//
// It reads JSON with its own exact-match member scan (over input that
// json.Valid accepted) instead of decoding into a struct: encoding/json
// matches member names case-insensitively, so a custom claim "EXP" or "Sub"
// would silently override exp or sub, while JWT claim names are
// case-sensitive (RFC 7519 §4). The scan also rejects duplicate claims,
// which RFC 7519 §4 allows parsers to do, and allocates little.
func (t *parsedToken) parse(s string) resolver.Reason {
	if len(s) > MaxTokenSize {
		return resolver.ReasonTokenTooLarge
	}
	dot1, dot2 := -1, -1
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
		case c == '.' && dot1 < 0:
			dot1 = i
		case c == '.' && dot2 < 0:
			dot2 = i
		default:
			// Padding, whitespace, a fourth segment (JWE) or garbage; the
			// base64 decoder itself would skip CR and LF.
			return resolver.ReasonMalformedToken
		}
	}
	// The signature may be empty, as in alg "none" tokens, so that those
	// are refused for their algorithm.
	if dot1 <= 0 || dot2 <= dot1+1 {
		return resolver.ReasonMalformedToken
	}

	hLen := b64.DecodedLen(dot1)
	pLen := b64.DecodedLen(dot2 - dot1 - 1)
	sLen := b64.DecodedLen(len(s) - dot2 - 1)
	// One allocation holds the token text (the signing input must be
	// bytes for hashing) and the three decoded segments.
	buf := make([]byte, len(s)+hLen+pLen+sLen)
	copy(buf, s)
	src, dst := buf[:len(s)], buf[len(s):]

	hdr, ok := decodeSegment(dst[:hLen], src[:dot1])
	if !ok || !t.header.parse(hdr) {
		return resolver.ReasonMalformedToken
	}
	payload, ok := decodeSegment(dst[hLen:hLen+pLen], src[dot1+1:dot2])
	if !ok || !t.claims.parse(payload) {
		return resolver.ReasonMalformedToken
	}
	sig, ok := decodeSegment(dst[hLen+pLen:], src[dot2+1:])
	if !ok {
		return resolver.ReasonMalformedToken
	}
	t.signingInput = src[:dot2]
	t.payload = payload
	t.sig = sig
	return resolver.ReasonNone
}

func decodeSegment(dst, src []byte) ([]byte, bool) {
	n, err := b64.Decode(dst, src)
	if err != nil {
		return nil, false
	}
	return dst[:n], true
}

// parse reads the header JSON. It fails on a header that is not a JSON
// object, on a duplicate member, on wrongly typed alg/kid/typ, and on
// "crit": this package understands no JWS extension, so it must refuse any
// marked critical (RFC 7515 §4.1.11).
func (h *header) parse(data []byte) bool {
	if !json.Valid(data) {
		return false
	}
	obj, ok := newObjectReader(data)
	if !ok {
		return false
	}
	for {
		name, value, more := obj.next()
		if !more {
			break
		}
		var dst *string
		switch string(name) {
		case "alg":
			dst = &h.alg
		case "kid":
			dst = &h.kid
		case "typ":
			dst = &h.typ
		case "crit":
			return false
		default:
			continue
		}
		s, ok := jsonString(value)
		if !ok {
			return false
		}
		*dst = s
	}
	return obj.ok
}

// parse reads the claims this package maps. A duplicate member (mapped or
// not, null or not) or a claim of the wrong JSON type makes the whole token
// malformed (the safe reading of a claim we cannot
// interpret), with these tolerances seen in real issuers: dates may be
// integers or fractions; booleans may be the strings "true" and "false";
// aud, roles and amr may be a single string instead of an array; scope and
// scp may be a space-separated string or an array. role is only compared
// with "anon" and ignored otherwise. JSON null counts as absent.
func (c *claims) parse(data []byte) bool {
	if !json.Valid(data) {
		return false
	}
	obj, ok := newObjectReader(data)
	if !ok {
		return false
	}
	for {
		name, value, more := obj.next()
		if !more {
			break
		}
		var bit uint32
		var ok bool
		isNull := string(value) == "null"
		switch string(name) {
		case "iss":
			bit = hasIss
			c.iss, ok = jsonString(value)
		case "sub":
			bit = hasSub
			c.sub, ok = jsonString(value)
		case "jti":
			bit = hasJti
			c.jti, ok = jsonString(value)
		case "aud":
			bit = hasAud
			c.aud, ok = jsonStrings(value, false)
		case "exp":
			bit = hasExp
			c.exp, ok = jsonDate(value)
		case "nbf":
			bit = hasNbf
			c.nbf, ok = jsonDate(value)
		case "iat":
			bit = hasIat
			c.iat, ok = jsonDate(value)
		case "auth_time":
			bit = hasAuthTime
			c.auth, ok = jsonDate(value)
		case "is_anonymous":
			bit = hasIsAnonymous
			ok = jsonBool(value, &c.anonymous)
		case "https://authgear.com/claims/user/is_anonymous":
			bit = hasAuthgearAnonymous
			ok = jsonBool(value, &c.anonymous)
		case "role":
			bit, ok = hasRole, true
			if s, isString := jsonString(value); isString && s == "anon" {
				c.anonymous = true
			}
		case "email_verified":
			bit = hasEmailVerified
			ok = jsonBool(value, &c.verified)
		case "https://authgear.com/claims/user/is_verified":
			bit = hasAuthgearVerified
			ok = jsonBool(value, &c.verified)
		case "roles":
			bit = hasRoles
			c.roles, ok = jsonStrings(value, false)
		case "https://authgear.com/claims/user/roles":
			bit = hasAuthgearRoles
			c.authgearRoles, ok = jsonStrings(value, false)
		case "scope":
			bit = hasScope
			c.scope, ok = jsonStrings(value, true)
		case "scp":
			bit = hasScp
			c.scp, ok = jsonStrings(value, true)
		case "amr":
			bit = hasAMR
			c.amr, ok = jsonStrings(value, false)
		default:
			continue
		}
		if !ok {
			return false
		}
		if !isNull {
			c.has |= bit
		}
	}
	return obj.ok
}

// identity maps verified claims to an Identity (SPEC §3).
func (c *claims) identity() resolver.Identity {
	id := resolver.Identity{
		Credential: resolver.CredentialJWT,
		UserID:     c.sub,
		Issuer:     c.iss,
		TokenID:    c.jti,
		Anonymous:  c.anonymous,
		Verified:   c.verified,
		Roles:      c.roles,
		Scopes:     c.scope,
		AMR:        c.amr,
		IssuedAt:   c.iat,
		ExpiresAt:  c.exp,
	}
	if c.has&hasRoles == 0 {
		id.Roles = c.authgearRoles
	}
	if c.has&hasScope == 0 {
		id.Scopes = c.scp
	}
	id.AuthenticatedAt = c.iat
	if c.has&hasAuthTime != 0 {
		id.AuthenticatedAt = c.auth
	}
	return id
}

// extraClaims returns the values of the named claims in payload as text:
// strings as they are, numbers and booleans as their JSON text, arrays of
// strings comma-joined, anything else as compact JSON. Absent and null
// claims are left out. payload has passed claims.parse, so no name is
// there twice.
func extraClaims(payload []byte, names []string) map[string]string {
	out := make(map[string]string, len(names))
	obj, ok := newObjectReader(payload)
	if !ok {
		return out
	}
	for {
		name, value, more := obj.next()
		if !more {
			return out
		}
		n := string(name)
		if !containsString(names, n) || string(value) == "null" {
			continue
		}
		out[n] = claimText(value)
	}
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func claimText(value []byte) string {
	switch value[0] {
	case '"':
		s, _ := jsonString(value)
		return s
	case '[':
		if list, ok := jsonStringArray(value); ok {
			return strings.Join(list, ",")
		}
	case '{':
	default:
		return string(value) // number, true, false
	}
	var b bytes.Buffer
	if json.Compact(&b, value) != nil {
		return string(value)
	}
	return b.String()
}

// jsonString decodes a JSON string; ok is false for any other type. null
// decodes as "" with ok true.
func jsonString(v []byte) (string, bool) {
	if string(v) == "null" {
		return "", true
	}
	if len(v) < 2 || v[0] != '"' {
		return "", false
	}
	inner := v[1 : len(v)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner), true
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, true
}

// jsonStrings decodes an array of strings, or a single string as a list of
// one (split at spaces when split is set). null decodes as nil.
func jsonStrings(v []byte, split bool) ([]string, bool) {
	switch v[0] {
	case 'n':
		return nil, true
	case '"':
		s, ok := jsonString(v)
		if !ok {
			return nil, false
		}
		if split {
			return strings.Fields(s), true
		}
		return []string{s}, true
	case '[':
		return jsonStringArray(v)
	}
	return nil, false
}

// jsonStringArray decodes a JSON array whose elements are all strings.
func jsonStringArray(v []byte) ([]string, bool) {
	var list []string
	i := skipSpace(v, 1)
	for i < len(v) && v[i] != ']' {
		if v[i] == ',' {
			i = skipSpace(v, i+1)
		}
		end := valueEnd(v, i)
		if i >= len(v) || v[i] != '"' || end > len(v) {
			return nil, false
		}
		s, ok := jsonString(v[i:end])
		if !ok {
			return nil, false
		}
		list = append(list, s)
		i = skipSpace(v, end)
	}
	return list, i < len(v)
}

// jsonBool decodes true, false, "true" or "false" into *dst (or-ing, so
// that either of two claims naming one fact can set it). null is absent.
func jsonBool(v []byte, dst *bool) bool {
	switch string(v) {
	case "true", `"true"`:
		*dst = true
	case "false", `"false"`, "null":
	default:
		return false
	}
	return true
}

// maxDate bounds NumericDate values (about year 36812) so that conversion
// to time.Time cannot overflow.
const maxDate = 1 << 40

// jsonDate decodes a NumericDate: seconds since the epoch, integer or
// fraction. null decodes as the zero Time.
func jsonDate(v []byte) (time.Time, bool) {
	if string(v) == "null" {
		return time.Time{}, true
	}
	if len(v) == 0 || (v[0] != '-' && (v[0] < '0' || v[0] > '9')) {
		return time.Time{}, false
	}
	if len(v) <= 12 {
		var n int64
		digits := true
		for _, c := range v {
			if c < '0' || c > '9' {
				digits = false
				break
			}
			n = n*10 + int64(c-'0')
		}
		if digits {
			return time.Unix(n, 0), true
		}
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil || math.IsNaN(f) || math.Abs(f) > maxDate {
		return time.Time{}, false
	}
	sec := math.Floor(f)
	return time.Unix(int64(sec), int64((f-sec)*1e9)), true
}

// memberName returns an object member name, unescaped in the rare case it
// holds escapes ("\u0069ss" is "iss"), and whether it had any. Callers
// switch on string(name), which does not allocate.
func memberName(raw []byte) (name []byte, escaped bool) {
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw, false
	}
	quoted := make([]byte, 0, len(raw)+2)
	quoted = append(append(append(quoted, '"'), raw...), '"')
	var s string
	if json.Unmarshal(quoted, &s) != nil {
		return nil, true
	}
	return []byte(s), true
}

// objectReader iterates over the members of a JSON object that json.Valid
// has accepted, returning unescaped names and raw values. It refuses a
// member name seen before in the object (compared after unescaping, as
// encoding/json would): RFC 7519 §4 lets a parser either reject duplicate
// claims or take the last, and parsers that take different ones read one
// token two ways ({"sub":null,"sub":"admin"}). It never panics on other
// input; it stops and clears ok.
type objectReader struct {
	data []byte
	pos  int
	ok   bool
	seen memberNames
}

// memberNames is the set of names an objectReader has returned. Tokens
// carry a dozen or two claims: the first few are kept as spans of the
// document and compared in place, without allocating; past them, or once a
// name was escaped (so that its text is not in the document), all names go
// to a map, so that a payload of thousands of tiny members costs linear
// time.
type memberNames struct {
	spans [24][2]int
	n     int
	m     map[string]struct{}
}

// add records name, found in data at [start, end) unless escaped, and
// reports false if it was there already.
func (s *memberNames) add(data, name []byte, escaped bool, start, end int) bool {
	if s.m == nil && !escaped && s.n < len(s.spans) {
		for _, sp := range s.spans[:s.n] {
			if bytes.Equal(data[sp[0]:sp[1]], name) {
				return false
			}
		}
		s.spans[s.n] = [2]int{start, end}
		s.n++
		return true
	}
	if s.m == nil {
		s.m = make(map[string]struct{}, 2*len(s.spans))
		for _, sp := range s.spans[:s.n] {
			s.m[string(data[sp[0]:sp[1]])] = struct{}{}
		}
	}
	if _, dup := s.m[string(name)]; dup {
		return false
	}
	s.m[string(name)] = struct{}{}
	return true
}

func newObjectReader(data []byte) (objectReader, bool) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return objectReader{}, false
	}
	return objectReader{data: data, pos: i + 1, ok: true}, true
}

// next returns the next member; more is false at the end of the object or
// on malformed input or a duplicate name (then r.ok is false).
func (r *objectReader) next() (name, value []byte, more bool) {
	d := r.data
	i := skipSpace(d, r.pos)
	if i < len(d) && d[i] == ',' {
		i = skipSpace(d, i+1)
	}
	if i >= len(d) || d[i] != '"' {
		r.ok = r.ok && i < len(d) && d[i] == '}'
		return nil, nil, false
	}
	end := stringEnd(d, i)
	if end > len(d) || end-i < 2 {
		r.ok = false
		return nil, nil, false
	}
	name, escaped := memberName(d[i+1 : end-1])
	if name == nil && escaped || !r.seen.add(d, name, escaped, i+1, end-1) {
		r.ok = false
		return nil, nil, false
	}
	i = skipSpace(d, end)
	if i >= len(d) || d[i] != ':' {
		r.ok = false
		return nil, nil, false
	}
	i = skipSpace(d, i+1)
	vend := valueEnd(d, i)
	if vend <= i || vend > len(d) {
		r.ok = false
		return nil, nil, false
	}
	r.pos = vend
	return name, d[i:vend], true
}

func skipSpace(d []byte, i int) int {
	for i < len(d) && (d[i] == ' ' || d[i] == '\t' || d[i] == '\n' || d[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index after the closing quote of the string that
// starts at d[i], or len(d)+1 when it is not closed.
func stringEnd(d []byte, i int) int {
	for j := i + 1; j < len(d); j++ {
		switch d[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(d) + 1
}

// valueEnd returns the index after the JSON value that starts at d[i].
func valueEnd(d []byte, i int) int {
	if i >= len(d) {
		return i
	}
	switch d[i] {
	case '"':
		return stringEnd(d, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(d); j++ {
			switch d[j] {
			case '"':
				j = stringEnd(d, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(d) + 1
	}
	j := i
	for j < len(d) {
		switch d[j] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return j
		}
		j++
	}
	return j
}
