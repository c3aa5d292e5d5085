package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/walinkdev/walink/noise"
)

// The client side of RFC 6455 framing over an upgraded stream, kept to what
// a WhatsApp client needs: binary messages (fragmented or not) read as one
// byte stream, each Write one masked binary frame, ping answered with pong,
// and the closing handshake. It holds no buffer while idle: a frame header
// is read with one read into a 14-byte array in the connection (payload
// bytes that came with it are served from there), the rest of the payload
// goes straight into the caller's buffer, a Write borrows a pooled buffer for the masked
// copy only while it writes, and writeInPlace (the Conn's own send path)
// masks the caller's frame buffer in place.

// WebSocket opcodes (RFC 6455 §5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// Close status codes used here (RFC 6455 §7.4.1).
const (
	StatusNormalClosure   = 1000
	StatusGoingAway       = 1001
	StatusProtocolError   = 1002
	StatusUnsupportedData = 1003
	statusNoStatus        = 1005 // never on the wire: a close frame without a body
	StatusMessageTooBig   = 1009
)

// wsHeadroom is the most a client frame header takes: 2 bytes, an 8-byte
// extended length and the 4-byte mask key. writeInPlace wants this much
// free room before the payload.
const wsHeadroom = 14

// wsCloseTimeout bounds the wait for the peer's close frame in Close.
const wsCloseTimeout = 5 * time.Second

var (
	// ErrWebSocketProtocol reports a peer that broke RFC 6455 framing (a
	// masked server frame, reserved bits or opcodes, a bad continuation, an
	// oversized control frame) or sent a text message on this binary
	// stream. The connection is failed with close status 1002 or 1003.
	ErrWebSocketProtocol = errors.New("transport: websocket protocol error")
)

// CloseError is the peer's close frame when its status is not a normal
// closure (1000, 1001 or none, which read as io.EOF).
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("transport: websocket closed by peer: status %d %q", e.Code, e.Reason)
}

// wsConn is a client WebSocket as a net.Conn byte stream.
type wsConn struct {
	rw  io.ReadWriteCloser // the upgraded stream (TLS above raw for wss)
	raw net.Conn           // deadlines and addresses

	// Read side; rmu serializes readers (Read, Close's drain).
	rmu       sync.Mutex
	remaining uint64    // payload bytes left in the current data frame
	inMessage bool      // a fragmented message awaits continuations
	ra        readAhead // bytes read and not yet used, as on the server side
	// idleDL is the read deadline waitReadyIdle set, zero when none: it
	// stays set across frames, so that a busy connection sets it about
	// once per half idle period rather than twice per frame (a deadline
	// moved earlier than the netpoller's next wake-up costs a wake-up).
	// Reads that hit it and are not the idle wait itself (the rest of a
	// header, a payload) clear it and read on: it is not the caller's.
	idleDL time.Time
	// readErr sticks, timeouts included: a read cut short may have
	// consumed part of a header, and the Conn above gives up anyway.
	readErr error

	// Write side; wmu keeps frames whole on the wire.
	wmu       sync.Mutex
	closeSent bool
	writeErr  error // sticky

	// Close handshake.
	peer      peerClose
	closeOnce sync.Once
	closeErr  error

	// The rest of the client connection's long-lived state, filled in by
	// Handshake; nil once taken.
	rest *clientState
	// watch is Dial's watch of its context, paused, for a Handshake under
	// the same context to take over (one context.AfterFunc for both);
	// Handshake or Close ends it.
	watch atomic.Pointer[ctxWatch]
}

// clientState is a client connection's long-lived state as one
// allocation: the WebSocket, the Conn above it and what the Conn would
// otherwise point to as separate small objects. An idle session's state
// then sits in one size class (640 bytes here) that the linking burst
// hardly uses, instead of a dozen small objects scattered through the
// spans that the burst's garbage (pre-keys, SQL arguments) filled, each
// keeping its span in use after that garbage is collected.
type clientState struct {
	ws     wsConn
	conn   Conn
	dec    noise.Decoder
	cipher noise.Cipher
	cert   noise.CertInfo
}

func newWSConn(rw io.ReadWriteCloser, raw net.Conn) *wsConn {
	s := &clientState{}
	s.ws = wsConn{rw: rw, raw: raw, rest: s}
	return &s.ws
}

// Read reads payload bytes of binary messages, across message boundaries.
// A normal close by the peer reads as io.EOF.
func (c *wsConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if len(p) == 0 {
		return 0, nil
	}
	if c.remaining == 0 && c.readErr == nil && len(p) >= wsHeadroom {
		// At a frame boundary: header and payload in one read into p.
		n, err := c.ra.readDirect(p, c, false)
		if err != nil {
			c.readErr = err
			if n == 0 {
				return 0, err
			}
		}
		if n > 0 {
			return n, nil
		}
		// A header came without payload: read the payload below.
	}
	if err := c.waitData(); err != nil {
		return 0, err
	}
	n, err := c.readPayload(p[:min(uint64(len(p)), c.remaining)])
	c.remaining -= uint64(n)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF // mid-frame
		}
		c.readErr = err
		return n, err
	}
	return n, nil
}

// waitReady blocks until payload bytes of a data frame can be read, without
// a buffer from the caller: an idle reader waits here with none. It
// returns how many payload bytes the current frame has left.
func (c *wsConn) waitReady() (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if err := c.waitData(); err != nil {
		return 0, err
	}
	return int(min(c.remaining, 1<<30)), nil
}

// waitReadyIdle is waitReady for a reader that sheds state when the
// connection goes quiet: if no byte of a new frame arrives within about d
// (between d/2 and d after the last one), it returns idle, having consumed
// nothing, and the caller waits again (with waitReady, or here). Later
// reads that hit the deadline read on without it (readRaw), so a timeout
// never cuts a frame short; bytes the idle wait got are kept in ahead.
func (c *wsConn) waitReadyIdle(d time.Duration) (n int, idle bool, err error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.remaining == 0 && c.readErr == nil && !c.ra.buffered() {
		if now := time.Now(); c.idleDL.Sub(now) < d/2 {
			if c.raw.SetReadDeadline(now.Add(d)) != nil {
				c.idleDL = time.Time{}
				goto wait
			}
			c.idleDL = now.Add(d)
		}
		k, rerr := c.rw.Read(c.ra.buf[:])
		c.ra.off, c.ra.end = 0, uint8(k)
		if k == 0 && rerr != nil {
			if errors.Is(rerr, os.ErrDeadlineExceeded) && c.clearIdleDeadline() {
				// Not sticky: TLS and net/http's reader keep what a
				// timed-out read got, and nothing of a frame was taken.
				return 0, true, nil
			}
			c.readErr = rerr // io.EOF here: the stream ended between frames
			return 0, false, rerr
		}
		// With k > 0 an error comes back at the next read.
	}
wait:
	if err := c.waitData(); err != nil {
		return 0, false, err
	}
	return int(min(c.remaining, 1<<30)), false, nil
}

// clearIdleDeadline removes waitReadyIdle's read deadline, if it is set;
// it reports whether it was. rmu is held.
func (c *wsConn) clearIdleDeadline() bool {
	if c.idleDL.IsZero() {
		return false
	}
	c.idleDL = time.Time{}
	c.raw.SetReadDeadline(time.Time{})
	return true
}

// readRaw reads from the stream; a read that hit waitReadyIdle's deadline
// (and got nothing) clears it and reads again. rmu is held.
func (c *wsConn) readRaw(p []byte) (int, error) {
	n, err := c.rw.Read(p)
	if n == 0 && err != nil && errors.Is(err, os.ErrDeadlineExceeded) && c.clearIdleDeadline() {
		return c.rw.Read(p)
	}
	return n, err
}

// readPayload reads bytes of the current frame into p: those read ahead
// first, else from the stream. rmu is held.
func (c *wsConn) readPayload(p []byte) (int, error) {
	if c.ra.buffered() {
		return c.ra.take(p), nil
	}
	return c.readRaw(p)
}

// payloadReader is readPayload as an io.Reader (pointer-shaped: no
// allocation as an interface).
type payloadReader struct{ c *wsConn }

func (r payloadReader) Read(p []byte) (int, error) { return r.c.readPayload(p) }

// waitData reads frame headers (answering control frames) until a data
// frame with payload is current. rmu is held.
func (c *wsConn) waitData() error {
	for c.remaining == 0 {
		if c.readErr != nil {
			return c.readErr
		}
		if err := c.nextFrame(); err != nil {
			c.readErr = err
			return err
		}
	}
	return nil
}

// nextFrame reads one frame header; a control frame is handled whole, a
// data frame becomes current. rmu is held.
func (c *wsConn) nextFrame() error {
	h, err := c.readHeader()
	if err != nil {
		return c.headerErr(err)
	}
	return c.frame(h)
}

// headerErr is what an error reading a header is reported as. rmu is
// held.
func (c *wsConn) headerErr(err error) error {
	if errors.Is(err, io.EOF) && c.inMessage {
		return io.ErrUnexpectedEOF // the message was cut short
	}
	return err
}

// frame acts on a frame header: a control frame is handled whole, a data
// frame becomes current. rmu is held.
func (c *wsConn) frame(h frameHeader) error {
	switch {
	case h.opcode >= opClose:
		return c.control(h)
	case h.opcode == opBinary:
		if c.inMessage {
			return c.fail(StatusProtocolError, "new message before the last one ended")
		}
	case h.opcode == opContinuation:
		if !c.inMessage {
			return c.fail(StatusProtocolError, "continuation outside a message")
		}
	case h.opcode == opText:
		return c.fail(StatusUnsupportedData, "text message on a binary stream")
	}
	c.inMessage = !h.fin
	c.remaining = h.length
	return nil
}

// readHeader reads and checks the header of a server frame (unmasked).
// rmu is held.
func (c *wsConn) readHeader() (frameHeader, error) {
	return c.ra.readHeader(c.readRaw, false)
}

// left and consumed are the current data frame's accounting for
// readDirect. rmu is held.
func (c *wsConn) left() uint64      { return c.remaining }
func (c *wsConn) consumed(b []byte) { c.remaining -= uint64(len(b)) }

func protoErr(why string) error { return fmt.Errorf("%w: %s", ErrWebSocketProtocol, why) }

func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// control handles a ping, pong or close frame. rmu is held.
func (c *wsConn) control(h frameHeader) error {
	// Control payloads are at most 125 bytes: read into a pooled buffer.
	bp := getBuf(125)
	defer putBuf(bp)
	payload := (*bp)[:h.length]
	if _, err := io.ReadFull(payloadReader{c}, payload); err != nil {
		return unexpectedEOF(err)
	}
	switch h.opcode {
	case opPing:
		if err := c.writeControl(opPong, payload); err != nil && !errors.Is(err, net.ErrClosed) {
			return err
		}
		return nil
	case opPong:
		return nil
	}
	// Close.
	code, reason := statusNoStatus, ""
	if len(payload) == 1 {
		return c.fail(StatusProtocolError, "close frame with a 1-byte body")
	}
	if len(payload) >= 2 {
		code, reason = int(binary.BigEndian.Uint16(payload)), string(payload[2:])
	}
	c.peer.closed()
	// Echo the status, as RFC 6455 §5.5.1 asks, unless we started.
	echo := payload[:min(len(payload), 2)]
	if code == statusNoStatus {
		echo = nil
	}
	c.writeControl(opClose, echo)
	switch code {
	case StatusNormalClosure, StatusGoingAway, statusNoStatus:
		return io.EOF
	}
	return &CloseError{Code: code, Reason: reason}
}

// fail sends a close frame with code and returns the protocol error.
func (c *wsConn) fail(code int, why string) error {
	var body [2]byte
	binary.BigEndian.PutUint16(body[:], uint16(code))
	c.writeControl(opClose, body[:])
	return protoErr(why)
}

// writeControl sends a control frame unless a close frame was sent.
func (c *wsConn) writeControl(op byte, payload []byte) error {
	// A pooled buffer: an array here would escape to the heap (the write
	// goes through an interface).
	bp := getBuf(wsHeadroom + 125)
	defer putBuf(bp)
	b := appendClientHeader((*bp)[:0], op, len(payload))
	key := binary.LittleEndian.Uint32(b[len(b)-4:])
	b = append(b, payload...)
	mask(b[len(b)-len(payload):], key)
	*bp = b
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent {
		return ErrClosed
	}
	if c.writeErr != nil {
		return c.writeErr
	}
	if op == opClose {
		c.closeSent = true
	}
	return c.write(b)
}

// write sends one whole frame. wmu is held.
func (c *wsConn) write(b []byte) error {
	if _, err := c.rw.Write(b); err != nil {
		c.writeErr = err
		return err
	}
	return nil
}

// appendClientHeader appends a final frame's header with a fresh mask key
// (its last 4 bytes) for a payload of n bytes.
func appendClientHeader(b []byte, op byte, n int) []byte {
	b = append(b, 0x80|op)
	switch {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xFFFF:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	// The mask only has to be unpredictable to scripts on the path (RFC
	// 6455 §10.3); math/rand/v2's generator is ChaCha8, seeded per thread
	// from the OS.
	return binary.LittleEndian.AppendUint32(b, rand.Uint32())
}

// mask XORs b with the 4-byte key (little-endian, as it sits on the wire),
// starting at key byte 0.
func mask(b []byte, key uint32) {
	k := uint64(key) | uint64(key)<<32
	for len(b) >= 32 {
		binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k)
		binary.LittleEndian.PutUint64(b[8:], binary.LittleEndian.Uint64(b[8:])^k)
		binary.LittleEndian.PutUint64(b[16:], binary.LittleEndian.Uint64(b[16:])^k)
		binary.LittleEndian.PutUint64(b[24:], binary.LittleEndian.Uint64(b[24:])^k)
		b = b[32:]
	}
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k)
		b = b[8:]
	}
	for i := range b {
		b[i] ^= byte(k >> (8 * (i & 3)))
	}
}

// sendPool lends send buffers for the time of one write: Conn's frames and
// the masked copy of wsConn.Write. Kept buffers are at most maxPooledBuf.
var sendPool sync.Pool

// maxPooledBuf is the largest buffer returned to the send pools.
const maxPooledBuf = 64 << 10

func getBuf(n int) *[]byte {
	if bp, ok := sendPool.Get().(*[]byte); ok {
		if cap(*bp) >= n {
			return bp
		}
		sendPool.Put(bp)
	}
	b := make([]byte, 0, max(n, 1024))
	return &b
}

func putBuf(bp *[]byte) {
	if cap(*bp) <= maxPooledBuf {
		*bp = (*bp)[:0]
		sendPool.Put(bp)
	}
}

// Write sends p as one binary message. p is not modified: it is masked
// into a buffer borrowed for the write.
func (c *wsConn) Write(p []byte) (int, error) {
	bp := getBuf(wsHeadroom + len(p))
	b := appendClientHeader((*bp)[:0], opBinary, len(p))
	key := binary.LittleEndian.Uint32(b[len(b)-4:])
	b = append(b, p...)
	mask(b[len(b)-len(p):], key)
	*bp = b
	err := c.writeFrame(b)
	putBuf(bp)
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// writeInPlace sends b[wsHeadroom:] as one binary message without a copy:
// the header goes into the headroom before it and the payload is masked
// in place, so b's payload is scrambled afterwards.
func (c *wsConn) writeInPlace(b []byte) error {
	payload := b[wsHeadroom:]
	var hdr [wsHeadroom]byte
	h := appendClientHeader(hdr[:0], opBinary, len(payload))
	mask(payload, binary.LittleEndian.Uint32(h[len(h)-4:]))
	start := wsHeadroom - len(h)
	copy(b[start:], h)
	return c.writeFrame(b[start:])
}

func (c *wsConn) writeFrame(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent {
		return ErrClosed
	}
	if c.writeErr != nil {
		return c.writeErr
	}
	return c.write(b)
}

// Close runs the closing handshake: it sends a normal-closure frame and
// waits (at most 5 s) for the peer's close frame, read by a Read in
// progress or by Close itself, then closes the stream.
func (c *wsConn) Close() error {
	c.closeOnce.Do(func() {
		if w := c.watch.Swap(nil); w != nil {
			w.stop()
		}
		// With no reader, Close reads the peer's answer itself, and one
		// deadline covers its write and that read (not waitReadyIdle's).
		drain := c.rmu.TryLock()
		if drain {
			c.idleDL = time.Time{}
			c.raw.SetDeadline(time.Now().Add(wsCloseTimeout))
		} else {
			c.raw.SetWriteDeadline(time.Now().Add(wsCloseTimeout))
		}
		var body [2]byte
		binary.BigEndian.PutUint16(body[:], StatusNormalClosure)
		if err := c.writeControl(opClose, body[:]); err == nil {
			c.awaitPeerClose(drain)
		}
		if drain {
			c.rmu.Unlock()
		}
		c.closeErr = c.rw.Close()
	})
	return c.closeErr
}

// awaitPeerClose waits for the peer's close frame, at most wsCloseTimeout:
// with drain (rmu held, the deadline set), it reads frames until then.
func (c *wsConn) awaitPeerClose(drain bool) {
	if drain {
		for c.readErr == nil && !c.peer.isClosed() {
			if c.remaining > 0 {
				n, err := io.CopyN(io.Discard, payloadReader{c}, int64(c.remaining))
				c.remaining -= uint64(n)
				if err != nil {
					break
				}
				continue
			}
			if err := c.nextFrame(); err != nil {
				c.readErr = err
			}
		}
		return
	}
	// A reader is blocked in Read: it will see the close frame.
	c.peer.wait(wsCloseTimeout)
}

func (c *wsConn) LocalAddr() net.Addr                { return c.raw.LocalAddr() }
func (c *wsConn) RemoteAddr() net.Addr               { return c.raw.RemoteAddr() }
func (c *wsConn) SetDeadline(t time.Time) error      { return c.raw.SetDeadline(t) }
func (c *wsConn) SetReadDeadline(t time.Time) error  { return c.raw.SetReadDeadline(t) }
func (c *wsConn) SetWriteDeadline(t time.Time) error { return c.raw.SetWriteDeadline(t) }

// peerClose is the close handshake's shared state, for both roles: whether
// the peer's close frame arrived, and a channel for Close to wait on while
// a reader (who will see that frame) is blocked in Read.
type peerClose struct {
	mu     sync.Mutex
	done   bool
	waiter chan struct{} // made by wait when it waits for a reader
}

// closed records the peer's close frame and wakes a waiting Close.
func (p *peerClose) closed() {
	p.mu.Lock()
	p.done = true
	if p.waiter != nil {
		close(p.waiter)
		p.waiter = nil
	}
	p.mu.Unlock()
}

func (p *peerClose) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

// wait blocks until the peer's close frame arrived, or timeout.
func (p *peerClose) wait(timeout time.Duration) {
	p.mu.Lock()
	if p.done {
		p.mu.Unlock()
		return
	}
	w := make(chan struct{})
	p.waiter = w
	p.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-w:
	case <-t.C:
	}
}
