package walink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/engine"
	"github.com/walinkdev/walink/store"
	"github.com/walinkdev/walink/transport"
)

// conn drives one connection's engine.Session. It is the only owner of
// the session, its timers and, through the session's SaveDevice actions,
// the only writer of the device record.
//
// Everything that happens to the connection goes through one queue:
// frames (read on the runner's goroutine, in serve), timer firings, task
// results, API calls and the runner's cancellation. A driver goroutine
// runs while the queue holds items and exits when it is empty, as the
// event dispatcher does: at most one runs at a time, so the session is
// stepped by one goroutine at a time, in queue order, and an idle
// connection holds no goroutine but its reader. Store writes run on the
// driver, never on the reader. serve joins the drivers, the tasks, the
// timer's callback and the cancellation hook before it returns.
type conn struct {
	c    *Client
	tc   *transport.Conn
	sess *engine.Session // &sessv
	// sessv is the session itself: one allocation with the conn.
	sessv engine.Session
	log   *slog.Logger
	ctx   context.Context // the runner's: done on Disconnect/Close

	modeCancel context.CancelFunc // ends the pairing modes' ctx when the session ends; nil without modes

	qmu     sync.Mutex
	qcond   sync.Cond // the reader waits here while the queue is full
	queue   []item
	running bool // a driver goroutine owns the queue's head
	closed  bool // serve is winding down: no more input
	wg      sync.WaitGroup
	ended   chan struct{} // closed by the driver once the session ended
	done    chan struct{} // closed once every call has been answered
	timer   joinTimer

	// Owned by the driver (handed from one driver to the next under qmu).
	end     engine.EndReason
	calls   map[engine.CallID]chan callResult // nil while no call waits
	callID  engine.CallID
	timers  timerSet
	timerAt time.Time // the instant the runtime timer is armed for

	// Published for other goroutines; guarded by c.mu.
	ready, paired, connected, everConn bool

	// endEvent is the terminal event the session emitted (LoggedOut,
	// StreamReplaced, …), for WaitReady's error. Written by the driver,
	// read after serve returns.
	endEvent Event
}

// maxQueuedFrames bounds the frames read ahead of the driver: beyond it
// the reader waits, and the socket's flow control holds the server back.
const maxQueuedFrames = 64

// item is one entry of a conn's queue.
type item struct {
	in      engine.Input
	call    *apiCall
	cancel  *apiCall // the caller of this call gave up
	readErr error
	tick    bool // the runtime timer fired
	closing bool // the runner's ctx is done
}

// apiCall is a Client method's request to the session; mk builds the
// input once the driver has given the call its id.
type apiCall struct {
	mk       func(engine.CallID) engine.Input
	onCancel func(engine.CallID) engine.Input // nil: nothing to undo
	reply    chan callResult                  // buffered: the driver never waits on it
}

type callResult struct {
	value string
	err   error
}

func (c *Client) newConn(ctx context.Context, tc *transport.Conn, d *store.Device) *conn {
	cn := &conn{c: c, tc: tc, log: c.log, ctx: ctx,
		ended: make(chan struct{}), done: make(chan struct{})}
	cn.sessv.Init(c.sessionConfig(), d)
	sess := &cn.sessv
	cn.sess = sess
	if !d.Paired() {
		// Pairing modes act only while a device pairs; a paired device's
		// connection (a login) carries none, nor their ctx, for its life.
		// The modes' tasks (a passkey authenticator) stop with the
		// connection: the driver and closeFromRunner cancel mctx. It is
		// not derived from ctx, which would keep the map of its children
		// for the client's life after this connection.
		mctx, mcancel := context.WithCancel(context.Background())
		for _, m := range c.modes {
			sess.AddPairingMode(m.new(c, mctx))
		}
		cn.modeCancel = mcancel
	}
	cn.qcond.L = &cn.qmu
	cn.timer.cn = cn
	cn.armStaleRefetch()
	return cn
}

// serve reads frames on the caller's goroutine until the connection ends,
// then joins everything the connection started, fails the calls still
// waiting and reports why it ended.
func (cn *conn) serve() engine.EndReason {
	c := cn.c
	c.setCur(cn, false)
	// Client.stop tells the connection it published as cur; a stop that
	// read cur before setCur above ended the ctx before it, seen here.
	if cn.ctx.Err() != nil {
		cn.closeFromRunner()
	}
	cn.readLoop()
	<-cn.ended // the read error, at the latest, ended the session
	cn.qmu.Lock()
	cn.closed = true
	cn.qcond.Broadcast()
	cn.qmu.Unlock()
	cn.wg.Wait() // the last driver and the tasks
	cn.timer.stop()
	c.releaseGate() // a login that never got its answer
	for id, ch := range cn.calls {
		ch <- callResult{err: fmt.Errorf("walink: %w", errConnClosed)}
		delete(cn.calls, id)
	}
	cn.calls = nil
	c.mu.Lock()
	cn.ready, cn.paired, cn.connected = false, false, false
	c.mu.Unlock()
	close(cn.done)
	c.setCur(cn, true)
	return cn.end
}

// readLoop reads and decodes frames into the queue until the socket fails
// or is closed (the driver closes it when the session ends). The frame is
// borrowed (decrypted in place in the read buffer): it is decoded and its
// Content copied out before the next read.
func (cn *conn) readLoop() {
	for {
		frame, err := cn.tc.NextFrame()
		if err != nil {
			cn.enqueue(item{readErr: err})
			return
		}
		n, err := binxml.Unmarshal(frame)
		if err != nil {
			cn.log.Warn("dropping undecodable frame", "err", err)
			continue
		}
		ownContent(&n)
		cn.log.Debug("recv", "tag", n.Tag, "id", n.Attr("id"), "type", n.Attr("type"))
		cn.qmu.Lock()
		for len(cn.queue) >= maxQueuedFrames && !cn.closed {
			cn.qcond.Wait()
		}
		cn.qmu.Unlock()
		cn.enqueue(item{in: engine.NodeIn{Node: n}})
	}
}

// enqueue adds it to the queue and starts a driver if none runs; false
// once serve takes no more input.
func (cn *conn) enqueue(it item) bool {
	cn.qmu.Lock()
	defer cn.qmu.Unlock()
	if cn.closed {
		return false
	}
	cn.queue = append(cn.queue, it)
	if !cn.running {
		// The Add is under qmu with closed unset, so it precedes serve's
		// Wait.
		cn.running = true
		cn.wg.Add(1)
		go cn.drive()
	}
	return true
}

// drive handles queued items until the queue is empty.
func (cn *conn) drive() {
	defer cn.wg.Done()
	for {
		cn.qmu.Lock()
		if len(cn.queue) == 0 {
			cn.queue = nil // an idle connection keeps no backing array
			cn.running = false
			cn.qmu.Unlock()
			return
		}
		it := cn.queue[0]
		cn.queue[0] = item{}
		cn.queue = cn.queue[1:]
		cn.qcond.Broadcast()
		cn.qmu.Unlock()
		cn.handle(it)
	}
}

// handle steps the session with one queued item.
func (cn *conn) handle(it item) {
	if cn.end != engine.EndNone {
		if it.call != nil {
			it.call.reply <- callResult{err: fmt.Errorf("walink: %w", errConnClosed)}
		}
		return
	}
	switch {
	case it.call != nil:
		cn.callID++
		if cn.calls == nil {
			cn.calls = map[engine.CallID]chan callResult{}
		}
		cn.calls[cn.callID] = it.call.reply
		cn.step(it.call.mk(cn.callID))
	case it.cancel != nil:
		for id, ch := range cn.calls {
			if ch == it.cancel.reply {
				cn.step(it.cancel.onCancel(id))
			}
		}
	case it.readErr != nil:
		if cn.ctx.Err() != nil {
			cn.end = engine.EndClosed
		} else {
			cn.log.Info("connection lost", "err", it.readErr)
			cn.end = engine.EndNetwork
		}
	case it.closing:
		cn.end = engine.EndClosed
	case it.tick:
		cn.fireDue()
	default:
		if ni, ok := it.in.(engine.NodeIn); ok {
			// The session ignores <ib>; a version deadline is the
			// driver's (it decides the fetches and the dials).
			if at, isExp, err := engine.ParseClientExpiration(ni.Node); isExp {
				if err != nil {
					cn.log.Warn("ignoring malformed client_expiration", "err", err)
				} else {
					cn.clientExpiration(at)
				}
			}
		}
		cn.step(it.in)
	}
	if cn.end != engine.EndNone {
		cn.timer.cancel()
		if cn.modeCancel != nil {
			cn.modeCancel()
		}
		cn.tc.Close() // unblocks the reader
		close(cn.ended)
		return
	}
	cn.resetTimer()
}

// closeFromRunner ends the connection once the runner's ctx is done
// (Client.stop): a write in progress fails at once (one to a peer that
// reads nothing would block the driver) and the driver closes the
// connection. May be called more than once.
func (cn *conn) closeFromRunner() {
	if cn.modeCancel != nil {
		cn.modeCancel()
	}
	cn.tc.CancelWrites()
	cn.enqueue(item{closing: true})
}

// call sends an API call to the session and waits for its reply. When ctx
// ends first, onCancel (if any) tells the session the caller gave up.
func (cn *conn) call(ctx context.Context, mk, onCancel func(engine.CallID) engine.Input) (string, error) {
	ac := &apiCall{mk: mk, onCancel: onCancel, reply: make(chan callResult, 1)}
	if !cn.enqueue(item{call: ac}) {
		return "", fmt.Errorf("walink: %w", errConnClosed)
	}
	select {
	case r := <-ac.reply:
		return r.value, r.err
	case <-cn.done:
		select {
		case r := <-ac.reply:
			return r.value, r.err
		default:
			return "", fmt.Errorf("walink: %w", errConnClosed)
		}
	case <-ctx.Done():
		if onCancel != nil {
			cn.enqueue(item{cancel: ac})
		}
		return "", ctx.Err()
	}
}

// step feeds the session one input and carries out its actions.
func (cn *conn) step(in engine.Input) {
	acts := cn.sess.Step(cn.c.now(), in)
	c := cn.c
	// The state is published before the actions run, so that a handler
	// that sees Connected (emitted among them) also sees IsConnected.
	ready, paired, connected := cn.sess.Ready(), cn.sess.Paired(), cn.sess.Connected()
	c.mu.Lock()
	changed := ready != cn.ready || paired != cn.paired || connected != cn.connected
	cn.ready, cn.paired, cn.connected = ready, paired, connected
	cn.everConn = cn.everConn || connected
	c.mu.Unlock()
	cn.run(acts)
	if changed {
		if ready || paired || connected {
			c.releaseGate() // the login is answered: the dial is done
		}
		c.notifyConnState()
	}
}

func (cn *conn) run(acts []engine.Action) {
	c := cn.c
	// Store writes outlive a Disconnect that races them: a half-done
	// pairing must be either stored or refused, not cut off.
	sctx := context.WithoutCancel(cn.ctx)
	for _, a := range acts {
		switch a := a.(type) {
		case engine.Send:
			cn.send(a.Node)
		case engine.Emit:
			if _, ok := a.Event.(engine.ClientOutdated); ok {
				// The runner answers the 405 (fetch, reconnect once) and
				// emits ClientOutdated only when it gives up.
				continue
			}
			ev := c.event(a.Event)
			if terminal(ev) {
				cn.endEvent = ev
			}
			c.emit(ev)
		case engine.ArmTimer:
			cn.timers.set(a.Kind, a.At)
		case engine.CancelTimer:
			cn.timers.del(a.Kind)
		case engine.StartTask:
			cn.wg.Add(1) // on the driver, which serve's Wait waits for: safe
			go func() {
				defer cn.wg.Done()
				v, err := a.Run()
				cn.enqueue(item{in: engine.TaskDone{Kind: a.Kind, ID: a.ID, Value: v, Err: err}})
			}()
		case engine.SaveDevice:
			err := c.st.PutDevice(sctx, a.Device)
			if err == nil {
				c.setDevice(a.Device)
			}
			cn.run(cn.sess.Step(c.now(), engine.Saved{Tag: a.Tag, Device: a.Device, Err: err}))
		case engine.SavePreKeys:
			err := c.st.PutPreKeys(sctx, a.Device.NoiseKey.Public, a.PreKeys, a.Next)
			if err == nil {
				c.setDevice(a.Device)
			}
			cn.run(cn.sess.Step(c.now(), engine.Saved{Tag: engine.SavePreKeyBatch, Device: a.Device, Err: err}))
		case engine.DeleteDevice:
			c.clearSession(sctx, a.Device)
		case engine.Reply:
			if ch, ok := cn.calls[a.Call]; ok {
				delete(cn.calls, a.Call)
				if len(cn.calls) == 0 {
					cn.calls = nil // an idle connection keeps no map
				}
				ch <- callResult{value: a.Value, err: a.Err}
			}
		case engine.End:
			if cn.end == engine.EndNone {
				cn.end = a.Reason
			}
		case engine.Log:
			cn.log.Log(context.Background(), slog.Level(a.Level), a.Msg, a.Args...)
		}
	}
}

// send writes one stanza, encoded straight into the frame buffer and
// sealed in place. Only the tag and id are logged: contents may carry key
// material. A failed write is logged; the reader then sees the broken
// connection and ends it. A write stuck on a peer that reads nothing ends
// with Close/Disconnect (closeFromRunner), so the write itself needs no
// watch of a ctx (which would cost the ctx a map of children for its life).
func (cn *conn) send(n binxml.Node) {
	if cn.log.Enabled(context.Background(), slog.LevelDebug) {
		cn.log.Debug("send", "tag", n.Tag, "id", n.Attr("id"), "type", n.Attr("type"), "xmlns", n.Attr("xmlns"))
	}
	err := cn.tc.WriteNode(context.Background(), n)
	var ee *binxml.EncodeError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		cn.log.Error("encoding stanza", "tag", n.Tag, "err", err)
	case cn.ctx.Err() == nil:
		cn.log.Warn("send failed", "tag", n.Tag, "err", err)
	}
}

// fireDue steps every timer whose instant has come: the earliest armed one
// (the runtime timer fired for it) and any other at or before it or now.
func (cn *conn) fireDue() {
	first, ok := cn.firstTimer()
	if !ok {
		return
	}
	due := maxTime(first, cn.c.now())
	fire := func(k engine.TimerKind) {
		if at, ok := cn.timers.get(k); ok && !at.After(due) && cn.end == engine.EndNone {
			cn.timers.del(k)
			if k == timerVersionRefetch {
				cn.refetchForExpiry()
				return
			}
			cn.step(engine.TimerFired{Kind: k})
		}
	}
	known := [...]engine.TimerKind{engine.TimerQR, engine.TimerCode, engine.TimerConfirm, engine.TimerKeepalive, engine.TimerIQ}
	for _, k := range known {
		fire(k)
	}
	// Then the pairing modes' kinds (and the version refetch), from a
	// snapshot: a step may arm or cancel timers.
	var others [8]engine.TimerKind
	rest := others[:0]
	for _, t := range cn.timers.all() {
		if !slices.Contains(known[:], t.kind) && !t.at.After(due) {
			rest = append(rest, t.kind)
		}
	}
	for _, k := range rest {
		fire(k)
	}
}

func (cn *conn) firstTimer() (time.Time, bool) {
	var first time.Time
	for _, t := range cn.timers.all() {
		if first.IsZero() || t.at.Before(first) {
			first = t.at
		}
	}
	return first, !first.IsZero()
}

// timerSet is the armed timers of a connection, by kind: a handful at
// most (an idle connection has its keepalive), so a slice, kept in an
// array inside the conn unless more are armed (a map would cost a header
// and a group of eight; a slice of its own, a small allocation).
type timerSet struct {
	list []armedTimer // in buf unless more than fit
	buf  [2]armedTimer
}

func (ts *timerSet) all() []armedTimer { return ts.list }

type armedTimer struct {
	kind engine.TimerKind
	at   time.Time
}

func (ts *timerSet) get(k engine.TimerKind) (time.Time, bool) {
	for _, t := range ts.list {
		if t.kind == k {
			return t.at, true
		}
	}
	return time.Time{}, false
}

func (ts *timerSet) set(k engine.TimerKind, at time.Time) {
	for i := range ts.list {
		if ts.list[i].kind == k {
			ts.list[i].at = at
			return
		}
	}
	if ts.list == nil {
		ts.list = ts.buf[:0]
	}
	ts.list = append(ts.list, armedTimer{kind: k, at: at})
}

func (ts *timerSet) del(k engine.TimerKind) {
	ts.list = slices.DeleteFunc(ts.list, func(t armedTimer) bool { return t.kind == k })
	if len(ts.list) <= len(ts.buf) && cap(ts.list) > len(ts.buf) {
		// Back from a spill: let the heap copy go.
		ts.list = ts.buf[:copy(ts.buf[:], ts.list)]
	}
}

// resetTimer points the runtime timer at the earliest armed instant of the
// client's clock.
func (cn *conn) resetTimer() {
	first, ok := cn.firstTimer()
	switch {
	case !ok:
		cn.timer.cancel()
		cn.timerAt = time.Time{}
	case !first.Equal(cn.timerAt) || !cn.timer.armed():
		cn.timer.arm(max(first.Sub(cn.c.now()), 0))
		cn.timerAt = first
	}
}

// joinTimer is a time.AfterFunc whose callback can be joined: each
// scheduling of the callback holds one count of wg, released by the
// callback when it ran or by the Stop that cancelled it. Only the driver
// arms and cancels it; serve stops it last. One runtime timer, made by the
// first arm, is reset for every later one (no allocation per arm; the
// callback is a method value made once).
type joinTimer struct {
	mu sync.Mutex
	t  *time.Timer
	on bool // scheduled and not fired yet (a late callback may clear it early: armed is advisory)
	wg sync.WaitGroup
	cn *conn // its queue gets a tick when the timer fires
}

func (j *joinTimer) arm(d time.Duration) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.cancelLocked()
	// Stopped or fired: Reset schedules exactly one more callback.
	j.wg.Add(1)
	if j.t == nil {
		j.t = time.AfterFunc(d, j.fire)
	} else {
		j.t.Reset(d)
	}
	j.on = true
}

func (j *joinTimer) fire() {
	defer j.wg.Done()
	j.mu.Lock()
	j.on = false
	j.mu.Unlock()
	j.cn.enqueue(item{tick: true})
}

// armed reports whether the timer is set and has not fired yet.
func (j *joinTimer) armed() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.on
}

func (j *joinTimer) cancel() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.cancelLocked()
}

// cancelLocked stops a scheduled callback. Stop's answer, not on, decides
// the count: true means exactly one scheduled callback will not run.
func (j *joinTimer) cancelLocked() {
	if j.t != nil && j.t.Stop() {
		j.wg.Done()
	}
	j.on = false
}

// stop cancels the timer and waits for a callback already started.
func (j *joinTimer) stop() {
	j.cancel()
	j.wg.Wait()
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// ownContent moves every Content of a node decoded from a borrowed frame
// into one buffer of the node's own, so that handlers and waiting requests
// may keep it after the next read (binxml copies strings, not Content).
func ownContent(n *binxml.Node) {
	size := contentSize(n)
	if size == 0 {
		return
	}
	buf := make([]byte, 0, size)
	var move func(*binxml.Node)
	move = func(n *binxml.Node) {
		if len(n.Content) > 0 {
			at := len(buf)
			buf = append(buf, n.Content...)
			n.Content = buf[at:len(buf):len(buf)]
		}
		for i := range n.Children {
			move(&n.Children[i])
		}
	}
	move(n)
}

func contentSize(n *binxml.Node) int {
	size := len(n.Content)
	for i := range n.Children {
		size += contentSize(&n.Children[i])
	}
	return size
}

var errConnClosed = errors.New("connection closed")
