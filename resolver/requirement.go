package resolver

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Requirement is what a route asks of a valid credential, chosen by the proxy
// configuration: query parameters on /resolve, or the X-Authresolver-Require
// header on /resolve/{path...}.
type Requirement struct {
	Optional        bool     // no or invalid credential still answers 200 (Session-Valid: false)
	DenyAnonymous   bool     // anonymous=false
	RequireVerified bool     // verified=true
	Roles           []string // any of
	Scopes          []string // all of
	// Login says how a browser navigation without a valid credential is
	// sent to the login page (SPEC §7): LoginRedirect, LoginHeader or none.
	Login   Login
	Profile bool // profile=true: the user's fresh profile from the identity provider (SPEC §5)
}

// Login is the login requirement of a route.
type Login uint8

// Values of the login requirement.
const (
	LoginNone     Login = iota
	LoginRedirect       // login=redirect: 302 Location (Traefik, Caddy, Envoy)
	LoginHeader         // login=header: 401 with Location (NGINX redirects on it)
)

// Maximum sizes of a requirement, so that a hostile value cannot make the
// check expensive.
const (
	maxRequirementValues = 32
	maxRequirementValue  = 256
)

// ErrInvalidRequirement is wrapped by every error of ParseRequirement.
var ErrInvalidRequirement = errors.New("resolver: invalid requirement")

// ParseRequirement reads a requirement from query syntax
// ("role=admin&verified=true"). allowOptional is false for the gateway
// header, where optional is not accepted.
//
// It fails closed: the only accepted input is the grammar of the README:
// pairs name=value joined by "&"; names optional, anonymous, verified,
// profile (each at most once, or repeated with the same value), role and
// scope (each up to 32 times), login (once, redirect or header; never with
// optional=true, which could never deny); boolean values exactly "true" or
// "false"; role and scope
// values percent-encoded as in a URL query, 1 to 256 bytes decoded, UTF-8
// without control characters, a scope also without space, '"' or '\'.
// Anything else (an unknown name, an empty or unparsable value, a ';'
// separator, an empty pair, a bad escape, a single-valued name repeated
// with another value) is an error wrapping ErrInvalidRequirement, never a
// silent skip: a typo must not lift a route's requirement.
func ParseRequirement(query string, allowOptional bool) (Requirement, error) {
	p := requirementParser{allowOptional: allowOptional}
	if query == "" {
		return p.req, nil
	}
	for pair := range strings.SplitSeq(query, "&") {
		name, value, ok := strings.Cut(pair, "=")
		if !ok {
			return Requirement{}, fmt.Errorf("%w: a pair without '='", ErrInvalidRequirement)
		}
		if err := p.add(name, value); err != nil {
			return Requirement{}, fmt.Errorf("%w: %v", ErrInvalidRequirement, err)
		}
	}
	if p.req.Optional && p.req.Login != LoginNone {
		return Requirement{}, fmt.Errorf("%w: optional=true and login contradict each other", ErrInvalidRequirement)
	}
	return p.req, nil
}

// requirementParser collects name=value pairs into a Requirement.
type requirementParser struct {
	req           Requirement
	allowOptional bool
	// seen holds the booleans given so far, by name, to refuse a
	// repetition with another value (which would the author have meant?).
	seen map[string]bool
}

// add applies one pair; raw is the value as written (still escaped).
func (p *requirementParser) add(name, raw string) error {
	switch name {
	case "optional":
		if !p.allowOptional {
			return errors.New("optional is not accepted here")
		}
		return p.setBool(name, raw, &p.req.Optional)
	case "anonymous":
		allow := !p.req.DenyAnonymous
		err := p.setBool(name, raw, &allow)
		p.req.DenyAnonymous = !allow
		return err
	case "verified":
		return p.setBool(name, raw, &p.req.RequireVerified)
	case "profile":
		return p.setBool(name, raw, &p.req.Profile)
	case "role":
		return addValue(&p.req.Roles, name, raw, "")
	case "scope":
		// RFC 6749 §3.3: a scope token never holds a space, '"' or '\'.
		return addValue(&p.req.Scopes, name, raw, " \"\\")
	case "login":
		return p.setLogin(raw)
	}
	return fmt.Errorf("unknown name %s", safeName(name))
}

// setBool sets *dst from a boolean value, written literally: an escaped
// "tru%65" is refused as an odd encoding.
func (p *requirementParser) setBool(name, raw string, dst *bool) error {
	var b bool
	switch raw {
	case "true":
		b = true
	case "false":
	default:
		return fmt.Errorf("%s: want true or false", name)
	}
	if prev, ok := p.seen[name]; ok && prev != b {
		return fmt.Errorf("%s: given with two values", name)
	}
	if p.seen == nil {
		p.seen = make(map[string]bool, 4)
	}
	p.seen[name] = b
	*dst = b
	return nil
}

// setLogin sets the login requirement, given once, spelled literally.
func (p *requirementParser) setLogin(raw string) error {
	if p.req.Login != LoginNone {
		return errors.New("login: given twice")
	}
	switch raw {
	case "redirect":
		p.req.Login = LoginRedirect
	case "header":
		p.req.Login = LoginHeader
	default:
		return errors.New("login: want redirect or header")
	}
	return nil
}

// addValue decodes a role or scope and appends it after checking it.
func addValue(list *[]string, name, raw, forbidden string) error {
	if len(*list) == maxRequirementValues {
		return fmt.Errorf("%s: more than %d values", name, maxRequirementValues)
	}
	value, err := unescapeValue(raw)
	switch {
	case err != nil:
		return fmt.Errorf("%s: %w", name, err)
	case value == "" || len(value) > maxRequirementValue:
		return fmt.Errorf("%s: empty or longer than %d bytes", name, maxRequirementValue)
	case !utf8.ValidString(value):
		return fmt.Errorf("%s: not UTF-8", name)
	case strings.ContainsAny(value, forbidden):
		return fmt.Errorf("%s: a character not allowed in a %s", name, name)
	}
	for i := 0; i < len(value); i++ {
		if c := value[i]; c < 0x20 || c == 0x7f {
			return fmt.Errorf("%s: a control character", name)
		}
	}
	*list = append(*list, value)
	return nil
}

// unescapeValue decodes a value as a URL query does ('+' is a space, %XX a
// byte), accepting only printable ASCII other than separators raw, and
// only well-formed escapes.
func unescapeValue(raw string) (string, error) {
	if !strings.ContainsAny(raw, "%+") {
		for i := 0; i < len(raw); i++ {
			if !rawValueChar(raw[i]) {
				return "", errors.New("a character that must be percent-encoded")
			}
		}
		return raw, nil
	}
	b := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case c == '+':
			b = append(b, ' ')
		case c == '%':
			if i+2 >= len(raw) || unhex(raw[i+1]) > 15 || unhex(raw[i+2]) > 15 {
				return "", errors.New("a malformed percent escape")
			}
			b = append(b, unhex(raw[i+1])<<4|unhex(raw[i+2]))
			i += 2
		case rawValueChar(c):
			b = append(b, c)
		default:
			return "", errors.New("a character that must be percent-encoded")
		}
	}
	return string(b), nil
}

// rawValueChar reports whether c may appear unescaped in a value: printable
// ASCII except the separators '&', '=', ';' (which url.ParseQuery treats as
// an error after half-parsing) and '#'.
func rawValueChar(c byte) bool {
	return c > 0x20 && c < 0x7f && c != '&' && c != '=' && c != ';' && c != '#'
}

// unhex returns the value of hex digit c, or 255 when c is not one.
func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10
	}
	return 255
}

// safeName returns name quoted for an error message (a log line) when it is
// short printable ASCII, else only its length: the header on
// /resolve/{path...} may carry client bytes if a gateway fails to override
// it, and a log line must not carry arbitrary request data.
func safeName(name string) string {
	if len(name) > 32 {
		return fmt.Sprintf("(%d bytes)", len(name))
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= 0x20 || c >= 0x7f {
			return fmt.Sprintf("(%d bytes)", len(name))
		}
	}
	return strconv.Quote(name)
}

// Check returns the reason id fails req, or ReasonNone.
func (req *Requirement) Check(id *Identity) Reason {
	switch {
	case req.DenyAnonymous && id.Anonymous:
		return ReasonInsufficientAuthentication
	case req.RequireVerified && !id.Verified:
		return ReasonInsufficientVerification
	case len(req.Roles) > 0 && !slices.ContainsFunc(req.Roles, func(r string) bool { return slices.Contains(id.Roles, r) }):
		return ReasonInsufficientRole
	}
	for _, s := range req.Scopes {
		if !slices.Contains(id.Scopes, s) {
			return ReasonInsufficientScope
		}
	}
	return ReasonNone
}
