package session

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
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
		if err := json.Unmarshal([]byte(a), &r.attributes); err != nil {
			return record{}, fmt.Errorf("%w: %s: not a JSON object of strings", errCorrupt, fieldAttributes)
		}
	}
	return r, nil
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
