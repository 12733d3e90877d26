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
	fieldHandle          = "handle"
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

// fields returns the record as HSET field/value pairs.
func (r *record) fields() []any {
	f := []any{
		fieldUserID, r.userID,
		fieldHandle, r.handle,
		fieldCreatedAt, strconv.FormatInt(r.created, 10),
		fieldAuthenticatedAt, strconv.FormatInt(r.authenticated, 10),
		fieldLastAccessAt, strconv.FormatInt(r.lastAccess, 10),
		fieldAbsoluteExpiry, strconv.FormatInt(r.absoluteExpiry, 10),
		fieldAnonymous, formatBool(r.anonymous),
		fieldVerified, formatBool(r.verified),
		fieldRoles, strings.Join(r.roles, ","),
		fieldAMR, strings.Join(r.amr, ","),
	}
	if len(r.attributes) > 0 {
		b, _ := json.Marshal(r.attributes) // a map[string]string always encodes
		f = append(f, fieldAttributes, string(b))
	}
	return f
}

// decodeRecord parses a session hash. Required: user_id, handle, created_at,
// absolute_expires_at. Missing optional fields take their documented
// defaults. The error wraps errCorrupt.
func decodeRecord(m map[string]string) (record, error) {
	var r record
	var err error
	if r.userID = m[fieldUserID]; r.userID == "" {
		return record{}, fmt.Errorf("%w: no %s", errCorrupt, fieldUserID)
	}
	if r.handle = m[fieldHandle]; r.handle == "" {
		return record{}, fmt.Errorf("%w: no %s", errCorrupt, fieldHandle)
	}
	if r.created, err = parseUnix(m, fieldCreatedAt, 0, true); err != nil {
		return record{}, err
	}
	if r.absoluteExpiry, err = parseUnix(m, fieldAbsoluteExpiry, 0, true); err != nil {
		return record{}, err
	}
	if r.authenticated, err = parseUnix(m, fieldAuthenticatedAt, r.created, false); err != nil {
		return record{}, err
	}
	if r.lastAccess, err = parseUnix(m, fieldLastAccessAt, r.created, false); err != nil {
		return record{}, err
	}
	if r.anonymous, err = parseBool(m, fieldAnonymous); err != nil {
		return record{}, err
	}
	if r.verified, err = parseBool(m, fieldVerified); err != nil {
		return record{}, err
	}
	r.roles = splitList(m[fieldRoles])
	r.amr = splitList(m[fieldAMR])
	if a := m[fieldAttributes]; a != "" && a != "{}" {
		if r.attributes, err = parseAttributes(a); err != nil {
			return record{}, fmt.Errorf("%w: %s: not a JSON object of strings", errCorrupt, fieldAttributes)
		}
	}
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

func parseUnix(m map[string]string, field string, def int64, required bool) (int64, error) {
	v, ok := m[field]
	if !ok || v == "" {
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

func parseBool(m map[string]string, field string) (bool, error) {
	switch m[field] {
	case "1", "true":
		return true, nil
	case "0", "false", "":
		return false, nil
	}
	return false, fmt.Errorf("%w: %s: not 1 or 0", errCorrupt, field)
}

func formatBool(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// splitList splits a comma list, dropping empty entries and the spaces
// around entries (a writer may use ", ").
func splitList(s string) []string {
	if s == "" {
		return nil
	}
	var list []string
	for e := range strings.SplitSeq(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			list = append(list, e)
		}
	}
	return list
}
