package transport

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
)

// errPollerClosed reports a Park on a closed Poller (Park returns false).
var errPollerClosed = errors.New("transport: poller closed")

const canPark = true

// wakeSlot is the epoll data of the pipe Close writes to; connections'
// slots are 0 and up.
const wakeSlot = -1

type poller struct {
	epfd int
	wake [2]int // a pipe: Close writes a byte to wake[1] to end the loop
	done chan struct{}
	once sync.Once

	mu      sync.Mutex
	closed  bool
	started bool // the goroutine runs: from the first parking on
	slots   []pollSlot
	free    int32 // first free slot, -1 for none
}

// pollSlot is one parked connection. Its epoll registration carries the
// slot's index and generation (Fd and Pad, the 8 data bytes of an
// epoll_event), so an event read before the registration was removed
// finds a newer generation, or a free slot, and is dropped.
type pollSlot struct {
	resume func() // nil while free
	fd     int32
	gen    uint32
	next   int32 // next free slot, while free
}

// NewPoller makes a Poller: an epoll instance, and the goroutine that
// waits on it, started by the first Park (so that a server whose streams
// cannot park, e.g. over net.Pipe inside a testing/synctest bubble, runs no
// goroutine in a system call) and ended by Close.
func NewPoller() (*Poller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("transport: poller: %w", os.NewSyscallError("epoll_create1", err))
	}
	p := &Poller{poller{epfd: epfd, free: -1, done: make(chan struct{})}}
	if err := syscall.Pipe2(p.wake[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		syscall.Close(epfd)
		return nil, fmt.Errorf("transport: poller: %w", os.NewSyscallError("pipe2", err))
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: wakeSlot}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, p.wake[0], &ev); err != nil {
		p.closeFDs()
		return nil, fmt.Errorf("transport: poller: %w", os.NewSyscallError("epoll_ctl", err))
	}
	return p, nil
}

func (p *Poller) closeFDs() {
	syscall.Close(p.epfd)
	syscall.Close(p.wake[0])
	syscall.Close(p.wake[1])
}

// loop is the Poller's goroutine: it waits for parked sockets to become
// readable and starts their resume functions, until Close.
func (p *Poller) loop() {
	defer close(p.done)
	var (
		events [64]syscall.EpollEvent
		ready  []func()
	)
	for {
		n, err := syscall.EpollWait(p.epfd, events[:], -1)
		if err == syscall.EINTR {
			continue
		}
		stop := err != nil // cannot happen with a valid epoll descriptor
		p.mu.Lock()
		for _, ev := range events[:max(n, 0)] {
			if ev.Fd == wakeSlot {
				stop = true
				continue
			}
			if fn := p.takeLocked(ev.Fd, uint32(ev.Pad)); fn != nil {
				ready = append(ready, fn)
			}
		}
		if stop {
			// Whatever is still parked resumes, to wait the ordinary way.
			p.closed = true
			ready = p.drainLocked(ready)
		}
		p.mu.Unlock()
		for i, fn := range ready {
			go fn()
			ready[i] = nil
		}
		ready = ready[:0]
		if stop {
			return
		}
	}
}

// add registers fd, parked with resume, for one readiness event.
func (p *Poller) add(fd uintptr, resume func()) (pollRef, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return pollRef{}, errPollerClosed
	}
	slot := p.free
	if slot >= 0 {
		p.free = p.slots[slot].next
	} else {
		slot = int32(len(p.slots))
		p.slots = append(p.slots, pollSlot{})
	}
	s := &p.slots[slot]
	s.gen++
	// Level-triggered and one-shot: a socket readable already when it is
	// added is reported at once; EPOLLIN covers the end of stream, and
	// errors and hang-ups are always reported.
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: slot, Pad: int32(s.gen)}
	if err := syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev); err != nil {
		s.next, p.free = p.free, slot
		return pollRef{}, fmt.Errorf("transport: poller: %w", os.NewSyscallError("epoll_ctl", err))
	}
	s.resume, s.fd = resume, int32(fd)
	if !p.started {
		p.started = true
		go p.loop()
	}
	return pollRef{p: p, slot: slot, gen: s.gen}, nil
}

// take unregisters the parking in slot if it is generation gen and
// returns its resume function, or nil.
func (p *Poller) take(slot int32, gen uint32) func() {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.takeLocked(slot, gen)
}

func (p *Poller) takeLocked(slot int32, gen uint32) func() {
	if slot < 0 || int(slot) >= len(p.slots) {
		return nil
	}
	s := &p.slots[slot]
	if s.resume == nil || s.gen != gen {
		return nil
	}
	fn := s.resume
	// Removed here, under mu, before the connection can close its socket
	// (its Close takes the parking back through mu first): the descriptor
	// is still this socket's.
	syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, int(s.fd), nil)
	s.resume, s.fd = nil, -1
	s.next, p.free = p.free, slot
	return fn
}

// drainLocked unregisters every parked connection and appends their
// resume functions to fns.
func (p *Poller) drainLocked(fns []func()) []func() {
	for i := range p.slots {
		if fn := p.takeLocked(int32(i), p.slots[i].gen); fn != nil {
			fns = append(fns, fn)
		}
	}
	return fns
}

// Close stops the Poller's goroutine and waits for it. The connections
// still parked are resumed (they then wait the ordinary way, each on its
// goroutine), and later Parks on p report false. Close is idempotent.
func (p *Poller) Close() error {
	p.once.Do(func() {
		p.mu.Lock()
		started := p.started
		p.closed = true // without a goroutine nothing is parked
		p.mu.Unlock()
		if started {
			b := [1]byte{1}
			for {
				if _, err := syscall.Write(p.wake[1], b[:]); err != syscall.EINTR {
					break
				}
			}
			<-p.done
		}
		p.closeFDs()
	})
	return nil
}
