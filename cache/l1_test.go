package cache_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/authresolver/authresolver/cache"
	"github.com/authresolver/authresolver/internal/testclock"
	"github.com/authresolver/authresolver/resolver"
)

// key returns the resolver.Key with hash words a and b; a picks the shard
// (a % cache.ShardCount). The resolver makes Keys only from credentials and
// keeps their fields unexported, so tests build them by layout, checked here.
func key(a, b uint64) resolver.Key { return resolver.Key{A: a, B: b} }

// inShard returns the i-th key of shard s.
func inShard(s, i int) resolver.Key {
	return key(uint64(s+i*cache.ShardCount), uint64(i))
}

func sessionVerdict(user, handle string, exp time.Time) *resolver.Verdict {
	return &resolver.Verdict{
		Identity: resolver.Identity{Credential: resolver.CredentialSession, UserID: user, SessionHandle: handle},
		Expires:  exp,
	}
}

func tokenVerdict(user, jti string, exp time.Time) *resolver.Verdict {
	return &resolver.Verdict{
		Identity: resolver.Identity{Credential: resolver.CredentialJWT, UserID: user, TokenID: jti, Issuer: "https://idp.test"},
		Expires:  exp,
	}
}

func denialVerdict(exp time.Time) *resolver.Verdict {
	return &resolver.Verdict{Reason: resolver.ReasonSignature, Expires: exp}
}

// set stores v under k with the current epoch, as a fill that saw no
// revocation does.
func set(c *cache.L1, k resolver.Key, v *resolver.Verdict) { c.Set(k, v, c.Epoch()) }

func checkInvariants(t *testing.T, c *cache.L1) {
	t.Helper()
	if err := c.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
}

func TestL1TTL(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	c := cache.NewL1(cache.L1Options{})
	k := key(1, 1)
	v := sessionVerdict("u1", "h1", now.Add(5*time.Second))
	set(c, k, v)
	for _, tc := range []struct {
		at   time.Duration
		want bool
	}{
		{-time.Hour, true}, // a clock that steps back still sees the entry
		{0, true},
		{5*time.Second - time.Nanosecond, true},
		{5 * time.Second, false}, // Expires is the first instant it is unusable
		{5*time.Second + time.Nanosecond, false},
		{time.Hour, false},
	} {
		got, ok := c.Get(k, now.Add(tc.at))
		if ok != tc.want || (ok && got != v) {
			t.Errorf("Get at expiry%+v = %p, %v; want hit %v", tc.at-5*time.Second, got, ok, tc.want)
		}
	}
	if _, ok := c.Get(key(2, 2), now); ok {
		t.Error("Get of an absent key hit")
	}
}

func TestL1BoundedByEntries(t *testing.T) {
	const perShard = 4
	c := cache.NewL1(cache.L1Options{MaxEntries: perShard * cache.ShardCount})
	exp := time.Now().Add(time.Hour)

	// One shard: the newest entry is always stored, older ones make room.
	for i := range 50 {
		k := inShard(7, i)
		set(c, k, sessionVerdict(fmt.Sprint("u", i), fmt.Sprint("h", i), exp))
		if _, ok := c.Get(k, time.Now()); !ok {
			t.Fatalf("entry %d was not stored", i)
		}
		if n, _ := c.Len(); n > perShard {
			t.Fatalf("after %d sets: %d entries in one shard, bound %d", i+1, n, perShard)
		}
	}
	checkInvariants(t, c)

	// All shards: the total stays within the bound.
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range 10_000 {
		set(c, key(rnd.Uint64(), rnd.Uint64()), tokenVerdict(fmt.Sprint("u", i%100), fmt.Sprint("j", i), exp))
	}
	if n, _ := c.Len(); n > perShard*cache.ShardCount {
		t.Errorf("%d entries, bound %d", n, perShard*cache.ShardCount)
	}
	checkInvariants(t, c)
}

func TestL1BoundBelowOnePerShard(t *testing.T) {
	// A bound below one entry per shard cannot be split evenly; NewL1 says
	// what it keeps instead of holding up to ShardCount entries.
	c := cache.NewL1(cache.L1Options{MaxEntries: 10})
	exp := time.Now().Add(time.Hour)
	for i := range 1000 {
		set(c, key(uint64(i), uint64(i)), denialVerdict(exp))
	}
	n, _ := c.Len()
	perShard, _ := c.ShardBounds()
	t.Logf("NewL1 with MaxEntries 10: %d per shard, %d entries held after 1000 sets", perShard, n)
	if n > max(10, cache.ShardCount) {
		t.Errorf("%d entries held", n)
	}
}

func TestL1BoundedByBytes(t *testing.T) {
	exp := time.Now().Add(time.Hour)
	one := sessionVerdict("user-000", "handle-000", exp).Size()
	const fit = 5
	c := cache.NewL1(cache.L1Options{MaxEntries: 1_000_000, MaxBytes: fit * one * cache.ShardCount})
	for i := range 40 {
		k := inShard(3, i)
		set(c, k, sessionVerdict(fmt.Sprintf("user-%03d", i), fmt.Sprintf("handle-%03d", i), exp))
		if _, ok := c.Get(k, time.Now()); !ok {
			t.Fatalf("entry %d was not stored", i)
		}
		n, b := c.Len()
		if b > fit*one || n > fit {
			t.Fatalf("after %d sets: %d entries, %d bytes; bound %d bytes (%d entries)", i+1, n, b, fit*one, fit)
		}
	}
	if n, b := c.Len(); n != fit || b != fit*one {
		t.Errorf("Len = %d, %d; want %d, %d", n, b, fit, fit*one)
	}
	checkInvariants(t, c)
	c.Flush()
	if n, b := c.Len(); n != 0 || b != 0 {
		t.Errorf("Len after Flush = %d, %d; want 0, 0", n, b)
	}
}

func TestL1EvictsExpiredFirst(t *testing.T) {
	c := cache.NewL1(cache.L1Options{MaxEntries: 4 * cache.ShardCount})
	now := time.Now()
	for i := range 3 {
		set(c, inShard(0, i), denialVerdict(now.Add(-time.Second)))
	}
	keep := inShard(0, 3)
	set(c, keep, sessionVerdict("u", "keep", now.Add(time.Hour)))
	set(c, inShard(0, 4), sessionVerdict("u", "new", now.Add(time.Hour)))
	if _, ok := c.Get(keep, now); !ok {
		t.Error("a live entry was evicted while expired ones were there")
	}
	if n, _ := c.Len(); n != 2 {
		t.Errorf("Len = %d, want 2 (the expired entries gone)", n)
	}
	checkInvariants(t, c)
}

// TestL1MakeRoomUsesClock: which entries have expired when room is made is
// decided by the injected clock, not the wall clock.
func TestL1MakeRoomUsesClock(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0) // far from the wall clock
	clk := testclock.New(t0)
	c := cache.NewL1(cache.L1Options{MaxEntries: 4 * cache.ShardCount, Now: clk.Now})
	for i := range 3 {
		set(c, inShard(0, i), denialVerdict(t0.Add(time.Second)))
	}
	keep := inShard(0, 3)
	set(c, keep, sessionVerdict("u", "keep", t0.Add(time.Hour)))
	clk.Advance(2 * time.Second) // the denials have expired by this clock
	set(c, inShard(0, 4), sessionVerdict("u", "new", t0.Add(time.Hour)))
	if n, _ := c.Len(); n != 2 {
		t.Errorf("Len = %d, want 2 (the entries expired by the injected clock gone)", n)
	}
	if _, ok := c.Get(keep, clk.Now()); !ok {
		t.Error("a live entry was evicted while expired ones were there")
	}
	checkInvariants(t, c)
}

func TestL1Invalidate(t *testing.T) {
	exp := time.Now().Add(time.Hour)
	verdicts := map[string]*resolver.Verdict{
		"s1":     sessionVerdict("u1", "h1", exp),
		"s2":     sessionVerdict("u1", "h2", exp),
		"s3":     sessionVerdict("u2", "h3", exp),
		"t1":     tokenVerdict("u1", "j1", exp),
		"t2":     tokenVerdict("u1", "j2", exp),
		"t3":     tokenVerdict("u2", "j3", exp),
		"t4":     tokenVerdict("u1", "", exp), // no jti: only its user's tag
		"t5":     tokenVerdict("h1", "u1", exp),
		"denial": denialVerdict(exp),
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range verdicts {
			if !yield(n) {
				return
			}
		}
	})
	tests := []struct {
		tag  string
		gone []string
	}{
		{resolver.SessionTag("h1"), []string{"s1"}},
		{resolver.UserSessionsTag("u1"), []string{"s1", "s2"}},
		{resolver.UserSessionsTag("u2"), []string{"s3"}},
		{resolver.TokenTag("j1"), []string{"t1"}},
		{resolver.TokenTag("u1"), []string{"t5"}},
		{resolver.UserTokensTag("u1"), []string{"t1", "t2", "t4"}},
		{resolver.UserTokensTag("h1"), []string{"t5"}},
		{resolver.UserTokensTag("nobody"), nil},
		{resolver.SessionTag("u1"), nil},
		{"", nil},
	}
	layouts := map[string]func(i int) resolver.Key{
		"one shard": func(i int) resolver.Key { return inShard(5, i) },
		"spread":    func(i int) resolver.Key { return key(uint64(i), uint64(i)) },
	}
	for layout, keyOf := range layouts {
		for _, tc := range tests {
			t.Run(layout+"/"+tc.tag, func(t *testing.T) {
				c := cache.NewL1(cache.L1Options{})
				now := time.Now()
				for i, n := range names {
					set(c, keyOf(i), verdicts[n])
				}
				if got := c.Invalidate(tc.tag); got != len(tc.gone) {
					t.Errorf("Invalidate(%q) = %d, want %d", tc.tag, got, len(tc.gone))
				}
				var gone []string
				for i, n := range names {
					if v, ok := c.Get(keyOf(i), now); !ok {
						gone = append(gone, n)
					} else if v != verdicts[n] {
						t.Errorf("%s: Get returned another verdict", n)
					}
				}
				if diff := cmp.Diff(tc.gone, gone); diff != "" {
					t.Errorf("dropped by %q (-want +got):\n%s", tc.tag, diff)
				}
				checkInvariants(t, c)
			})
		}
	}
}

func TestL1ReplaceDropsOldTags(t *testing.T) {
	c := cache.NewL1(cache.L1Options{})
	k := key(9, 9)
	exp := time.Now().Add(time.Hour)
	set(c, k, sessionVerdict("u1", "old", exp))
	v := sessionVerdict("u2", "new", exp)
	set(c, k, v)
	if n := c.Invalidate(resolver.SessionTag("old")); n != 0 {
		t.Errorf("Invalidate(old tag) = %d, want 0", n)
	}
	if got, ok := c.Get(k, time.Now()); !ok || got != v {
		t.Errorf("Get = %p, %v; want the replacement", got, ok)
	}
	if n, b := c.Len(); n != 1 || b != v.Size() {
		t.Errorf("Len = %d, %d; want 1, %d", n, b, v.Size())
	}
	checkInvariants(t, c)
}

func TestL1Epoch(t *testing.T) {
	exp := time.Now().Add(time.Hour)
	for _, tc := range []struct {
		name   string
		change func(c *cache.L1)
		stale  bool // the verdict resolved before the change may predate a revocation
	}{
		{"invalidate that tag", func(c *cache.L1) { c.Invalidate(resolver.SessionTag("h1")) }, true},
		{"invalidate its user", func(c *cache.L1) { c.Invalidate(resolver.UserSessionsTag("u1")) }, true},
		{"invalidate another tag", func(c *cache.L1) { c.Invalidate(resolver.TokenTag("unrelated")) }, false},
		{"flush", func(c *cache.L1) { c.Flush() }, true},
		{"disable and enable", func(c *cache.L1) { c.SetEnabled(false); c.SetEnabled(true) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cache.NewL1(cache.L1Options{})
			k := key(1, 2)
			before := c.Epoch()
			tc.change(c)
			if c.Epoch() == before {
				t.Fatal("Epoch did not change")
			}
			v := sessionVerdict("u1", "h1", exp)
			if got := c.Changed(before, v); got != tc.stale {
				t.Errorf("Changed = %v, want %v", got, tc.stale)
			}
			c.Set(k, v, before)
			if _, ok := c.Get(k, time.Now()); ok == tc.stale {
				t.Errorf("a verdict resolved before the change: stored = %v, want %v", ok, !tc.stale)
			}
			c.Flush()
			set(c, k, sessionVerdict("u1", "h1", exp))
			if _, ok := c.Get(k, time.Now()); !ok {
				t.Error("a verdict resolved after the change was not stored")
			}
		})
	}
}

func TestL1SetEnabled(t *testing.T) {
	c := cache.NewL1(cache.L1Options{})
	if !c.Enabled() {
		t.Fatal("a new L1 is off")
	}
	exp := time.Now().Add(time.Hour)
	k1, k2 := key(1, 1), key(2, 2)
	set(c, k1, tokenVerdict("u", "j", exp))
	c.SetEnabled(false)
	if c.Enabled() {
		t.Error("Enabled after SetEnabled(false)")
	}
	if _, ok := c.Get(k1, time.Now()); ok {
		t.Error("Get hit while disabled")
	}
	if n, b := c.Len(); n != 0 || b != 0 {
		t.Errorf("Len while disabled = %d, %d; want flushed", n, b)
	}
	set(c, k2, tokenVerdict("u", "j2", exp))
	c.SetEnabled(true)
	for _, k := range []resolver.Key{k1, k2} {
		if _, ok := c.Get(k, time.Now()); ok {
			t.Errorf("Get(%v) hit after re-enabling: kept across or stored while disabled", k)
		}
	}
	set(c, k1, tokenVerdict("u", "j", exp))
	if _, ok := c.Get(k1, time.Now()); !ok {
		t.Error("Get missed after re-enabling and Set")
	}
}

// TestL1Concurrent runs Get, Set, Invalidate, Flush and SetEnabled at once
// (meant for -race) and then checks the shards' bookkeeping.
func TestL1Concurrent(t *testing.T) {
	c := cache.NewL1(cache.L1Options{MaxEntries: 8 * cache.ShardCount}) // small: eviction runs too
	exp := time.Now().Add(time.Hour)
	var wg sync.WaitGroup
	var stop atomic.Bool
	for g := range 8 {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(g), 0))
			for i := 0; !stop.Load(); i++ {
				u := fmt.Sprint("u", rnd.IntN(20))
				k := key(rnd.Uint64N(1024), 0)
				switch rnd.IntN(10) {
				case 0:
					set(c, k, sessionVerdict(u, fmt.Sprint("h", rnd.IntN(50)), exp))
				case 1:
					set(c, k, tokenVerdict(u, fmt.Sprint("j", rnd.IntN(50)), exp))
				case 2:
					c.Invalidate(resolver.UserSessionsTag(u))
				case 3:
					c.Invalidate(resolver.TokenTag(fmt.Sprint("j", rnd.IntN(50))))
				default:
					if v, ok := c.Get(k, time.Now()); ok && v == nil {
						t.Error("Get hit with a nil verdict")
					}
				}
			}
		})
	}
	wg.Go(func() {
		for !stop.Load() {
			c.Flush()
			c.SetEnabled(false)
			c.SetEnabled(true)
			c.Len()
			time.Sleep(time.Millisecond)
		}
	})
	time.Sleep(300 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	checkInvariants(t, c)
}

// TestL1RevocationRace models fills racing a revocation: a fill reads the
// epoch, then the store (the revoked flag), then stores its verdict. Once
// the revocation (flag, then Invalidate) has returned, no verdict of the
// revoked user may be left, however the steps interleave.
func TestL1RevocationRace(t *testing.T) {
	exp := time.Now().Add(time.Hour)
	for round := range 200 {
		c := cache.NewL1(cache.L1Options{})
		var revoked atomic.Bool
		var wg sync.WaitGroup
		start := make(chan struct{})
		for g := range 4 {
			wg.Go(func() {
				<-start
				for i := range 20 {
					k := key(uint64(g*64+i), uint64(round))
					epoch := c.Epoch()
					if revoked.Load() {
						return // the store says revoked: a denial, not cached here
					}
					c.Set(k, sessionVerdict("u1", fmt.Sprint("h", g, i), exp), epoch)
				}
			})
		}
		wg.Go(func() {
			<-start
			revoked.Store(true)
			c.Invalidate(resolver.UserSessionsTag("u1"))
		})
		close(start)
		wg.Wait()
		if n, _ := c.Len(); n != 0 {
			t.Fatalf("round %d: %d verdicts of a revoked user survived", round, n)
		}
	}
}

// TestL1SweepsExpired: decisions that expired leave the cache as new ones
// arrive, well before it is full, so its size follows the live set.
func TestL1SweepsExpired(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	c := cache.NewL1(cache.L1Options{Now: func() time.Time { return now }})
	for i := range uint64(20_000) {
		set(c, key(i, i), sessionVerdict("u", fmt.Sprint("h", i), now.Add(time.Second)))
		now = now.Add(time.Millisecond) // 1,000 new decisions a second, each live for 1 s
	}
	// Each of the 64 shards sweeps at least every 64 of its inserts, so
	// at most about 64*64 expired entries wait for a sweep.
	if n, _ := c.Len(); n > 1000+64*64+500 {
		t.Errorf("L1 holds %d of 20,000 entries with about 1,000 live, want the expired ones swept", n)
	}
	checkInvariants(t, c)
}
