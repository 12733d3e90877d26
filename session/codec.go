package session

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Field names of the session hash; see LAYOUT.md.
const (
	fieldUserID          = "user_id"
	fieldCreatedAt       = "created_at"
	fieldAuthenticatedAt = "authenticated_at"
	fieldLastAccessAt    = "last_access_at"
	fieldAbsoluteExpiry  = "absolute_expires_at"
	fieldAnonymous       = "anonymous"
	fieldVerified        = "verified"
	fieldRoles           = "roles"
	fieldAMR             = "amr"
	fieldAttributes      = "attributes"
)

// errCorrupt marks a stored session that cannot be decoded. Lookup treats it
// as a missing session (the user logs in again); Get and List return it.
var errCorrupt = errors.New("session: corrupt stored session")

// fields returns the record as HSET field/value pairs. Fields at their
// default (false, empty, equal to created_at) are left out: every field
// costs on each Lookup's HGETALL.
func (r *record) fields() []any {
	f := []any{
		fieldUserID, r.userID,
		fieldCreatedAt, strconv.FormatInt(r.created, 10),
		fieldAbsoluteExpiry, strconv.FormatInt(r.absoluteExpiry, 10),
	}
	if r.authenticated != r.created {
		f = append(f, fieldAuthenticatedAt, strconv.FormatInt(r.authenticated, 10))
	}
	if r.lastAccess != r.created {
		f = append(f, fieldLastAccessAt, strconv.FormatInt(r.lastAccess, 10))
	}
	if r.anonymous {
		f = append(f, fieldAnonymous, "1")
	}
	if r.verified {
		f = append(f, fieldVerified, "1")
	}
	if len(r.roles) > 0 {
		f = append(f, fieldRoles, strings.Join(r.roles, ","))
	}
	if len(r.amr) > 0 {
		f = append(f, fieldAMR, strings.Join(r.amr, ","))
	}
	if len(r.attributes) > 0 {
		b, _ := json.Marshal(r.attributes) // a map[string]string always encodes
		f = append(f, fieldAttributes, string(b))
	}
	return f
}

// decodeRecord parses the session hash stored under keyHash. Required:
// user_id, created_at, absolute_expires_at. Missing optional fields take
// their documented defaults; unknown fields are ignored. The error wraps
// errCorrupt.
func decodeRecord(m map[string]string, keyHash string) (record, error) {
	var r record
	// One pass over the fields rather than a lookup per known field: most
	// optional fields are usually absent.
	var created, auth, access, absolute string
	for k, v := range m {
		var err error
		switch k {
		case fieldUserID:
			r.userID = v
		case fieldCreatedAt:
			created = v
		case fieldAbsoluteExpiry:
			absolute = v
		case fieldAuthenticatedAt:
			auth = v
		case fieldLastAccessAt:
			access = v
		case fieldAnonymous:
			r.anonymous, err = parseBool(k, v)
		case fieldVerified:
			r.verified, err = parseBool(k, v)
		case fieldRoles:
			r.roles = splitList(v)
		case fieldAMR:
			r.amr = splitList(v)
		case fieldAttributes:
			if v != "" && v != "{}" {
				if r.attributes, err = parseAttributes(v); err != nil {
					err = fmt.Errorf("%w: %s: not a JSON object of strings", errCorrupt, k)
				}
			}
		}
		if err != nil {
			return record{}, err
		}
	}
	if r.userID == "" {
		return record{}, fmt.Errorf("%w: no %s", errCorrupt, fieldUserID)
	}
	var err error
	if r.created, err = parseUnix(fieldCreatedAt, created, 0, true); err != nil {
		return record{}, err
	}
	if r.absoluteExpiry, err = parseUnix(fieldAbsoluteExpiry, absolute, 0, true); err != nil {
		return record{}, err
	}
	if r.authenticated, err = parseUnix(fieldAuthenticatedAt, auth, r.created, false); err != nil {
		return record{}, err
	}
	if r.lastAccess, err = parseUnix(fieldLastAccessAt, access, r.created, false); err != nil {
		return record{}, err
	}
	r.handle = handleOf(keyHash)
	return r, nil
}

// parseAttributes decodes a JSON object of strings. Lookup decodes it per
// request, so the common shape (no escapes) skips encoding/json.
func parseAttributes(s string) (map[string]string, error) {
	if m, ok := parseSimpleObject(s); ok {
		return m, nil
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, err
	}
	if m == nil { // "null"
		return nil, errors.New("not an object")
	}
	return m, nil
}

// parseSimpleObject parses a JSON object whose keys and values are strings
// without escapes, control characters or invalid UTF-8, exactly as
// encoding/json would. It reports false for anything else, which then goes
// to encoding/json.
func parseSimpleObject(s string) (map[string]string, bool) {
	i := skipSpace(s, 0)
	if i == len(s) || s[i] != '{' {
		return nil, false
	}
	m := make(map[string]string, strings.Count(s, ":"))
	i = skipSpace(s, i+1)
	if i < len(s) && s[i] == '}' {
		return m, skipSpace(s, i+1) == len(s)
	}
	for {
		var k, v string
		var ok bool
		if k, i, ok = simpleString(s, i); !ok {
			return nil, false
		}
		if i = skipSpace(s, i); i == len(s) || s[i] != ':' {
			return nil, false
		}
		if v, i, ok = simpleString(s, skipSpace(s, i+1)); !ok {
			return nil, false
		}
		m[k] = v
		if i = skipSpace(s, i); i == len(s) {
			return nil, false
		}
		switch s[i] {
		case ',':
			i = skipSpace(s, i+1)
		case '}':
			return m, skipSpace(s, i+1) == len(s)
		default:
			return nil, false
		}
	}
}

// simpleString reads a JSON string at s[i] that needs no unescaping and
// returns it and the index after its closing quote.
func simpleString(s string, i int) (string, int, bool) {
	if i == len(s) || s[i] != '"' {
		return "", 0, false
	}
	for j := i + 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == '"':
			v := s[i+1 : j]
			return v, j + 1, utf8.ValidString(v)
		case c == '\\' || c < 0x20:
			return "", 0, false
		}
	}
	return "", 0, false
}

func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

func parseUnix(field, v string, def int64, required bool) (int64, error) {
	if v == "" {
		if required {
			return 0, fmt.Errorf("%w: no %s", errCorrupt, field)
		}
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s: not Unix seconds", errCorrupt, field)
	}
	return n, nil
}

func parseBool(field, v string) (bool, error) {
	switch v {
	case "1", "true":
		return true, nil
	case "0", "false", "":
		return false, nil
	}
	return false, fmt.Errorf("%w: %s: not 1 or 0", errCorrupt, field)
}

// splitList splits a comma list, dropping empty entries and the spaces
// around entries (a writer may use ", ").
func splitList(s string) []string {
	if s == "" {
		return nil
	}
	list := strings.Split(s, ",") // one allocation: Lookup runs this per request
	n := 0
	for _, e := range list {
		if e = strings.TrimSpace(e); e != "" {
			list[n] = e
			n++
		}
	}
	if n == 0 {
		return nil
	}
	return list[:n:n]
}
