package transport

import (
	"sync"
	"syscall"
)

// A Poller lets a server hold many idle connections without a goroutine
// each. Conn.Park hands it a connection with nothing left to read and a
// function to run when there is: the connection's reading goroutine may
// then end, and the Poller starts resume on a goroutine of its own once
// the client sends something, closes its side, or the connection is
// closed. A goroutine parked on a socket costs at least its 2 KiB stack
// and its g; a parked connection costs a slot in the Poller (about 24
// bytes) and one entry in the kernel's epoll set.
//
// On Linux a Poller is one epoll instance and one goroutine blocked in
// epoll_wait, its own, which Close ends and joins. Go's runtime poller
// keeps the socket too (edge-triggered, for reads and writes done the
// ordinary way); the two do not interfere. Elsewhere a Poller parks
// nothing: Park returns false and the caller waits the ordinary way
// (AwaitReadable, ReadFrame).
//
// A Poller is safe for concurrent use.
type Poller struct {
	poller // per system: poller_linux.go, poller_other.go
}

// pollRef names one parking of one connection: its slot in the Poller and
// the slot's generation then, so that a stale reference (the slot was
// freed and taken by another connection since) is recognised as such.
type pollRef struct {
	p    *Poller
	slot int32
	gen  uint32
}

// take unregisters the parking ref names, if it is still current, and
// returns its resume function; nil if the Poller (or another take)
// already did.
func (r pollRef) take() func() {
	if r.p == nil {
		return nil
	}
	return r.p.take(r.slot, r.gen)
}

// Park arranges for resume to run, once, on a goroutine of its own when a
// ReadFrame would find something to read (a frame, the end of the stream,
// an error) or cannot wait any more (Close, a read deadline set on the
// stream, the Poller closed), and reports true: the calling goroutine may
// then return, and must not read from c until resume runs. An idle Conn
// waiting this way holds no goroutine, no frame buffer and, while parked,
// no AES-GCM state (the cipher keeps its keys and rebuilds it on next use).
//
// Park reports false, having at most dropped what it drops while parked,
// when c cannot be parked: a
// Conn other than a server one over Accept's WebSocket on Linux, bytes
// already read from the socket and buffered, a read deadline set, c
// closed or closing, p closed, or p nil. The caller then waits the
// ordinary way. Like AwaitReadable, call it from the reading goroutine
// between ReadFrame calls.
func (c *Conn) Park(p *Poller, resume func()) bool {
	if !canPark || p == nil || c.closed.Load() {
		return false
	}
	ws, ok := c.nc.(*wsServerConn)
	if !ok || !ws.idle(c, true) {
		return false
	}
	return ws.park(p, resume)
}

// park registers the socket with p. The registration is made inside
// RawConn.Control, where the descriptor cannot be closed under it, and is
// removed before the socket is closed (Close takes it back first), so the
// Poller never holds a descriptor number that could be reused by another
// socket.
func (ws *wsServerConn) park(p *Poller, resume func()) bool {
	ws.pmu.Lock()
	defer ws.pmu.Unlock()
	if ws.closing || ws.readDeadline {
		return false
	}
	if ws.rc == nil {
		sc, ok := ws.raw.(syscall.Conn)
		if !ok {
			return false
		}
		rc, err := sc.SyscallConn()
		if err != nil {
			return false
		}
		ws.rc = rc
	}
	pc := parkCalls.Get().(*parkCall)
	pc.p, pc.resume = p, resume
	err := ws.rc.Control(pc.add)
	ref, aerr := pc.ref, pc.err
	*pc = parkCall{add: pc.add}
	parkCalls.Put(pc)
	if err != nil || aerr != nil {
		return false
	}
	ws.parked = ref
	return true
}

// parkCall carries one park's RawConn.Control call: its arguments and
// results, and the bound method Control runs, made once per pooled
// parkCall rather than a closure and its captured results per park.
type parkCall struct {
	add    func(fd uintptr) // pc.control
	p      *Poller
	resume func()
	ref    pollRef
	err    error
}

func (pc *parkCall) control(fd uintptr) { pc.ref, pc.err = pc.p.add(fd, pc.resume) }

var parkCalls = sync.Pool{New: func() any {
	pc := &parkCall{}
	pc.add = pc.control
	return pc
}}

// unpark records that Close has begun (closing) or whether a read deadline
// is set (deadline), and in either case takes back the parking, if there
// is one (a parked wait would not honour a deadline), and returns its
// resume function for the caller to start.
func (ws *wsServerConn) unpark(closing, deadline bool) func() {
	ws.pmu.Lock()
	ws.closing = ws.closing || closing
	ws.readDeadline = deadline
	var ref pollRef
	if closing || deadline {
		ref, ws.parked = ws.parked, pollRef{}
	}
	ws.pmu.Unlock()
	return ref.take()
}
