package walink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/engine"
	"github.com/walinkdev/walink/store"
	"github.com/walinkdev/walink/transport"
)

// conn drives one connection's engine.Session. serve runs on the runner's
// goroutine and is the only owner of the session, its timers and, through
// the session's SaveDevice actions, the only writer of the device record.
// Everything that happens to the connection reaches it through one queue
// (q): frames from the reader goroutine, task results, API calls; timer
// firings come from the one runtime timer its select also waits on. The
// reader and the tasks are joined before serve returns.
type conn struct {
	c    *Client
	tc   *transport.Conn
	sess *engine.Session
	log  *slog.Logger
	ctx  context.Context // the runner's: done on Disconnect/Close

	q    chan item
	stop chan struct{} // closed when serve takes no more input
	done chan struct{} // closed once every call has been answered
	wg   sync.WaitGroup

	// Owned by serve's goroutine.
	end    engine.EndReason
	calls  map[engine.CallID]chan callResult
	callID engine.CallID
	timers map[engine.TimerKind]time.Time

	// Published for other goroutines; guarded by c.mu.
	ready, paired, connected, everConn bool
}

// item is one entry of a conn's queue.
type item struct {
	in      engine.Input
	call    *apiCall
	cancel  *apiCall // the caller of this call gave up
	readErr error
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
	sess := engine.NewSession(c.sessionConfig(), d)
	for _, m := range c.modes {
		sess.AddPairingMode(m.new())
	}
	return &conn{c: c, tc: tc, sess: sess, log: c.log, ctx: ctx,
		q: make(chan item, 16), stop: make(chan struct{}), done: make(chan struct{}),
		calls: map[engine.CallID]chan callResult{}, timers: map[engine.TimerKind]time.Time{}}
}

func (cn *conn) isConnected() bool {
	cn.c.mu.Lock()
	defer cn.c.mu.Unlock()
	return cn.connected
}

// serve runs the connection until it ends, then closes the socket, joins
// the reader and the tasks, fails the calls still waiting and reports why
// it ended.
func (cn *conn) serve() engine.EndReason {
	c := cn.c
	c.setCur(cn, false)
	cn.wg.Add(1)
	go cn.readLoop()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for cn.end == engine.EndNone {
		select {
		case <-cn.ctx.Done():
			cn.end = engine.EndClosed
		case it := <-cn.q:
			switch {
			case it.call != nil:
				cn.callID++
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
			default:
				cn.step(it.in)
			}
		case <-timer.C:
			cn.fireDue()
		}
		cn.resetTimer(timer)
	}
	timer.Stop()
	close(cn.stop)
	cn.tc.Close() // unblocks the reader
	cn.wg.Wait()
	for id, ch := range cn.calls {
		ch <- callResult{err: fmt.Errorf("walink: %w", errConnClosed)}
		delete(cn.calls, id)
	}
	c.mu.Lock()
	cn.ready, cn.paired, cn.connected = false, false, false
	c.mu.Unlock()
	close(cn.done)
	c.setCur(cn, true)
	return cn.end
}

// readLoop reads and decodes frames into the queue. The frame is borrowed
// (decrypted in place in the read buffer): it is decoded and its Content
// copied out before the next read.
func (cn *conn) readLoop() {
	defer cn.wg.Done()
	for {
		frame, err := cn.tc.NextFrame()
		if err != nil {
			cn.push(item{readErr: err})
			return
		}
		n, err := binxml.Unmarshal(frame)
		if err != nil {
			cn.log.Warn("dropping undecodable frame", "err", err)
			continue
		}
		ownContent(&n)
		cn.log.Debug("recv", "tag", n.Tag, "id", n.Attr("id"), "type", n.Attr("type"))
		if !cn.push(item{in: engine.NodeIn{Node: n}}) {
			return
		}
	}
}

// push queues it unless serve has stopped taking input.
func (cn *conn) push(it item) bool {
	select {
	case cn.q <- it:
		return true
	case <-cn.stop:
		return false
	}
}

// call sends an API call to the session and waits for its reply. When ctx
// ends first, onCancel (if any) tells the session the caller gave up.
func (cn *conn) call(ctx context.Context, mk, onCancel func(engine.CallID) engine.Input) (string, error) {
	ac := &apiCall{mk: mk, onCancel: onCancel, reply: make(chan callResult, 1)}
	select {
	case cn.q <- item{call: ac}:
	case <-cn.stop:
		return "", fmt.Errorf("walink: %w", errConnClosed)
	case <-ctx.Done():
		return "", ctx.Err()
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
			cn.push(item{cancel: ac})
		}
		return "", ctx.Err()
	}
}

// step feeds the session one input and carries out its actions.
func (cn *conn) step(in engine.Input) {
	cn.run(cn.sess.Step(cn.c.now(), in))
	c := cn.c
	ready, paired, connected := cn.sess.Ready(), cn.sess.Paired(), cn.sess.Connected()
	c.mu.Lock()
	changed := ready != cn.ready || paired != cn.paired || connected != cn.connected
	cn.ready, cn.paired, cn.connected = ready, paired, connected
	cn.everConn = cn.everConn || connected
	c.mu.Unlock()
	if changed {
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
			c.emit(c.event(a.Event))
		case engine.ArmTimer:
			cn.timers[a.Kind] = a.At
		case engine.CancelTimer:
			delete(cn.timers, a.Kind)
		case engine.StartTask:
			cn.wg.Add(1)
			go func() {
				defer cn.wg.Done()
				v, err := a.Run()
				cn.push(item{in: engine.TaskDone{Kind: a.Kind, ID: a.ID, Value: v, Err: err}})
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

// send writes one stanza. Only the tag and id are logged: contents may
// carry key material. A failed write is logged; the reader then sees the
// broken connection and ends it.
func (cn *conn) send(n binxml.Node) {
	b, err := binxml.Marshal(n)
	if err != nil {
		cn.log.Error("encoding stanza", "tag", n.Tag, "err", err)
		return
	}
	cn.log.Debug("send", "tag", n.Tag, "id", n.Attr("id"), "type", n.Attr("type"), "xmlns", n.Attr("xmlns"))
	if err := cn.tc.WriteFrame(cn.ctx, b); err != nil && cn.ctx.Err() == nil {
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
	for _, k := range []engine.TimerKind{engine.TimerQR, engine.TimerCode, engine.TimerConfirm, engine.TimerKeepalive, engine.TimerIQ} {
		if at, ok := cn.timers[k]; ok && !at.After(due) && cn.end == engine.EndNone {
			delete(cn.timers, k)
			cn.step(engine.TimerFired{Kind: k})
		}
	}
	for k, at := range cn.timers { // pairing modes' kinds
		if !at.After(due) && cn.end == engine.EndNone {
			delete(cn.timers, k)
			cn.step(engine.TimerFired{Kind: k})
		}
	}
}

func (cn *conn) firstTimer() (time.Time, bool) {
	var first time.Time
	for _, at := range cn.timers {
		if first.IsZero() || at.Before(first) {
			first = at
		}
	}
	return first, !first.IsZero()
}

// resetTimer points the runtime timer at the earliest armed instant of the
// client's clock.
func (cn *conn) resetTimer(t *time.Timer) {
	t.Stop()
	if first, ok := cn.firstTimer(); ok {
		t.Reset(max(first.Sub(cn.c.now()), 0))
	}
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
