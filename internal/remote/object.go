package remote

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/authresolver/authresolver/resolver"
)

// Object is a JSON object's members by exact name, values undecoded.
type Object map[string]json.RawMessage

// ErrNotObject means an answer is not one well-formed JSON object.
var ErrNotObject = errors.New("remote: not a JSON object")

// ParseObject reads body as exactly one JSON object. It refuses invalid
// UTF-8, duplicate member names (which two readers could resolve
// differently), anything but an object at the top and trailing data.
// Names are kept exactly: encoding/json's case-insensitive matching into
// structs would let "Sub" stand in for "sub". The members are sliced out
// of body by a scan that json.Valid has made safe, without decoding them.
func ParseObject(body []byte) (Object, error) {
	if !utf8.Valid(body) {
		return nil, fmt.Errorf("%w: invalid UTF-8", ErrNotObject)
	}
	if !json.Valid(body) {
		return nil, fmt.Errorf("%w: not JSON", ErrNotObject)
	}
	i := skipSpace(body, 0)
	if body[i] != '{' {
		return nil, ErrNotObject
	}
	obj := make(Object, 16)
	for i = skipSpace(body, i+1); body[i] != '}'; i = skipSpace(body, i+1) {
		end := stringEnd(body, i)
		name, ok := jsonString(body[i:end])
		if !ok {
			return nil, ErrNotObject
		}
		i = skipSpace(body, skipSpace(body, end)+1) // past ':'
		end = valueEnd(body, i)
		if _, dup := obj[name]; dup {
			return nil, fmt.Errorf("%w: duplicate member %q", ErrNotObject, name)
		}
		obj[name] = body[i:end]
		if i = skipSpace(body, end); body[i] == '}' {
			break
		}
	}
	return obj, nil
}

func skipSpace(d []byte, i int) int {
	for i < len(d) && (d[i] == ' ' || d[i] == '\t' || d[i] == '\r' || d[i] == '\n') {
		i++
	}
	return i
}

// stringEnd returns the index after the string starting at d[i] ('"').
func stringEnd(d []byte, i int) int {
	for i++; d[i] != '"'; i++ {
		if d[i] == '\\' {
			i++
		}
	}
	return i + 1
}

// valueEnd returns the index after the value starting at d[i].
func valueEnd(d []byte, i int) int {
	switch d[i] {
	case '"':
		return stringEnd(d, i)
	case '{', '[':
		depth := 0
		for ; ; i++ {
			switch d[i] {
			case '"':
				i = stringEnd(d, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
	}
	for i < len(d) && d[i] != ',' && d[i] != '}' && d[i] != ']' && d[i] != ' ' && d[i] != '\t' && d[i] != '\r' && d[i] != '\n' {
		i++
	}
	return i
}

// present reports whether name is a member with a non-null value.
func (o Object) present(name string) (json.RawMessage, bool) {
	v, ok := o[name]
	if !ok || string(v) == "null" {
		return nil, false
	}
	return v, true
}

// String returns a string member; null counts as absent.
func (o Object) String(name string) (string, bool, error) {
	v, ok := o.present(name)
	if !ok {
		return "", false, nil
	}
	s, ok := jsonString(v)
	if !ok {
		return "", false, fmt.Errorf("remote: member %q is not a string", name)
	}
	return s, true, nil
}

// jsonString decodes a JSON string value; one without escapes (the usual
// case) is its bytes between the quotes, as ParseObject checked UTF-8.
func jsonString(v json.RawMessage) (string, bool) {
	if len(v) < 2 || v[0] != '"' {
		return "", false
	}
	if bytes.IndexByte(v, '\\') < 0 {
		return string(v[1 : len(v)-1]), true
	}
	var s string
	return s, json.Unmarshal(v, &s) == nil
}

// Bool returns a boolean member, tolerating "true"/"false" strings as JWT
// claims are read; null counts as absent.
func (o Object) Bool(name string) (bool, bool, error) {
	v, ok := o.present(name)
	if !ok {
		return false, false, nil
	}
	switch string(v) {
	case "true", `"true"`:
		return true, true, nil
	case "false", `"false"`:
		return false, true, nil
	}
	return false, false, fmt.Errorf("remote: member %q is not a boolean", name)
}

// Strings returns a member that is a string (split on spaces when split,
// else one element) or an array of strings.
func (o Object) Strings(name string, split bool) ([]string, bool, error) {
	v, ok := o.present(name)
	if !ok {
		return nil, false, nil
	}
	if v[0] == '"' {
		s, _ := jsonString(v) // valid: ParseObject checked the document
		if split {
			return strings.Fields(s), true, nil
		}
		return []string{s}, true, nil
	}
	var list []string
	if v[0] != '[' || json.Unmarshal(v, &list) != nil {
		return nil, false, fmt.Errorf("remote: member %q is not a string or an array of strings", name)
	}
	return list, true, nil
}

// Date returns a NumericDate member (seconds since the epoch, integer or
// fractional).
func (o Object) Date(name string) (time.Time, bool, error) {
	v, ok := o.present(name)
	if !ok {
		return time.Time{}, false, nil
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil || f < 0 || f > math.MaxInt32*4 {
		return time.Time{}, false, fmt.Errorf("remote: member %q is not a NumericDate", name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, nil
}

// Text returns a member as claim-header text: strings as they are, arrays
// of strings comma-joined, anything else as compact JSON; null and absent
// give false.
func (o Object) Text(name string) (string, bool) {
	v, ok := o.present(name)
	if !ok {
		return "", false
	}
	switch v[0] {
	case '"':
		s, _ := jsonString(v)
		return s, true
	case '[':
		var list []string
		if json.Unmarshal(v, &list) == nil {
			return strings.Join(list, ","), true
		}
	}
	var b bytes.Buffer
	if json.Compact(&b, v) != nil {
		return string(v), true
	}
	return b.String(), true
}

// Claims returns the text of the named members that are present, or nil
// when names is empty.
func (o Object) Claims(names []string) map[string]string {
	if len(names) == 0 {
		return nil
	}
	out := make(map[string]string, len(names))
	for _, n := range names {
		if s, ok := o.Text(n); ok {
			out[n] = s
		}
	}
	return out
}

// Identity maps the members of an introspection answer or a profile to
// an Identity, from the same sources as JWT claims (SPEC §3): sub; jti;
// anonymous from is_anonymous, role "anon" or Authgear's claim; verified
// from email_verified or Authgear's claim; roles from roles or Authgear's
// claim; scopes from scope (space list) or scp; amr; iat; auth_time; exp.
// A member of the wrong type is an error: the answer is not well formed.
func (o Object) Identity() (resolver.Identity, error) {
	var id resolver.Identity
	var errs []error
	str := func(name string) string {
		s, _, err := o.String(name)
		errs = append(errs, err)
		return s
	}
	boolean := func(names ...string) bool {
		for _, n := range names {
			b, ok, err := o.Bool(n)
			errs = append(errs, err)
			if ok {
				return b
			}
		}
		return false
	}
	list := func(split bool, names ...string) []string {
		for _, n := range names {
			l, ok, err := o.Strings(n, split)
			errs = append(errs, err)
			if ok {
				return l
			}
		}
		return nil
	}
	date := func(name string) time.Time {
		t, _, err := o.Date(name)
		errs = append(errs, err)
		return t
	}
	id.UserID = str("sub")
	id.Issuer = str("iss")
	id.TokenID = str("jti")
	id.Anonymous = boolean("is_anonymous", "https://authgear.com/claims/user/is_anonymous") || str("role") == "anon"
	id.Verified = boolean("email_verified", "https://authgear.com/claims/user/is_verified")
	id.Roles = list(false, "roles", "https://authgear.com/claims/user/roles")
	id.Scopes = list(true, "scope", "scp")
	id.AMR = list(false, "amr")
	id.IssuedAt = date("iat")
	id.AuthenticatedAt = id.IssuedAt
	if t := date("auth_time"); !t.IsZero() {
		id.AuthenticatedAt = t
	}
	id.ExpiresAt = date("exp")
	if err := errors.Join(errs...); err != nil {
		return resolver.Identity{}, err
	}
	return id, nil
}
