package noise

import (
	"sync"
	"time"

	"github.com/walinkdev/walink/keys"
)

// DefaultChainCacheSize is the number of chains a zero ChainCache keeps.
const DefaultChainCacheSize = 64

// ChainCache remembers server certificate chains that verified, so that a
// client connecting again, or many clients in one process, check the two
// signatures of a given chain once instead of on every handshake (about a
// quarter of the client's handshake CPU). A hit needs the very same chain
// bytes, trusted root and server static key: the same bytes under the same
// keys verify the same way, so nothing is trusted that a full check would
// refuse. The validity windows are checked against the caller's time on
// every use, so a cached chain still expires.
//
// The zero value is ready to use and holds DefaultChainCacheSize chains; a
// ChainCache is safe for concurrent use. Failures are never cached.
type ChainCache struct {
	// Size bounds the entries; 0 means DefaultChainCacheSize. When full,
	// the cache starts over (a server rotates its chain rarely, so a full
	// cache means many servers, not one churning).
	Size int

	mu      sync.Mutex
	entries map[string]*CertInfo
	hits    uint64
}

// appendCacheKey appends root ‖ server static ‖ chain: all of what decides
// the result but the time.
func appendCacheKey(b, chain []byte, root, serverStatic keys.PublicKey) []byte {
	r, s := root.Array(), serverStatic.Array()
	b = append(b, r[:]...)
	b = append(b, s[:]...)
	return append(b, chain...)
}

// Parse is ParseCertChain through the cache. Each call returns a
// CertInfo of its own, so a caller changing it cannot touch the cache.
func (c *ChainCache) Parse(chain []byte, root, serverStatic keys.PublicKey, now time.Time) (*CertInfo, error) {
	if c == nil {
		return ParseCertChain(chain, root, serverStatic, now)
	}
	// The key is built on the stack when it fits (a chain is ~300 bytes),
	// and a lookup by string(k) copies nothing: a hit allocates only the
	// returned CertInfo.
	var buf [1024]byte
	k := appendCacheKey(buf[:0], chain, root, serverStatic)
	c.mu.Lock()
	cached := c.entries[string(k)]
	if cached != nil {
		c.hits++
	}
	c.mu.Unlock()
	if cached != nil {
		if err := cached.CheckValidity(now); err != nil {
			return nil, err
		}
		info := *cached
		return &info, nil
	}
	info, err := ParseCertChain(chain, root, serverStatic, now)
	if err != nil {
		return nil, err
	}
	size := c.Size
	if size <= 0 {
		size = DefaultChainCacheSize
	}
	c.mu.Lock()
	if c.entries == nil || len(c.entries) >= size {
		c.entries = make(map[string]*CertInfo, min(size, 8))
	}
	kept := *info
	c.entries[string(k)] = &kept
	c.mu.Unlock()
	return info, nil
}

// Hits returns how many Parse calls the cache answered, for tests and
// metrics.
func (c *ChainCache) Hits() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits
}
