package main

import "time"

// The wrong-answer oracle. The harness knows the truth about every
// credential it sends (it minted, created and revoked them), and judges each
// answer against what the credential was when the request was sent.
//
// Rules (RELIABILITY.md repeats them):
//   - An answer is an allow (200), a denial (401, 403), unavailable (500 or
//     503: the resolver's 503, which NGINX's auth_request turns into 500),
//     another status, or a client error (no answer: refused, reset, timeout).
//   - A valid credential must not be denied. A credential that is invalid
//     (bad signature, unknown key, garbage), revoked, or a session lost
//     with Redis's data must not be allowed.
//   - A revoked credential is revoked from the moment the revocation call
//     returned: any allow for a request sent after that is wrong. A request
//     sent while the call was in flight may get either answer.
//   - In a scenario that kills the pub/sub connection, the spec allows a
//     replica to keep a cached allow for up to CACHE_TTL; such allows are
//     counted as late, not wrong; any allow after that is wrong. The same
//     holds for -propagation (default 0): an allowance for the pub/sub
//     delivery delay that only the unit tests use, see RELIABILITY.md.
//   - A session lost with Redis's data (Redis restarted empty) may get any
//     answer from the kill until the new Redis answered PING; after that an
//     allow is wrong.
//   - A JWT revocation is a record in Redis: when Redis loses its data the
//     token is valid again as far as any replica can know, so from the kill
//     on it may get either answer (scenario 1 counts such allows apart).
//   - A token signed by a key rotated in at the IdP may be denied until the
//     refetch cooldown and the cached denial have passed (scenario 4 sets
//     that bound: heal + JWKS_REFETCH_COOLDOWN + CACHE_TTL + 1 s).
//   - An allow that carries another user's identity is wrong, whatever the
//     credential.
//   - Unavailable, other statuses and client errors are never wrong answers;
//     they are counted, and scenarios set their own bounds on them.

// outcome is the class of an answer.
type outcome uint8

const (
	outAllow outcome = iota
	outDeny
	outUnavailable
	outOther
	outClientError
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"200", "401/403", "5xx unavailable", "other", "client error"}

func classify(status int, err error) outcome {
	switch {
	case err != nil:
		return outClientError
	case status == 200:
		return outAllow
	case status == 401 || status == 403:
		return outDeny
	case status == 500 || status == 503:
		return outUnavailable
	default:
		return outOther
	}
}

// expect is what a credential deserves when a request is sent.
type expect uint8

const (
	expectAllow expect = iota
	expectDeny
	expectEither // in flight during a revocation, a lost session while Redis is down
)

// truth is what the harness knows about a credential at send time.
type truth struct {
	invalid     bool      // never valid
	revokeStart time.Time // the revocation call was made (zero: never)
	revokedAt   time.Time // the revocation call returned 204 (zero: not yet)
	lostAt      time.Time // its session was lost when Redis died (zero: not lost)
	lostFinal   time.Time // the new, empty Redis answered (zero: not yet)
	validFrom   time.Time // before this, either answer (a key just rotated in)
	unrevokedAt time.Time // its revocation was lost with Redis's data (a JWT's jti)
	grace       time.Duration
}

// expectation returns what a request sent at sent deserves, and for an
// allowed revoked credential whether it is still within the grace.
func (t truth) expectation(sent time.Time) expect {
	switch {
	case t.invalid:
		return expectDeny
	case !t.unrevokedAt.IsZero() && !sent.Before(t.unrevokedAt):
		return expectEither
	case !t.revokedAt.IsZero() && !sent.Before(t.revokedAt.Add(t.grace)):
		return expectDeny
	case !t.revokeStart.IsZero() && !sent.Before(t.revokeStart):
		return expectEither // in flight, or revoked and within the grace
	case !t.lostFinal.IsZero() && !sent.Before(t.lostFinal):
		return expectDeny
	case !t.lostAt.IsZero() && !sent.Before(t.lostAt):
		return expectEither
	case sent.Before(t.validFrom):
		return expectEither
	}
	return expectAllow
}

// late reports whether an allow of a request sent at sent is one the
// grace excuses: after the revocation returned, within the grace.
func (t truth) late(sent time.Time) bool {
	return !t.revokedAt.IsZero() && !sent.Before(t.revokedAt) && sent.Before(t.revokedAt.Add(t.grace)) &&
		(t.unrevokedAt.IsZero() || sent.Before(t.unrevokedAt))
}

// wrong reports whether an answer is a wrong answer: an allow where a denial
// was due, a denial where an allow was due, or an allow for another user.
func wrong(e expect, o outcome, gotUser, wantUser string) bool {
	switch {
	case o == outAllow && e == expectDeny:
		return true
	case o == outDeny && e == expectAllow:
		return true
	case o == outAllow && gotUser != wantUser:
		return true
	}
	return false
}
