package serve

import "sync"

// hub fans published events out to SSE subscribers. A subscriber's
// channel buffers subBuffer events; one that falls further behind is
// dropped (its stream ends and the client resumes with Last-Event-ID from
// the stored history), so a slow reader never holds up the others.
type hub struct {
	mu     sync.Mutex
	subs   map[*sub]struct{}
	closed bool
}

const subBuffer = 256

type sub struct {
	session string // "" = every session
	ch      chan StoredEvent
	gone    chan struct{} // closed when dropped or the hub closes
	once    sync.Once
}

func (s *sub) end() { s.once.Do(func() { close(s.gone) }) }

func newHub() *hub { return &hub{subs: map[*sub]struct{}{}} }

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

func (h *hub) publish(e StoredEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
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
