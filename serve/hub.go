package serve

import "sync"

// hub fans published events out to SSE subscribers. A subscriber's
// channel buffers subBuffer events; one that falls further behind is
// dropped (its stream ends and the client resumes with Last-Event-ID from
// the stored history), so a slow reader never holds up the others.
//
// With several replicas an event can reach the hub twice (published by
// the replica that wrote it, and again through LISTEN/NOTIFY or a
// catch-up read), so the hub remembers the last seenWindow sequence
// numbers and publishes each once.
type hub struct {
	mu     sync.Mutex
	subs   map[*sub]struct{}
	closed bool
	seen   map[int64]struct{}
	ring   []int64 // seen's keys, oldest first, at most seenWindow
}

// seenWindow bounds the memory of published events; a duplicate older
// than that many events is not expected (catch-up reads look back less).
const seenWindow = 16384

const subBuffer = 256

type sub struct {
	session string // "" = every session
	ch      chan StoredEvent
	gone    chan struct{} // closed when dropped or the hub closes
	once    sync.Once
}

func (s *sub) end() { s.once.Do(func() { close(s.gone) }) }

func newHub() *hub { return &hub{subs: map[*sub]struct{}{}, seen: map[int64]struct{}{}} }

func (h *hub) subscribe(session string) *sub {
	s := &sub{session: session, ch: make(chan StoredEvent, subBuffer), gone: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		s.end()
		return s
	}
	h.subs[s] = struct{}{}
	return s
}

func (h *hub) unsubscribe(s *sub) {
	h.mu.Lock()
	delete(h.subs, s)
	h.mu.Unlock()
	s.end()
}

// publish sends e to its subscribers, unless it was published before;
// it reports whether e was new.
func (h *hub) publish(e StoredEvent) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, dup := h.seen[e.Seq]; dup {
		return false
	}
	h.seen[e.Seq] = struct{}{}
	h.ring = append(h.ring, e.Seq)
	if len(h.ring) > seenWindow {
		delete(h.seen, h.ring[0])
		h.ring = h.ring[1:]
	}
	for s := range h.subs {
		if s.session != "" && s.session != e.Session {
			continue
		}
		select {
		case s.ch <- e:
		default:
			delete(h.subs, s)
			s.end()
		}
	}
	return true
}

func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// close ends every stream; later subscriptions end at once.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		delete(h.subs, s)
		s.end()
	}
}
