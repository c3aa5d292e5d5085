package walink

import "sync"

// dispatcher delivers events in order, one at a time, on a goroutine it
// owns. emit never blocks: events queue without bound, so a slow handler
// delays later events but never the connection. The goroutine runs only
// while events are queued (emit starts it, it exits once the queue is
// drained), so an idle client holds no stack for it.
type dispatcher struct {
	mu       sync.Mutex
	queue    []Event
	handlers []func(Event) // copy-on-write
	first    [1]func(Event)
	running  bool // a run goroutine owns the queue's head
	closed   bool
	wg       sync.WaitGroup // the run goroutine, for close
}

func (d *dispatcher) add(h func(Event)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.handlers) == 0 {
		// The first handler needs no allocation: first is written once,
		// before any snapshot of handlers can see it.
		d.first[0] = h
		d.handlers = d.first[:]
		return
	}
	hs := make([]func(Event), len(d.handlers), len(d.handlers)+1)
	copy(hs, d.handlers)
	d.handlers = append(hs, h)
}

func (d *dispatcher) emit(e Event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	d.queue = append(d.queue, e)
	if !d.running {
		// At most one run goroutine, so delivery stays in order. The Add
		// is under mu with closed unset, so it precedes close's Wait.
		d.running = true
		d.wg.Add(1)
		go d.run()
	}
}

func (d *dispatcher) run() {
	defer d.wg.Done()
	for {
		d.mu.Lock()
		if len(d.queue) == 0 {
			d.queue = nil // an idle client keeps no backing array
			d.running = false
			d.mu.Unlock()
			return
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

// close stops accepting events and waits until what is queued has been
// delivered and the goroutine has exited.
func (d *dispatcher) close() {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	d.wg.Wait()
}
