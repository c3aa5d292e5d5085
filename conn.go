package walink

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/engine"
	"github.com/walinkdev/walink/transport"
)

// endReason is why a connection ended; it decides what the runner does.
type endReason int

const (
	endNone        endReason = iota
	endClosed                // closed by us (Disconnect, Close)
	endNetwork               // read error or a stream error worth a reconnect
	endRestart               // 515: reconnect at once, silently
	endRateLimited           // 429: reconnect with a longer delay
	endLoggedOut             // unlinked: session cleared
	endReplaced              // another connection took over
	endOutdated              // 405
	endBanned                // 402
	endQRExpired             // every QR ref expired
	endFatal                 // a failure that a retry will not fix
)

func (e endReason) String() string {
	return [...]string{"none", "closed", "network", "restart", "rate-limited", "logged-out", "replaced", "outdated", "banned", "qr-expired", "fatal"}[e]
}

// conn is one encrypted connection: its read loop runs on the runner's
// goroutine (serve); its tasks (post-login bootstrap, pair code stage 2)
// and keepalive pings are goroutines joined before serve returns; its
// timers (QR, keepalive, …) are time.AfterFuncs stopped on the way out.
type conn struct {
	c      *Client
	tc     *transport.Conn
	ctx    context.Context // done when the connection ends
	cancel context.CancelFunc
	wg     sync.WaitGroup
	log    *slog.Logger

	mu        sync.Mutex
	pending   map[string]chan binxml.Node
	end       endReason
	connected bool // logged in and bootstrapped
	everConn  bool
	ready     bool // unpaired and pair-device received: codes may be asked for
	paired    bool // a pair-success was accepted on this connection
	qr        *engine.QRRotation
	qrTimer   *time.Timer
	qrSpent   bool // every ref expired while a pair code kept the connection
	code      *codeFlow
	codeTimer *time.Timer // the outstanding code's lifetime or pair-success wait
	confirm   *time.Timer // PairConfirmTimeout after the pair-device-sign reply
	kaTimer   *time.Timer // next keepalive ping; armed, it holds a count of wg
	kaLastOK  time.Time   // last answered ping (or the keepalive's start)
}

func (c *Client) newConn(parent context.Context, tc *transport.Conn) *conn {
	ctx, cancel := context.WithCancel(parent)
	cn := &conn{c: c, tc: tc, ctx: ctx, cancel: cancel, log: c.log, pending: make(map[string]chan binxml.Node)}
	// Closing the socket is what unblocks ReadFrame when ctx ends.
	context.AfterFunc(ctx, func() { tc.Close() })
	return cn
}

func (cn *conn) isConnected() bool {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return cn.connected
}

func (cn *conn) wasConnected() bool {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return cn.everConn
}

// finish records why the connection ends (the first reason wins) and
// closes it.
func (cn *conn) finish(r endReason) {
	cn.mu.Lock()
	if cn.end == endNone {
		cn.end = r
	}
	cn.mu.Unlock()
	cn.cancel()
}

// serve runs the read loop until the connection ends, then stops timers,
// fails pending requests, joins the tasks and reports why it ended.
func (cn *conn) serve() endReason {
	c := cn.c
	c.setCur(cn, false)
	for {
		// The frame is borrowed (decrypted in place in the read buffer):
		// it is decoded and its Content copied out before the next read.
		frame, err := cn.tc.NextFrame()
		if err != nil {
			if cn.ctx.Err() != nil {
				cn.finish(endClosed) // we closed it; a recorded reason wins
			} else {
				cn.log.Info("connection lost", "err", err)
				cn.finish(endNetwork)
			}
			break
		}
		n, err := binxml.Unmarshal(frame)
		if err != nil {
			cn.log.Warn("dropping undecodable frame", "err", err)
			continue
		}
		ownContent(&n)
		cn.handle(n)
		if cn.ctx.Err() != nil {
			break
		}
	}
	cn.cancel()
	cn.mu.Lock()
	if cn.end == endNone {
		cn.end = endClosed
	}
	end := cn.end
	cn.connected = false
	cn.ready = false
	if cn.qrTimer != nil {
		cn.qrTimer.Stop()
	}
	if cn.codeTimer != nil {
		cn.codeTimer.Stop()
	}
	if cn.confirm != nil {
		cn.confirm.Stop()
	}
	if cn.kaTimer != nil && cn.kaTimer.Stop() {
		cn.wg.Done() // the armed count: the callback will not run
	}
	cn.qr = nil
	for id, ch := range cn.pending {
		close(ch)
		delete(cn.pending, id)
	}
	cn.mu.Unlock()
	cn.wg.Wait()
	c.setCur(cn, true)
	return end
}

// goTask runs f on a goroutine owned by the connection.
func (cn *conn) goTask(f func()) {
	cn.wg.Add(1)
	go func() {
		defer cn.wg.Done()
		f()
	}()
}

// send writes one stanza. Only the tag and id are logged: contents may
// carry key material.
func (cn *conn) send(n binxml.Node) error {
	b, err := binxml.Marshal(n)
	if err != nil {
		return fmt.Errorf("walink: encoding <%s>: %w", n.Tag, err)
	}
	cn.log.Debug("send", "tag", n.Tag, "id", n.Attr("id"), "type", n.Attr("type"), "xmlns", n.Attr("xmlns"))
	if err := cn.tc.WriteFrame(cn.ctx, b); err != nil {
		return fmt.Errorf("walink: sending <%s>: %w", n.Tag, err)
	}
	return nil
}

// request sends an IQ and waits for the response with the same id. An
// error response becomes *IQError. Without a ctx deadline Config.IQTimeout
// applies.
func (cn *conn) request(ctx context.Context, n binxml.Node) (binxml.Node, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cn.c.cfg.IQTimeout)
		defer cancel()
	}
	id := n.Attr("id")
	ch := make(chan binxml.Node, 1)
	cn.mu.Lock()
	if cn.ctx.Err() != nil {
		cn.mu.Unlock()
		return binxml.Node{}, ErrNotConnected
	}
	cn.pending[id] = ch
	cn.mu.Unlock()
	defer func() {
		cn.mu.Lock()
		delete(cn.pending, id)
		cn.mu.Unlock()
	}()
	if err := cn.send(n); err != nil {
		return binxml.Node{}, err
	}
	select {
	case resp, ok := <-ch:
		if !ok {
			return binxml.Node{}, fmt.Errorf("walink: <%s %s>: %w", n.Tag, n.Attr("xmlns"), errConnClosed)
		}
		if e, isErr := engine.ParseIQError(resp); isErr {
			return resp, &IQError{Code: e.Code, Text: e.Text}
		}
		return resp, nil
	case <-ctx.Done():
		return binxml.Node{}, fmt.Errorf("walink: waiting for <%s %s> response: %w", n.Tag, n.Attr("xmlns"), ctx.Err())
	}
}

// handle dispatches one incoming stanza. It runs on the read loop, so it
// never waits on the network: anything that must is handed to a task.
func (cn *conn) handle(n binxml.Node) {
	cn.log.Debug("recv", "tag", n.Tag, "id", n.Attr("id"), "type", n.Attr("type"))
	switch n.Tag {
	case "iq":
		cn.handleIQ(n)
	case "notification":
		cn.handleNotification(n)
	case "success":
		cn.handleSuccess(n)
	case "failure":
		cn.handleFailure(n)
	case "stream:error":
		cn.handleStreamError(n)
	case "xmlstreamend":
		cn.finish(endNetwork)
	default:
		// ib, ack, receipt, …: nothing a linking client must act on.
	}
}

func (cn *conn) handleIQ(n binxml.Node) {
	switch n.Attr("type") {
	case "result", "error":
		id := n.Attr("id")
		cn.mu.Lock()
		ch := cn.pending[id]
		delete(cn.pending, id)
		cn.mu.Unlock()
		if ch == nil {
			cn.log.Debug("response to no request", "id", id)
			return
		}
		ch <- n
		return
	}
	if engine.IsServerPing(n) {
		cn.sendOrLog(engine.Pong(n))
		return
	}
	if !engine.IsFromServer(n) {
		cn.log.Warn("ignoring iq not from the server", "id", n.Attr("id"))
		return
	}
	switch {
	case hasChild(n, "pair-device"):
		cn.handlePairDevice(n)
	case hasChild(n, "pair-success"):
		cn.handlePairSuccess(n)
	default:
		cn.log.Debug("ignoring server iq", "xmlns", n.Attr("xmlns"))
	}
}

func hasChild(n binxml.Node, tag string) bool { _, ok := n.Child(tag); return ok }

func (cn *conn) sendOrLog(n binxml.Node) {
	if err := cn.send(n); err != nil && cn.ctx.Err() == nil {
		cn.log.Warn("send failed", "tag", n.Tag, "err", err)
	}
}

func (cn *conn) handleNotification(n binxml.Node) {
	cn.sendOrLog(engine.Ack(n))
	switch n.Attr("type") {
	case "companion_reg_refresh":
		if engine.IsRegRefresh(n) {
			cn.handleRegRefresh()
		}
	case "link_code_companion_reg":
		cn.handleLinkCode(n)
	}
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
