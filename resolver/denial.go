package resolver

import (
	"encoding/json"
	"strconv"
)

// reasonUnavailable is the error code of a 503: the store or the keys could
// not be reached. It is not a denial of the credential.
const reasonUnavailable Reason = "unavailable"

// descriptions are the fixed, request-independent texts of each reason, used
// in WWW-Authenticate error_description and the JSON body.
var descriptions = map[Reason]string{ //nolint:gosec // G101: reason texts, not credentials
	ReasonMissingCredential:          "no credential",
	ReasonMalformedHeader:            "the Authorization or token header is malformed",
	ReasonMalformedToken:             "the token is not a well-formed JWT",
	ReasonTokenTooLarge:              "the token is larger than 16 KiB",
	ReasonAlgorithm:                  "the token's algorithm is not allowed for its key",
	ReasonUnknownKey:                 "the token's signing key is not in the issuer's JWKS",
	ReasonSignature:                  "the token's signature does not verify",
	ReasonUnknownIssuer:              "the token's issuer is not trusted",
	ReasonAudience:                   "the token is not for this audience",
	ReasonTokenType:                  "the token's typ is not accepted",
	ReasonMissingClaim:               "the token lacks a required claim",
	ReasonInvalidClaim:               "a claim cannot be passed on safely",
	ReasonExpired:                    "the token has expired",
	ReasonNotYetValid:                "the token is not valid yet",
	ReasonIssuedInFuture:             "the token is issued in the future",
	ReasonTokenRevoked:               "the token has been revoked",
	ReasonTokenInactive:              "the token is not active",
	ReasonTokenRejected:              "the identity provider no longer accepts the token",
	ReasonMalformedSession:           "the session cookie is malformed",
	ReasonSessionNotFound:            "the session does not exist or has been revoked",
	ReasonSessionExpired:             "the session has expired",
	ReasonInsufficientRole:           "a required role is missing",
	ReasonInsufficientScope:          "a required scope is missing",
	ReasonInsufficientVerification:   "the user is not verified",
	ReasonInsufficientAuthentication: "anonymous users are not allowed",
	ReasonInvalidRequirement:         "the route's requirement is invalid",
	reasonUnavailable:                "the session store, the keys or the identity provider cannot be reached",
}

// denial is everything written for one reason, prepared once.
type denial struct {
	code            []string
	wwwAuthenticate []string
	body            []byte
	length          []string
}

func newDenials() map[Reason]denial {
	m := make(map[Reason]denial, len(descriptions))
	for r, desc := range descriptions {
		body, _ := json.Marshal(struct {
			Error   string `json:"error"`
			Message string `json:"message"`
		}{string(r), desc})
		body = append(body, '\n')
		www := `Bearer error="invalid_token", error_description="` + desc + `"`
		if r == ReasonMissingCredential {
			www = "Bearer"
		}
		m[r] = denial{
			code:            []string{string(r)},
			wwwAuthenticate: []string{www},
			body:            body,
			length:          []string{strconv.Itoa(len(body))},
		}
	}
	return m
}

// denial returns the prepared answer for reason; an unknown reason (a
// verifier's bug) still gets a well-formed answer.
func (h *Handler) denial(r Reason) denial {
	if d, ok := h.denials[r]; ok {
		return d
	}
	return h.denials[ReasonMalformedToken]
}
