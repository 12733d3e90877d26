// Package cache owns the decision cache: an in-process tier (L1) bounded by
// entries and bytes and indexed by invalidation tag, a tier in Redis (L2)
// shared by replicas, and the invalidation bus that makes a revocation drop
// matching decisions on every replica at once (Redis pub/sub).
package cache

import (
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authresolver/authresolver/resolver"
)

const shardCount = 64 // a power of two

// Defaults of the in-process tier's bounds.
const (
	DefaultMaxEntries = 200_000
	DefaultMaxBytes   = 128 << 20
)

// L1 is the in-process decision cache. Lookups take one shard's read lock,
// never a global one. It implements resolver.Cache.
type L1 struct {
	shards     [shardCount]shard
	epoch      atomic.Uint64
	enabled    atomic.Bool
	tagSeed    maphash.Seed
	maxEntries int // per shard
	maxBytes   int // per shard
	now        func() time.Time

	// recent remembers the last invalidations by epoch (slot epoch %
	// len), so that a lookup that ran while another credential was
	// revoked is still usable: only an invalidation of one of its own tags
	// (or a flush) since it started makes it suspect. recentMu orders an
	// epoch's increment with the record of what it invalidated.
	recentMu sync.Mutex
	recent   [recentInvalidations]invalidation
}

// recentInvalidations is how many invalidations L1 remembers by tag. A
// lookup that more of them overtook is treated as invalidated.
const recentInvalidations = 1024

// invalidation is what one epoch step invalidated.
type invalidation struct {
	epoch uint64
	tag   uint64 // hash of the tag
	all   bool   // a flush
}

var _ resolver.Cache = (*L1)(nil)

type shard struct {
	mu      sync.RWMutex
	entries map[resolver.Key]*entry
	// byTag indexes keys by a 64-bit hash of their invalidation tags. A
	// hash collision only drops an extra entry, which is always safe.
	byTag map[uint64][]resolver.Key
	bytes int
	// inserts counts Sets since the last sweep of expired entries.
	inserts int
}

type entry struct {
	v       *resolver.Verdict
	expires int64 // Unix nanoseconds
	size    int
	tags    []uint64
}

// L1Options configure an L1. Zero values mean the defaults.
type L1Options struct {
	MaxEntries int // default DefaultMaxEntries
	MaxBytes   int // approximate; default DefaultMaxBytes
	// Disabled starts the cache off, for use with a Bus: it turns the
	// cache on once its invalidation subscription is confirmed, so nothing
	// is served from it while revocations could be missed.
	Disabled bool
	Now      func() time.Time // default time.Now; decides which entries have expired when making room
}

// NewL1 returns a cache holding at most o.MaxEntries verdicts and about
// o.MaxBytes bytes. The bounds are split evenly over the shards and rounded
// down, but every shard holds at least one entry: below 64 entries the
// cache may hold 64.
func NewL1(o L1Options) *L1 {
	if o.MaxEntries <= 0 {
		o.MaxEntries = DefaultMaxEntries
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c := &L1{
		tagSeed:    maphash.MakeSeed(),
		maxEntries: max(o.MaxEntries/shardCount, 1),
		maxBytes:   max(o.MaxBytes/shardCount, 1),
		now:        o.Now,
	}
	for i := range c.shards {
		c.shards[i].reset()
	}
	c.enabled.Store(!o.Disabled)
	return c
}

func (s *shard) reset() {
	s.entries = make(map[resolver.Key]*entry)
	s.byTag = make(map[uint64][]resolver.Key)
	s.bytes = 0
}

func (c *L1) shard(k resolver.Key) *shard { return &c.shards[k.Shard()&(shardCount-1)] }

// Get returns the verdict for k unless it is absent, expired at now, or the
// cache is disabled.
func (c *L1) Get(k resolver.Key, now time.Time) (*resolver.Verdict, bool) {
	if !c.enabled.Load() {
		return nil, false
	}
	s := c.shard(k)
	s.mu.RLock()
	e := s.entries[k]
	s.mu.RUnlock()
	if e == nil || now.UnixNano() >= e.expires {
		return nil, false
	}
	return e.v, true
}

// Epoch changes with every invalidation and flush.
func (c *L1) Epoch() uint64 { return c.epoch.Load() }

// Changed reports whether an invalidation of one of v's tags, or a flush,
// happened since Epoch returned since: then v may predate a revocation.
func (c *L1) Changed(since uint64, v *resolver.Verdict) bool {
	if c.epoch.Load() == since {
		return false
	}
	return c.changed(since, c.tagHashes(v.Tags()))
}

func (c *L1) tagHashes(tags []string) []uint64 {
	hs := make([]uint64, len(tags))
	for i, t := range tags {
		hs[i] = maphash.String(c.tagSeed, t)
	}
	return hs
}

// changed reports whether an invalidation since epoch since named one of
// tags, or was a flush; when the record of those invalidations is gone,
// it assumes one did.
func (c *L1) changed(since uint64, tags []uint64) bool {
	c.recentMu.Lock()
	defer c.recentMu.Unlock()
	now := c.epoch.Load()
	if now-since > recentInvalidations {
		return true
	}
	for e := since + 1; e <= now; e++ {
		r := &c.recent[e%recentInvalidations]
		if r.epoch != e || r.all || slices.Contains(tags, r.tag) {
			return true
		}
	}
	return false
}

// advance moves the epoch on, recording what the step invalidates.
func (c *L1) advance(r invalidation) {
	c.recentMu.Lock()
	r.epoch = c.epoch.Add(1)
	c.recent[r.epoch%recentInvalidations] = r
	c.recentMu.Unlock()
}

// Set stores v unless the cache is disabled, or one of v's tags was
// invalidated or the cache flushed since epoch was read. That is checked
// under the shard lock that Invalidate also takes, so an entry stored just
// before an invalidation is dropped by it.
func (c *L1) Set(k resolver.Key, v *resolver.Verdict, epoch uint64) {
	if !c.enabled.Load() {
		return
	}
	e := &entry{v: v, expires: v.Expires.UnixNano(), size: v.Size(), tags: c.tagHashes(v.Tags())}
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.epoch.Load() != epoch && c.changed(epoch, e.tags) {
		return
	}
	if old := s.entries[k]; old != nil {
		s.remove(k, old)
	}
	now := c.now().UnixNano()
	s.sweepSometimes(now)
	s.makeRoom(e.size, c.maxEntries, c.maxBytes, now)
	s.entries[k] = e
	s.bytes += e.size
	for _, t := range e.tags {
		s.byTag[t] = append(s.byTag[t], k)
	}
}

// minSweepInterval is the fewest inserts into a shard between two sweeps.
const minSweepInterval = 64

// sweepSometimes drops the shard's expired entries once enough inserts
// have happened since the last sweep (a quarter of the shard, at least
// minSweepInterval): amortized, a few entries looked at per insert. Without
// it, expired decisions stayed until the cache was full, so a replica's
// memory grew to the cap, not to the live set.
func (s *shard) sweepSometimes(now int64) {
	s.inserts++
	if s.inserts < max(minSweepInterval, len(s.entries)/4) {
		return
	}
	s.inserts = 0
	for k, e := range s.entries {
		if e.expires <= now {
			s.remove(k, e)
		}
	}
}

// evictionSample is how many entries makeRoom looks at per eviction.
const evictionSample = 8

// makeRoom evicts until one more entry of size fits. Each round looks at a
// few entries (Go's map iteration starts at a random place) and drops the
// expired ones among them, else the one closest to expiry: for a short-TTL
// cache about as good as LRU, and O(1) where scanning the whole shard for
// expired entries cost tens of microseconds under the shard's write lock
// on every insert into a full cache (a flood of distinct bad tokens).
func (s *shard) makeRoom(size, maxEntries, maxBytes int, now int64) {
	for len(s.entries) > 0 && (len(s.entries)+1 > maxEntries || s.bytes+size > maxBytes) {
		var victim resolver.Key
		var ve *entry
		freed, n := false, 0
		for k, e := range s.entries {
			switch {
			case e.expires <= now:
				s.remove(k, e)
				freed = true
			case ve == nil || e.expires < ve.expires:
				victim, ve = k, e
			}
			if n++; n == evictionSample {
				break
			}
		}
		if !freed && ve != nil {
			s.remove(victim, ve)
		}
	}
}

func (s *shard) remove(k resolver.Key, e *entry) {
	delete(s.entries, k)
	s.bytes -= e.size
	for _, t := range e.tags {
		keys := s.byTag[t]
		for i, kk := range keys {
			if kk == k {
				keys[i] = keys[len(keys)-1]
				keys = keys[:len(keys)-1]
				break
			}
		}
		if len(keys) == 0 {
			delete(s.byTag, t)
		} else {
			s.byTag[t] = keys
		}
	}
}

// Invalidate drops every verdict carrying tag (see resolver.SessionTag and
// friends) and makes verdicts carrying it resolved before now unstorable.
func (c *L1) Invalidate(tag string) int {
	h := maphash.String(c.tagSeed, tag)
	c.advance(invalidation{tag: h})
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		// Take the tag's whole list out first: removing each entry then
		// skips it, so a user with many cached credentials is dropped in
		// linear, not quadratic, time.
		keys := s.byTag[h]
		delete(s.byTag, h)
		for _, k := range keys {
			if e := s.entries[k]; e != nil {
				s.remove(k, e)
				n++
			}
		}
		s.mu.Unlock()
	}
	return n
}

// Flush drops every verdict.
func (c *L1) Flush() {
	c.advance(invalidation{all: true})
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		s.reset()
		s.mu.Unlock()
	}
}

// SetEnabled turns the cache on or off. Turning it off flushes it: used
// while the invalidation subscription is down, when a missed revocation
// could otherwise be served from cache.
func (c *L1) SetEnabled(on bool) {
	c.enabled.Store(on)
	if !on {
		c.Flush()
	}
}

// Enabled reports whether the cache is in use.
func (c *L1) Enabled() bool { return c.enabled.Load() }

// Len returns the number of entries and their approximate bytes.
func (c *L1) Len() (entries, bytes int) {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		entries += len(s.entries)
		bytes += s.bytes
		s.mu.RUnlock()
	}
	return entries, bytes
}
