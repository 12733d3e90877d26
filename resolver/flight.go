package resolver

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// DefaultFlightTimeout bounds a verification or lookup when
// Options.FlightTimeout is zero.
const DefaultFlightTimeout = 3 * time.Second

// maxFills is how many times a lookup is redone when invalidations keep
// arriving while it runs, before the request gets a 503.
const maxFills = 3

// errInvalidationRace is the 503 of a lookup that every invalidation raced.
var errInvalidationRace = errors.New("resolver: invalidations kept racing the lookup")

// verdict returns the decision for cred: from the in-process cache, else
// resolved once for all concurrent requests carrying the same credential.
//
// It owns the revocation invariant of the decision cache (groupcache's
// Do(key, fill) shape): once a revocation's Cache invalidation has
// returned, no request gets an allow resolved before it. Three rules hold
// it, all here:
//   - A flight is keyed by the credential and the cache epoch its caller
//     observed, so a request arriving after an invalidation never joins a
//     lookup that started before it.
//   - A flight stores its verdict with that epoch; Cache.Set refuses it if
//     one of its tags was invalidated since (checked under the lock the
//     invalidation takes).
//   - After the flight, every caller (the one that ran it too) asks the
//     cache whether one of the verdict's tags was invalidated since that
//     epoch. If so, the allow may predate a revocation: it is not returned
//     but resolved again, at most maxFills times, then 503. Revocations of
//     other credentials do not count, so a stream of logouts elsewhere
//     neither fails lookups nor keeps them out of the cache.
//
// A denial is returned whatever the epoch: it grants nothing.
func (h *Handler) verdict(ctx context.Context, cred Credential) (*Verdict, error) {
	c := h.opts.Cache
	var key Key
	if c != nil {
		key = h.keys.key(cred)
		if v, ok := c.Get(key, h.now()); ok {
			h.metrics.cacheResult(tierL1, true)
			return v, nil
		}
		h.metrics.cacheResult(tierL1, false)
	}
	if reason := h.malformed(cred); reason != ReasonNone {
		return h.newVerdict(Identity{}, reason)
	}
	if c == nil {
		// Without a cache there is no epoch to tell a request that a
		// revocation happened since a flight started: nothing is shared.
		ctx, cancel := context.WithTimeout(ctx, h.opts.FlightTimeout)
		defer cancel()
		v, _, err := h.fill(ctx, cred)
		return v, err
	}
	return h.collapsed(ctx, key, flightVerdict, func(ctx context.Context) (*Verdict, bool, error) {
		return h.fill(ctx, cred)
	})
}

// Kinds of flight, so that a plain verdict and a profiled one for the same
// credential never share a flight.
const (
	flightVerdict byte = iota
	flightProfile
)

// collapsed runs fill once for all concurrent callers asking for key of
// kind, under the rules of verdict: the flight is keyed by the epoch its
// caller observed, stores its verdict under it, and an allow one of whose
// tags was invalidated since is resolved again, at most maxFills times.
func (h *Handler) collapsed(ctx context.Context, key Key, kind byte, fill func(context.Context) (*Verdict, bool, error)) (*Verdict, error) {
	c := h.opts.Cache
	for range maxFills {
		epoch := c.Epoch()
		v, err := h.flight(ctx, key, kind, epoch, fill)
		if err != nil {
			return nil, err
		}
		if v.Reason != ReasonNone || !c.Changed(epoch, v) {
			return v, nil
		}
	}
	return nil, errInvalidationRace
}

// flight runs fill once for all callers asking for key of kind at epoch,
// and stores its verdict under that epoch.
func (h *Handler) flight(ctx context.Context, key Key, kind byte, epoch uint64, fill func(context.Context) (*Verdict, bool, error)) (*Verdict, error) {
	var fk [25]byte
	fk[0] = kind
	binary.LittleEndian.PutUint64(fk[1:], key.A)
	binary.LittleEndian.PutUint64(fk[9:], key.B)
	binary.LittleEndian.PutUint64(fk[17:], epoch)
	ran := false
	res, err, _ := h.flights.Do(string(fk[:]), func() (any, error) {
		ran = true
		// Detached from this request: others wait on the flight, and one
		// proxy giving up must not fail them. Bounded by its own timeout
		// instead, so a hung verifier or store frees the flight.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.opts.FlightTimeout)
		defer cancel()
		v, store, err := fill(ctx)
		if err != nil {
			return nil, err
		}
		if store && v.Expires.After(h.now()) {
			h.opts.Cache.Set(key, v, epoch)
		}
		return v, nil
	})
	if !ran {
		h.metrics.collapsed()
	}
	if err != nil {
		return nil, err
	}
	return res.(*Verdict), nil
}

// malformed refuses, before any I/O (L2, store, verifier), a credential
// that cannot be valid: so a flood of distinct garbage costs no round trip.
func (h *Handler) malformed(cred Credential) Reason {
	switch {
	case cred.Kind == CredentialSession:
		if h.opts.ValidSessionID != nil && !h.opts.ValidSessionID(cred.Value) {
			return ReasonMalformedSession
		}
	case h.opts.Introspector == nil && !wellFormedJWS(cred.Value):
		// With an Introspector, a bearer token that is not a JWS is an
		// opaque token for it to decide.
		return ReasonMalformedToken
	}
	return ReasonNone
}

// wellFormedJWS reports whether tok has the shape of a compact JWS (RFC
// 7515 §7.1): three non-empty unpadded base64url segments, the first
// decoding to a JSON object. The verifier does the real parsing.
func wellFormedJWS(tok string) bool {
	hdr, rest, ok := strings.Cut(tok, ".")
	payload, sig, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 || !base64url(hdr) || !base64url(payload) || !base64url(sig) {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(hdr)
	b = bytes.TrimSpace(b)
	return err == nil && len(b) >= 2 && b[0] == '{' && b[len(b)-1] == '}' && json.Valid(b)
}

// base64url reports whether s is a non-empty unpadded base64url text of a
// length some byte string encodes to.
func base64url(s string) bool {
	if s == "" || len(s)%4 == 1 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '.' || !isTokenChar(c) {
			return false
		}
	}
	return true
}
