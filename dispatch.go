package walink

import "sync"

// dispatcher delivers events in order on one goroutine it owns. emit never
// blocks: events queue without bound, so a slow handler delays later
// events but never the connection.
type dispatcher struct {
	mu       sync.Mutex
	wake     chan struct{} // capacity 1: "queue changed"
	queue    []Event
	handlers []func(Event) // copy-on-write
	closed   bool
	done     chan struct{}
}

func newDispatcher() *dispatcher {
	d := &dispatcher{wake: make(chan struct{}, 1), done: make(chan struct{})}
	go d.run()
	return d
}

func (d *dispatcher) add(h func(Event)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	hs := make([]func(Event), len(d.handlers), len(d.handlers)+1)
	copy(hs, d.handlers)
	d.handlers = append(hs, h)
}

func (d *dispatcher) emit(e Event) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.queue = append(d.queue, e)
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *dispatcher) run() {
	defer close(d.done)
	for {
		d.mu.Lock()
		if len(d.queue) == 0 {
			if d.closed {
				d.mu.Unlock()
				return
			}
			d.mu.Unlock()
			<-d.wake
			continue
		}
		e := d.queue[0]
		d.queue[0] = nil
		d.queue = d.queue[1:]
		hs := d.handlers
		d.mu.Unlock()
		for _, h := range hs {
			h(e)
		}
	}
}

// close delivers what is queued, then stops the goroutine and waits for it.
func (d *dispatcher) close() {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
	<-d.done
}
