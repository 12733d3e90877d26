package resolver

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Limits on what a claim may put into a header. A single value over
// maxHeaderValue bytes, or with a control character, is refused: for the user
// id and issuer that denies the credential (invalid_claim); an extra claim
// header is left out. List items (roles, amr) that are invalid are dropped, and
// a list keeps at most maxListItems items. Values are never truncated, so an
// upstream never sees a shortened role or id.
const (
	maxHeaderValue = 1024
	maxListItems   = 64
)

// ClaimHeader maps a claim (JWT) or session attribute to an extra identity
// header, e.g. email → X-Auth-Email.
type ClaimHeader struct {
	Claim  string
	Header string // without the prefix
}

// names holds the canonical identity header names for a prefix.
type names struct {
	sessionValid, userID, userAnonymous, userVerified, userRoles string
	sessionAmr, authenticatedAt, expiresAt, credential, issuer   string
	sessionID, errorCode, assertion                              string
	claims                                                       []ClaimHeader // Header is the full canonical name
	order                                                        []string      // identity header names by position (hSessionValid…, then claims)
	all                                                          []string      // order plus errorCode: every name an answer may describe the caller with
}

func newNames(prefix string, claims []ClaimHeader) names {
	c := func(s string) string { return http.CanonicalHeaderKey(prefix + s) }
	n := names{
		sessionValid:    c("Session-Valid"),
		userID:          c("User-Id"),
		userAnonymous:   c("User-Anonymous"),
		userVerified:    c("User-Verified"),
		userRoles:       c("User-Roles"),
		sessionAmr:      c("Session-Amr"),
		authenticatedAt: c("Session-Authenticated-At"),
		expiresAt:       c("Expires-At"),
		credential:      c("Credential"),
		issuer:          c("Issuer"),
		sessionID:       c("Session-Id"),
		errorCode:       c("Error"),
		assertion:       c("Assertion"),
	}
	n.order = []string{n.sessionValid, n.userAnonymous, n.userVerified, n.userID, n.credential,
		n.userRoles, n.sessionAmr, n.authenticatedAt, n.expiresAt, n.issuer, n.sessionID, n.assertion}
	for _, ch := range claims {
		n.claims = append(n.claims, ClaimHeader{Claim: ch.Claim, Header: c(ch.Header)})
		n.order = append(n.order, c(ch.Header))
	}
	n.all = append(slices.Clip(n.order), n.errorCode)
	return n
}

var (
	valTrue  = []string{"true"}
	valFalse = []string{"false"}
)

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// Positions of the identity headers in names.order and in a verdict's
// values; claim headers follow from numFixed on.
const (
	hSessionValid = iota
	hUserAnonymous
	hUserVerified
	hUserID
	hCredential
	hUserRoles
	hSessionAmr
	hAuthenticatedAt
	hExpiresAt
	hIssuer
	hSessionID
	hAssertion // set by Handler.newVerdict when an Asserter is configured
	numFixed
)

// identityHeaders prepares the values of an allow answer's identity
// headers, aligned with n.order; an empty value is a header not sent. A
// cached verdict then costs one word pair per header, and writing it
// assigns sub-slices without allocating. It returns ReasonInvalidClaim when
// the user id or issuer cannot be written safely.
func (n *names) identityHeaders(id *Identity) ([]string, Reason) {
	if !validValue(id.UserID) || !validValue(id.Issuer) || !validValue(id.SessionHandle) {
		return nil, ReasonInvalidClaim
	}
	vals := make([]string, len(n.order))
	vals[hSessionValid] = "true"
	vals[hUserAnonymous] = boolText(id.Anonymous)
	vals[hUserVerified] = boolText(id.Verified)
	vals[hUserID] = id.UserID
	vals[hCredential] = id.Credential
	vals[hUserRoles] = joinList(id.Roles, ",")
	vals[hSessionAmr] = joinList(id.AMR, " ")
	if !id.AuthenticatedAt.IsZero() {
		vals[hAuthenticatedAt] = strconv.FormatInt(id.AuthenticatedAt.Unix(), 10)
	}
	if !id.ExpiresAt.IsZero() {
		vals[hExpiresAt] = strconv.FormatInt(id.ExpiresAt.Unix(), 10)
	}
	vals[hIssuer] = id.Issuer
	vals[hSessionID] = id.SessionHandle
	for i, ch := range n.claims {
		if v := id.Claims[ch.Claim]; validValue(v) {
			vals[numFixed+i] = v
		}
	}
	return vals, ReasonNone
}

// joinList joins the valid items of a list with sep, dropping items that are
// empty, too long, contain a control character or the separator, and keeping
// at most maxListItems.
func joinList(items []string, sep string) string {
	if len(items) == 0 {
		return ""
	}
	var b strings.Builder
	n := 0
	for _, it := range items {
		if n == maxListItems {
			break
		}
		if it == "" || !validValue(it) || strings.Contains(it, sep) {
			continue
		}
		if n > 0 {
			b.WriteString(sep)
		}
		b.WriteString(it)
		n++
	}
	return b.String()
}

// validValue reports whether s can be written as a header value unchanged: no
// control characters (CR/LF/NUL/tab/DEL) and at most maxHeaderValue bytes.
func validValue(s string) bool {
	if len(s) > maxHeaderValue {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}
