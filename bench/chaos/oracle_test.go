package main

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		status int
		err    error
		want   outcome
	}{
		{200, nil, outAllow},
		{401, nil, outDeny},
		{403, nil, outDeny},
		{500, nil, outUnavailable},
		{503, nil, outUnavailable},
		{502, nil, outOther},
		{302, nil, outOther},
		{0, errors.New("connection refused"), outClientError},
		{200, errors.New("reset after the status line"), outClientError},
	}
	for _, tt := range tests {
		if got := classify(tt.status, tt.err); got != tt.want {
			t.Errorf("classify(%d, %v) = %s, want %s", tt.status, tt.err, outcomeNames[got], outcomeNames[tt.want])
		}
	}
}

func TestExpectation(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	revoked := truth{revokeStart: at(100), revokedAt: at(110)}
	graced := revoked
	graced.grace = 50 * time.Millisecond
	lost := truth{lostAt: at(100), lostFinal: at(200)}
	unrevoked := revoked
	unrevoked.unrevokedAt = at(300)
	tests := []struct {
		name string
		t    truth
		sent int
		want expect
	}{
		{"valid", truth{}, 0, expectAllow},
		{"invalid", truth{invalid: true}, 0, expectDeny},
		{"before the revocation call", revoked, 99, expectAllow},
		{"while the call is in flight", revoked, 100, expectEither},
		{"just before it returned", revoked, 109, expectEither},
		{"the moment it returned", revoked, 110, expectDeny},
		{"long after", revoked, 10_000, expectDeny},
		{"within the grace", graced, 159, expectEither},
		{"at the end of the grace", graced, 160, expectDeny},
		{"session before Redis died", lost, 99, expectAllow},
		{"session while Redis is dead", lost, 150, expectEither},
		{"session once the empty Redis answers", lost, 200, expectDeny},
		{"revoked token before Redis lost it", unrevoked, 299, expectDeny},
		{"revoked token after Redis lost it", unrevoked, 300, expectEither},
		{"rotated key before its bound", truth{validFrom: at(100)}, 99, expectEither},
		{"rotated key after its bound", truth{validFrom: at(100)}, 100, expectAllow},
	}
	for _, tt := range tests {
		if got := tt.t.expectation(at(tt.sent)); got != tt.want {
			t.Errorf("%s: expectation = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestLate(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tr := truth{revokeStart: t0, revokedAt: t0.Add(10 * time.Millisecond), grace: 5 * time.Second}
	tests := []struct {
		sent time.Duration
		want bool
	}{
		{5 * time.Millisecond, false}, // in flight: either, not late
		{10 * time.Millisecond, true},
		{5 * time.Second, true},
		{5*time.Second + 10*time.Millisecond, false}, // a wrong answer by then
	}
	for _, tt := range tests {
		if got := tr.late(t0.Add(tt.sent)); got != tt.want {
			t.Errorf("late(%v) = %t, want %t", tt.sent, got, tt.want)
		}
	}
}

func TestWrong(t *testing.T) {
	tests := []struct {
		name      string
		e         expect
		o         outcome
		got, want string
		wrong     bool
	}{
		{"valid allowed", expectAllow, outAllow, "alice", "alice", false},
		{"valid allowed as another user", expectAllow, outAllow, "bob", "alice", true},
		{"valid denied", expectAllow, outDeny, "", "alice", true},
		{"valid unavailable", expectAllow, outUnavailable, "", "alice", false},
		{"valid, client error", expectAllow, outClientError, "", "alice", false},
		{"valid, other status", expectAllow, outOther, "", "alice", false},
		{"revoked allowed", expectDeny, outAllow, "alice", "alice", true},
		{"revoked denied", expectDeny, outDeny, "", "alice", false},
		{"revoked unavailable", expectDeny, outUnavailable, "", "alice", false},
		{"invalid allowed with no identity", expectDeny, outAllow, "", "", true},
		{"either allowed", expectEither, outAllow, "alice", "alice", false},
		{"either allowed as another user", expectEither, outAllow, "bob", "alice", true},
		{"either denied", expectEither, outDeny, "", "alice", false},
	}
	for _, tt := range tests {
		if got := wrong(tt.e, tt.o, tt.got, tt.want); got != tt.wrong {
			t.Errorf("%s: wrong = %t, want %t", tt.name, got, tt.wrong)
		}
	}
}

func TestPickFallsBackToCachedJWTs(t *testing.T) {
	hot := &cred{kind: kindHotJWT, user: "hot"}
	w := &world{hot: []*cred{hot}, mix: []kind{kindRevoked, kindLost, kindSession, kindRotated}}
	for i := range 4 {
		if got := w.pick(i); got != hot {
			t.Errorf("pick(%d) = %+v with empty pools, want the cached JWT", i, got)
		}
	}
	rev := &cred{kind: kindRevoked, user: "rev"}
	w.revoked = []*cred{rev}
	if got := w.pick(0); got != rev {
		t.Errorf("pick(0) = %+v, want the revoked credential", got)
	}
}

func TestLoseRedisData(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := &cred{kind: kindSession, user: "s"}
	tok := &cred{kind: kindRevoked, user: "t", jwt: true, t: truth{revokeStart: t0, revokedAt: t0}}
	sess := &cred{kind: kindRevoked, user: "r", t: truth{revokeStart: t0, revokedAt: t0}}
	w := &world{sessions: []*cred{s}, revoked: []*cred{tok, sess}}
	kill := t0.Add(time.Second)
	w.loseRedisData(kill)
	w.sessionsGone(kill.Add(time.Second))
	got := map[string]expect{}
	for _, c := range []*cred{s, tok, sess} {
		got[c.user] = c.t.expectation(kill.Add(2 * time.Second))
	}
	want := map[string]expect{"s": expectDeny, "t": expectEither, "r": expectDeny}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("expectations after the data loss (-want +got):\n%s", diff)
	}
	if s.kind != kindLost || len(w.sessions) != 0 || len(w.lost) != 1 {
		t.Errorf("session not moved to the lost pool: kind %s, %d live, %d lost", kindNames[s.kind], len(w.sessions), len(w.lost))
	}
}
