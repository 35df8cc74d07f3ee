package token

import (
	"hash/maphash"
	"sync"
	"time"
	"unsafe"
)

// maxCacheShards is the maximum number of shards of a verifiedCache. Each
// shard has its own lock, so verifications of different tokens rarely wait
// on one another.
const maxCacheShards = 64

// verifiedToken is a cache entry: the claims of a token that passed every
// check, and what a cache hit must check again.
type verifiedToken struct {
	claims    *AccessClaims
	expiresAt time.Time // exp plus leeway
	epoch     uint64
}

// verifiedCache maps token strings to verifiedToken. It holds at most the
// capacity given to newVerifiedCache.
type verifiedCache struct {
	seed          maphash.Seed
	shardMask     uint64
	shardCapacity int
	shards        []cacheShard
}

type cacheShard struct {
	mu      sync.RWMutex
	entries map[string]verifiedToken

	// Padding keeps two shards' locks off one 128-byte block, which is two
	// cache lines on CPUs that fetch adjacent lines in pairs.
	_ [128 - (unsafe.Sizeof(sync.RWMutex{})+unsafe.Sizeof(map[string]verifiedToken(nil)))%128]byte
}

// newVerifiedCache returns a cache for at most capacity entries. The number
// of shards is a power of two no larger than capacity, and each shard holds
// capacity / shards entries, so the total never exceeds capacity.
func newVerifiedCache(capacity int) *verifiedCache {
	shardCount := 1
	for shardCount*2 <= min(capacity, maxCacheShards) {
		shardCount *= 2
	}

	c := &verifiedCache{
		seed:          maphash.MakeSeed(),
		shardMask:     uint64(shardCount - 1),
		shardCapacity: capacity / shardCount,
		shards:        make([]cacheShard, shardCount),
	}
	for i := range c.shards {
		c.shards[i].entries = make(map[string]verifiedToken)
	}
	return c
}

func (c *verifiedCache) shard(key string) *cacheShard {
	return &c.shards[maphash.String(c.seed, key)&c.shardMask]
}

func (c *verifiedCache) get(key string) (verifiedToken, bool) {
	s := c.shard(key)
	s.mu.RLock()
	entry, ok := s.entries[key]
	s.mu.RUnlock()
	return entry, ok
}

// put stores the entry, evicting others first if the shard is full.
func (c *verifiedCache) put(key string, entry verifiedToken, now time.Time) {
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()

	if _, ok := s.entries[key]; !ok && len(s.entries) >= c.shardCapacity {
		s.evict(now, c.shardCapacity)
	}
	s.entries[key] = entry
}

// evict removes expired entries, then arbitrary ones until the shard is at
// most three quarters full. Freeing a quarter of the shard at a time keeps
// the O(n) sweep amortized to O(1) per put. Go's random map iteration order
// makes the choice of arbitrary entries random.
func (s *cacheShard) evict(now time.Time, capacity int) {
	for key, entry := range s.entries {
		if !now.Before(entry.expiresAt) {
			delete(s.entries, key)
		}
	}

	target := capacity - max(1, capacity/4)
	for key := range s.entries {
		if len(s.entries) <= target {
			break
		}
		delete(s.entries, key)
	}
}

// len returns the number of cached entries.
func (c *verifiedCache) len() int {
	total := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		total += len(s.entries)
		s.mu.RUnlock()
	}
	return total
}
