// Package login owns browser sign-in redirects (SPEC §7): telling a browser
// navigation from an API call, rebuilding the URL the browser asked for from
// the headers a proxy forwards, and sending the browser to the login page
// with that URL — only when its host is allow-listed, so that the resolver
// is never an open redirector.
package login

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// DefaultParam is the query parameter of the login URL that carries the
// original URL when Options.Param is empty.
const DefaultParam = "redirect_uri"

// MaxURLBytes bounds the original URL. A longer one gets no redirect: the
// Location header must fit NGINX's default buffer for an auth subrequest's
// answer headers (4 KiB), and a login service rarely takes more.
const MaxURLBytes = 2048

// Sentinels of New, naming the option at fault so that the caller can name
// its configuration variable.
var (
	ErrLoginURL     = errors.New("login: invalid login URL")
	ErrParam        = errors.New("login: invalid redirect parameter")
	ErrAllowedHosts = errors.New("login: invalid allowed hosts")
)

// Reasons Target gives no redirect. They never carry request data.
var (
	ErrNoOriginalURL  = errors.New("login: the proxy sent no original URL")
	ErrAmbiguous      = errors.New("login: a forwarded header is given twice, or both X-Original-URL and X-Forwarded-Host/-Uri")
	ErrUnsafeURL      = errors.New("login: the original URL is not a plain http(s) URL")
	ErrHostNotAllowed = errors.New("login: the original URL's host is not allowed")
)

// Options configure a Redirector.
type Options struct {
	// URL is the login page: absolute https, or http to a loopback host.
	// It may have a query of its own; it must not have a fragment.
	URL string
	// Param is the query key that carries the original URL; default
	// DefaultParam. Unreserved characters only (A-Z a-z 0-9 - . _ ~).
	Param string
	// AllowedHosts are the hosts a browser may be sent back to: exact host
	// names or IP addresses, or ".example.com" for every subdomain of
	// example.com — not example.com itself, which is listed on its own.
	// Ports are not compared (cookies are not separated by port either).
	AllowedHosts []string
}

// Redirector builds login redirects. It is safe for concurrent use.
type Redirector struct {
	prefix   string // login URL up to and including "<param>="
	exact    map[string]bool
	suffixes []string // ".example.com"
}

// New checks o and returns a Redirector. Its errors wrap ErrLoginURL,
// ErrParam or ErrAllowedHosts.
func New(o Options) (*Redirector, error) {
	if o.Param == "" {
		o.Param = DefaultParam
	}
	if !validParam(o.Param) {
		return nil, fmt.Errorf("%w: %q: want 1 to 64 of A-Z a-z 0-9 - . _ ~", ErrParam, o.Param)
	}
	u, err := checkLoginURL(o.URL)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrLoginURL, err)
	}
	if u.Query().Has(o.Param) {
		return nil, fmt.Errorf("%w: %q already has the query parameter %q", ErrLoginURL, o.URL, o.Param)
	}
	if len(o.AllowedHosts) == 0 {
		return nil, fmt.Errorf("%w: empty: no browser could be sent back after signing in", ErrAllowedHosts)
	}
	rd := &Redirector{exact: map[string]bool{}}
	for _, h := range o.AllowedHosts {
		h = strings.ToLower(strings.TrimSpace(h))
		if sub, ok := strings.CutPrefix(h, "."); ok {
			if !validHostname(sub) || net.ParseIP(sub) != nil {
				return nil, fmt.Errorf("%w: %q: want .example.com", ErrAllowedHosts, h)
			}
			rd.suffixes = append(rd.suffixes, h)
			continue
		}
		if ip := net.ParseIP(strings.Trim(h, "[]")); ip != nil {
			rd.exact[ip.String()] = true
			continue
		}
		if !validHostname(h) {
			return nil, fmt.Errorf("%w: %q: want a host name without scheme or port (example.com, or .example.com for its subdomains)", ErrAllowedHosts, h)
		}
		rd.exact[h] = true
	}
	sep := "?"
	if u.RawQuery != "" {
		sep = "&"
	}
	u.ForceQuery = false
	rd.prefix = u.String() + sep + o.Param + "="
	return rd, nil
}

// Location returns where to send r's browser to sign in, and true, when r
// is a browser navigation (Navigation) whose original URL Target accepts.
func (rd *Redirector) Location(r *http.Request) (string, bool) {
	if !Navigation(r) {
		return "", false
	}
	loc, err := rd.Target(r.Header)
	return loc, err == nil
}

// Target returns the login URL carrying the original URL that the proxy
// forwarded in h: X-Original-URL (set by the NGINX configuration), else
// X-Forwarded-Proto, -Host and -Uri (Traefik, Caddy). It returns
// ErrNoOriginalURL, ErrAmbiguous, ErrUnsafeURL or ErrHostNotAllowed when
// there must be no redirect.
func (rd *Redirector) Target(h http.Header) (string, error) {
	orig, err := originalURL(h)
	if err != nil {
		return "", err
	}
	if _, err := rd.Check(orig); err != nil {
		return "", err
	}
	return rd.prefix + url.QueryEscape(orig), nil
}

// Check parses raw, an absolute URL a browser is to be sent to, and returns
// it if it is safe and its host is allowed: http or https, no userinfo, no
// fragment, at most MaxURLBytes, printable ASCII only, no backslash and no
// control character (raw or percent-encoded), a path that does not start
// with "//" (a login service that keeps only the path would turn it into a
// protocol-relative URL to another host). Else it returns ErrUnsafeURL or
// ErrHostNotAllowed. A login service uses it to check the URL it is about
// to send a browser back to.
func (rd *Redirector) Check(raw string) (*url.URL, error) {
	u, err := parseSafe(raw)
	if err != nil {
		return nil, err
	}
	if !rd.allowed(u.Hostname()) {
		return nil, ErrHostNotAllowed
	}
	return u, nil
}

func (rd *Redirector) allowed(host string) bool {
	if ip := net.ParseIP(host); ip != nil {
		return rd.exact[ip.String()]
	}
	host = strings.ToLower(host)
	if rd.exact[host] {
		return true
	}
	for _, s := range rd.suffixes {
		if len(host) > len(s) && strings.HasSuffix(host, s) {
			return true
		}
	}
	return false
}

// originalURL rebuilds the URL the browser asked for from the forwarded
// headers, each of which must be given at most once.
func originalURL(h http.Header) (string, error) {
	orig, n := one(h, "X-Original-Url")
	host, nh := one(h, "X-Forwarded-Host")
	uri, nu := one(h, "X-Forwarded-Uri")
	proto, np := one(h, "X-Forwarded-Proto")
	switch {
	case n > 1 || nh > 1 || nu > 1 || np > 1:
		return "", ErrAmbiguous
	case n == 1 && (nh > 0 || nu > 0):
		return "", ErrAmbiguous
	case n == 1:
		return orig, nil
	case nh == 0 || nu == 0 || np == 0:
		return "", ErrNoOriginalURL
	}
	proto = strings.ToLower(proto)
	if proto != "http" && proto != "https" {
		return "", ErrUnsafeURL
	}
	if !validHost(host) || !strings.HasPrefix(uri, "/") {
		return "", ErrUnsafeURL
	}
	return proto + "://" + host + uri, nil
}

// one returns the value of a header given once, and how often it is given.
func one(h http.Header, canonical string) (string, int) {
	vs := h[canonical]
	if len(vs) != 1 {
		return "", len(vs)
	}
	return vs[0], 1
}

func parseSafe(raw string) (*url.URL, error) {
	if len(raw) > MaxURLBytes || !safeChars(raw) {
		return nil, ErrUnsafeURL
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil,
		u.Scheme != "http" && u.Scheme != "https",
		u.Opaque != "", u.User != nil, u.Host == "", u.Fragment != "", strings.Contains(raw, "#"),
		!validHost(u.Host),
		u.Path != "" && (u.Path[0] != '/' || strings.HasPrefix(u.Path, "//")):
		return nil, ErrUnsafeURL
	}
	// The scheme must be spelled as such: url.Parse lowercases it, and
	// "https:/\host" or "https:host" must not pass for "https://host".
	if len(raw) < len(u.Scheme)+3 || strings.ToLower(raw[:len(u.Scheme)+3]) != u.Scheme+"://" {
		return nil, ErrUnsafeURL
	}
	return u, nil
}

// safeChars reports whether s is printable ASCII without backslash, space
// or quote, and every percent escape is well-formed and decodes to neither a
// control character nor a backslash (an encoded CR/LF must not reach a
// login service that decodes the URL once more and writes it to a header).
func safeChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c <= ' ' || c >= 0x7f || c == '\\' || c == '"' || c == '<' || c == '>':
			return false
		case c == '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return false
			}
			d := unhex(s[i+1])<<4 | unhex(s[i+2])
			if d < ' ' || d == 0x7f || d == '\\' {
				return false
			}
			i += 2
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// validHost reports whether s is a host name or IP address (IPv6 in
// brackets), optionally with a numeric port.
func validHost(s string) bool {
	if h, port, err := net.SplitHostPort(s); err == nil {
		if port == "" || len(port) > 5 || strings.Trim(port, "0123456789") != "" {
			return false
		}
		s = h
	} else if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		s = s[1 : len(s)-1]
	} else if strings.Contains(s, ":") {
		return false
	}
	if ip := net.ParseIP(s); ip != nil {
		return !strings.Contains(s, "%") // no IPv6 zone
	}
	return validHostname(s)
}

// validHostname reports whether s is a DNS name of letters, digits and
// hyphens, with no empty label and no trailing dot (one host must have one
// spelling in the allow-list).
func validHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !alnum(c) && c != '-' {
				return false
			}
		}
	}
	return true
}

func alnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func validParam(p string) bool {
	if p == "" || len(p) > 64 {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !alnum(c) && strings.IndexByte("-._~", c) < 0 {
			return false
		}
	}
	return true
}

// checkLoginURL allows an absolute https URL, or http to a loopback host: a
// login page fetched over plain HTTP from elsewhere could be swapped in
// transit.
func checkLoginURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("empty")
	}
	if !safeChars(raw) {
		return nil, fmt.Errorf("%q has a space, control character, quote or backslash", raw)
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%q: %v", raw, err)
	case u.Opaque != "" || u.Host == "" || !validHost(u.Host):
		return nil, fmt.Errorf("%q: want an absolute URL such as https://auth.example.com/login", raw)
	case u.User != nil:
		return nil, fmt.Errorf("%q: userinfo is not allowed", raw)
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return nil, fmt.Errorf("%q: a fragment is not allowed", raw)
	case u.Scheme == "https":
		return u, nil
	case u.Scheme == "http" && loopback(u.Hostname()):
		return u, nil
	case u.Scheme == "http":
		return nil, fmt.Errorf("%q: http:// is only allowed for a loopback host; use https://", raw)
	}
	return nil, fmt.Errorf("%q: want https:// (or http:// to a loopback host)", raw)
}

func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Navigation reports whether r, the auth request a proxy sent for a
// browser's request, is a top-level navigation that may be redirected: the
// original method (X-Forwarded-Method, X-Original-Method, else r's own) is
// GET or HEAD, Accept names text/html, X-Requested-With is not
// XMLHttpRequest, and Sec-Fetch-Mode is absent or navigate. fetch(), XHR and
// API clients are not navigations; anything ambiguous is not either.
func Navigation(r *http.Request) bool {
	h := r.Header
	method := r.Method
	fm, nf := one(h, "X-Forwarded-Method")
	om, no := one(h, "X-Original-Method")
	switch {
	case nf > 1 || no > 1 || nf == 1 && no == 1 && fm != om:
		return false
	case nf == 1:
		method = fm
	case no == 1:
		method = om
	}
	if method != http.MethodGet && method != http.MethodHead {
		return false
	}
	for _, v := range h["X-Requested-With"] {
		if strings.EqualFold(strings.TrimSpace(v), "XMLHttpRequest") {
			return false
		}
	}
	if mode, n := one(h, "Sec-Fetch-Mode"); n > 1 || n == 1 && mode != "navigate" {
		return false
	}
	return acceptsHTML(h["Accept"])
}

// acceptsHTML reports whether an Accept header names text/html with a
// non-zero quality.
func acceptsHTML(vs []string) bool {
	for _, v := range vs {
		for _, mr := range strings.Split(v, ",") {
			typ, params, _ := strings.Cut(mr, ";")
			if !strings.EqualFold(strings.TrimSpace(typ), "text/html") {
				continue
			}
			if !zeroQuality(params) {
				return true
			}
		}
	}
	return false
}

func zeroQuality(params string) bool {
	for _, p := range strings.Split(params, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(k, "q") {
			v = strings.TrimRight(strings.TrimSpace(v), "0")
			return v == "0." || v == "0" || v == ""
		}
	}
	return false
}
