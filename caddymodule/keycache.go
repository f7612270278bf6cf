package caddymodule

import (
	"sync"
	"time"
)

// keyCache keeps resolved keys for a short TTL, so a hot key costs two
// store round trips per TTL instead of per request. Only hits are
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
	id      identity
	expires time.Time
}

func newKeyCache(ttl time.Duration, max int) *keyCache {
	return &keyCache{ttl: ttl, max: max, now: time.Now, m: make(map[string]cachedKey)}
}

func (c *keyCache) get(hash string) (identity, bool) {
	if c.ttl <= 0 {
		return identity{}, false
	}
	c.mu.RLock()
	e, ok := c.m[hash]
	c.mu.RUnlock()
	if !ok || c.now().After(e.expires) {
		return identity{}, false
	}
	return e.id, true
}

func (c *keyCache) put(hash string, id identity) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	if len(c.m) >= c.max {
		c.m = make(map[string]cachedKey)
	}
	c.m[hash] = cachedKey{id: id, expires: c.now().Add(c.ttl)}
	c.mu.Unlock()
}

// dropAccount forgets every cached key of an account, so a settings change
// or a revocation made through this gateway applies here at once (other
// gateways see it within the TTL).
func (c *keyCache) dropAccount(account string) {
	c.mu.Lock()
	for h, e := range c.m {
		if e.id.key.AccountID == account {
			delete(c.m, h)
		}
	}
	c.mu.Unlock()
}

// dropAll forgets every cached key: a plan changed, and any account may
// be on it.
func (c *keyCache) dropAll() {
	c.mu.Lock()
	c.m = make(map[string]cachedKey)
	c.mu.Unlock()
}
