package cache

import (
	"fmt"
	"hash/maphash"
	"slices"

	"github.com/authresolver/authresolver/resolver"
)

// CheckInvariants reports the first inconsistency between c's entries, its
// tag index and its byte count: every entry is indexed under each of its
// tags, the index names only entries carrying the tag, and each shard's
// bytes are the sum of its entries' sizes and within its bounds.
func (c *L1) CheckInvariants() error {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		err := s.check(c)
		s.mu.RUnlock()
		if err != nil {
			return fmt.Errorf("shard %d: %w", i, err)
		}
	}
	return nil
}

func (s *shard) check(c *L1) error {
	bytes := 0
	for k, e := range s.entries {
		bytes += e.size
		if len(e.tags) != len(e.v.Tags()) {
			return fmt.Errorf("entry %v: %d tag hashes for %d tags", k, len(e.tags), len(e.v.Tags()))
		}
		for i, t := range e.v.Tags() {
			if e.tags[i] != maphash.String(c.tagSeed, t) {
				return fmt.Errorf("entry %v: tag %q hashed wrongly", k, t)
			}
			if !slices.Contains(s.byTag[e.tags[i]], k) {
				return fmt.Errorf("entry %v: not indexed under tag %q", k, t)
			}
		}
	}
	if bytes != s.bytes {
		return fmt.Errorf("bytes = %d, entries add up to %d", s.bytes, bytes)
	}
	if len(s.entries) > c.maxEntries {
		return fmt.Errorf("%d entries, bound %d", len(s.entries), c.maxEntries)
	}
	for h, keys := range s.byTag {
		if len(keys) == 0 {
			return fmt.Errorf("tag %x: empty index list kept", h)
		}
		for _, k := range keys {
			e := s.entries[k]
			if e == nil {
				return fmt.Errorf("tag %x: indexes absent entry %v", h, k)
			}
			if !slices.Contains(e.tags, h) {
				return fmt.Errorf("tag %x: indexes entry %v without that tag", h, k)
			}
		}
		seen := make(map[resolver.Key]bool, len(keys))
		for _, k := range keys {
			if seen[k] {
				return fmt.Errorf("tag %x: entry %v indexed twice", h, k)
			}
			seen[k] = true
		}
	}
	return nil
}

// ShardBounds returns the per-shard bounds NewL1 derived.
func (c *L1) ShardBounds() (entries, bytes int) { return c.maxEntries, c.maxBytes }

// ShardCount is the number of shards keys spread over.
const ShardCount = shardCount
