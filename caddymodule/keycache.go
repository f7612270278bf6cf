package caddymodule

import (
	"sync"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// keyCache keeps looked-up keys for a short TTL, so a hot key costs one
// store round trip per TTL instead of one per request. Only hits are
// cached: a key created a moment ago works at once. It is bounded: when
// full it is emptied, which costs one lookup per key and nothing else.
type keyCache struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu sync.RWMutex
	m  map[string]cachedKey
}

type cachedKey struct {
	key     meter.Key
	expires time.Time
}

func newKeyCache(ttl time.Duration, max int) *keyCache {
	return &keyCache{ttl: ttl, max: max, now: time.Now, m: make(map[string]cachedKey)}
}

func (c *keyCache) get(hash string) (meter.Key, bool) {
	if c.ttl <= 0 {
		return meter.Key{}, false
	}
	c.mu.RLock()
	e, ok := c.m[hash]
	c.mu.RUnlock()
	if !ok || c.now().After(e.expires) {
		return meter.Key{}, false
	}
	return e.key, true
}

func (c *keyCache) put(hash string, k meter.Key) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	if len(c.m) >= c.max {
		c.m = make(map[string]cachedKey)
	}
	c.m[hash] = cachedKey{key: k, expires: c.now().Add(c.ttl)}
	c.mu.Unlock()
}
