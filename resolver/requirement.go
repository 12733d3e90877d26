package resolver

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
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
}

// Maximum sizes of a requirement, so that a hostile value cannot make the
// check expensive.
const (
	maxRequirementValues = 32
	maxRequirementValue  = 256
)

// ParseRequirement reads a requirement from query syntax
// ("role=admin&verified=true"). Unknown keys are ignored so that other
// parameters of a proxy's auth URL do not break it. allowOptional is false for
// the gateway header, where optional is not accepted.
func ParseRequirement(query string, allowOptional bool) (Requirement, error) {
	var req Requirement
	if query == "" {
		return req, nil
	}
	vals, err := url.ParseQuery(query)
	if err != nil {
		return Requirement{}, fmt.Errorf("resolver: requirement: %w", err)
	}
	for key, vs := range vals {
		if len(vs) > maxRequirementValues {
			return Requirement{}, fmt.Errorf("resolver: requirement %s: more than %d values", key, maxRequirementValues)
		}
		switch key {
		case "optional":
			if !allowOptional {
				return Requirement{}, fmt.Errorf("resolver: requirement optional is not accepted here")
			}
			req.Optional, err = parseBool(key, vs)
		case "anonymous":
			var allow bool
			allow, err = parseBool(key, vs)
			req.DenyAnonymous = !allow
		case "verified":
			req.RequireVerified, err = parseBool(key, vs)
		case "role":
			req.Roles, err = parseList(key, vs)
		case "scope":
			req.Scopes, err = parseList(key, vs)
		}
		if err != nil {
			return Requirement{}, err
		}
	}
	return req, nil
}

func parseBool(key string, vs []string) (bool, error) {
	if len(vs) != 1 {
		return false, fmt.Errorf("resolver: requirement %s: given %d times", key, len(vs))
	}
	switch strings.ToLower(vs[0]) {
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return false, fmt.Errorf("resolver: requirement %s: want true or false", key)
}

func parseList(key string, vs []string) ([]string, error) {
	for _, v := range vs {
		if v == "" || len(v) > maxRequirementValue {
			return nil, fmt.Errorf("resolver: requirement %s: empty or longer than %d bytes", key, maxRequirementValue)
		}
	}
	return vs, nil
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
