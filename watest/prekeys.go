package watest

import (
	"sync"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/keys"
)

// preKeyStore holds a device's uploaded one-time pre-keys compactly: the
// public values packed back to back (keys.Size bytes each, no per-key
// header or map entry) and the ids as runs, since clients number them
// sequentially (PROTOCOL.md §15), so an upload of 812 keys costs 812×32
// bytes and one run. Guarded by Server.mu.
type preKeyStore struct {
	values []byte  // keys.Size bytes per key, in upload order
	runs   []idRun // ids of values, in the same order
	// restored counts keys of a device loaded from the state file, which
	// keeps the count but not the values.
	restored int
}

// idRun is n consecutive pre-key ids starting at first.
type idRun struct{ first, n uint32 }

// count is the number of pre-keys the server holds for the device.
func (p *preKeyStore) count() int { return p.restored + len(p.values)/keys.Size }

// add stores the well-formed keys of an upload's <list> and returns how
// many it took.
func (p *preKeyStore) add(list []binxml.Node) int {
	good := 0
	for _, k := range list {
		if wellFormedPreKey(k) {
			good++
		}
	}
	if good == 0 {
		return 0
	}
	if need := len(p.values) + good*keys.Size; cap(p.values) < need {
		// Exactly what is needed, cut from a shared slab: append's growth
		// or a size class of its own would waste up to a tenth of a
		// device's budget.
		v := slab.alloc(need)[:len(p.values)]
		copy(v, p.values)
		p.values = v
	}
	for _, k := range list {
		if !wellFormedPreKey(k) {
			continue
		}
		id := childContent(k, "id")
		n := uint32(id[0])<<16 | uint32(id[1])<<8 | uint32(id[2])
		p.values = append(p.values, childContent(k, "value")...)
		if last := len(p.runs) - 1; last >= 0 && p.runs[last].first+p.runs[last].n == n {
			p.runs[last].n++
		} else {
			p.runs = append(p.runs, idRun{first: n, n: 1})
		}
	}
	return good
}

// addPreKeys stores an upload's keys; the caller holds Server.mu.
func (d *linkedDevice) addPreKeys(list []binxml.Node) int { return d.preKeys.add(list) }

// slab hands out pre-key storage from big shared chunks: a device's keys
// are one exact-size piece of a chunk instead of an allocation rounded up
// to a size class. A chunk lives as long as any device using it, which is
// fine for a test server. Guarded by its own lock (callers hold Server.mu
// of their own server; slabs are shared by all servers of the process).
var slab = &slabAlloc{}

type slabAlloc struct {
	mu    sync.Mutex
	chunk []byte
}

// slabChunk is the size of one chunk: about 40 pre-key uploads of 812.
const slabChunk = 1 << 20

func (s *slabAlloc) alloc(n int) []byte {
	if n > slabChunk/4 {
		return make([]byte, n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.chunk) < n {
		s.chunk = make([]byte, slabChunk)
	}
	b := s.chunk[:n:n]
	s.chunk = s.chunk[n:]
	return b
}
