package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/walinkdev/walink/noise"
)

// The server side of RFC 6455 framing, the counterpart of ws.go's client:
// binary messages (fragmented or not) read as one byte stream, each Write
// one unmasked binary frame, ping answered with pong, and the closing
// handshake. Like the client it holds no buffer while idle: the upgrade
// goes through net/http's Hijack and the hijacked bufio.Reader/Writer are
// dropped (bytes the client sent behind its request are kept in a slice
// of their own until read), a frame header is read into a 14-byte array,
// masked payload bytes are read straight into the caller's buffer and
// unmasked there, and a frame goes out in one write (Conn's frames
// with their header in the room reserved in front of them). The local WhatsApp holds one of these per
// connected device (bench/RESULTS.md §6).

// ErrBadUpgrade reports an HTTP request that Accept could not upgrade to a
// WebSocket; Accept has answered it with an HTTP error.
var ErrBadUpgrade = errors.New("transport: not a websocket upgrade")

// wsStream is this package's WebSocket byte stream in either role: Conn
// waits for a frame with no buffer (waitReady) and sends a frame built
// with wsHeadroom bytes in front of it without a copy (writeInPlace).
type wsStream interface {
	waitReady() (int, error)
	writeInPlace(b []byte) error
}

// upgradeTimeout bounds the write of the 101 response.
const upgradeTimeout = 10 * time.Second

// Accept upgrades an HTTP request to a WebSocket byte stream (server side).
// Checking the path is the caller's job. It is as lenient as a WhatsApp
// server can be shown to be and no stricter than the library it replaced
// (coder/websocket): it requires a GET with an Upgrade: websocket token and
// a Sec-WebSocket-Key, refuses a Sec-WebSocket-Version other than 13 (RFC
// 6455 §4.4 prescribes the 426 answer), and refuses an Origin other than
// https://web.whatsapp.com (what WhatsApp clients send, PROTOCOL.md §1) or
// the server's own host, so that a web page elsewhere cannot drive a local
// server from a browser. A missing Connection: Upgrade or Version header is
// accepted. No extension or subprotocol is negotiated. A refused request is
// answered with an HTTP error and reported wrapping ErrBadUpgrade.
func Accept(w http.ResponseWriter, r *http.Request) (net.Conn, error) {
	if err := checkUpgradeRequest(w, r); err != nil {
		return nil, err
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "websocket: connection cannot be taken over", http.StatusInternalServerError)
		return nil, fmt.Errorf("%w: the response writer cannot hijack (HTTP/2?)", ErrBadUpgrade)
	}
	raw, brw, err := hj.Hijack()
	if err != nil {
		return nil, fmt.Errorf("transport: accept: %w", err)
	}
	// Bytes the client sent behind its request (it may write its first
	// message without waiting for the 101) are in net/http's reader: keep
	// just those, and let the 4 KiB bufio buffers go.
	var pre []byte
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		pre = append([]byte(nil), b...)
	}
	return upgrade(raw, r.Header.Get("Sec-Websocket-Key"), pre)
}

// AcceptConn is Accept for a server that reads the request itself, without
// net/http's server: r was read from conn, and buffered holds the bytes
// read from conn behind r's head (the client may send its first message
// without waiting for the 101); AcceptConn keeps them. It checks r as Accept
// does; a refused request is answered on conn with an HTTP error (the
// caller closes conn) and reported wrapping ErrBadUpgrade.
func AcceptConn(conn net.Conn, r *http.Request, buffered []byte) (net.Conn, error) {
	if err := checkUpgradeRequest(noResponse{}, r); err != nil {
		// Checked again for the answer: the response is built only for
		// a refusal.
		var w rawResponse
		checkUpgradeRequest(&w, r)
		w.send(conn, r.Method)
		return nil, err
	}
	return upgrade(conn, r.Header.Get("Sec-Websocket-Key"), buffered)
}

// UpgradeRequest is what AcceptUpgrade reads of a WebSocket upgrade
// request, for a server that reads request heads itself: it need not
// build an http.Request (and its header map) for AcceptConn. The header
// fields are their values as http.Header.Get returns them, "" when absent;
// a request with one of them sent more than once goes to AcceptConn.
type UpgradeRequest struct {
	Method string
	Host   string // as http.Request.Host
	// Upgrade, Sec-WebSocket-Version, Sec-WebSocket-Key and Origin.
	Upgrade, Version, Key, Origin string
}

// AcceptUpgrade is AcceptConn for a request given by its fields: it
// checks and answers r exactly as AcceptConn does an http.Request with
// them.
func AcceptUpgrade(conn net.Conn, r UpgradeRequest, buffered []byte) (net.Conn, error) {
	ok := hasToken(r.Upgrade, "websocket")
	if err := checkUpgradeFields(noResponse{}, &r, ok); err != nil {
		var w rawResponse
		checkUpgradeFields(&w, &r, ok)
		w.send(conn, r.Method)
		return nil, err
	}
	return upgrade(conn, r.Key, buffered)
}

// noResponse is the http.ResponseWriter of a check whose answer is not
// wanted.
type noResponse struct{}

func (noResponse) Header() http.Header         { return http.Header{} }
func (noResponse) WriteHeader(int)             {}
func (noResponse) Write(b []byte) (int, error) { return len(b), nil }

// upgrade answers 101 on raw and returns the WebSocket stream over it.
func upgrade(raw net.Conn, key string, pre []byte) (net.Conn, error) {
	var accept [28]byte
	acceptKey(&accept, key)
	bp := getBuf(160)
	b := append((*bp)[:0], "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	b = append(b, accept[:]...)
	b = append(b, "\r\n\r\n"...)
	*bp = b
	raw.SetWriteDeadline(time.Now().Add(upgradeTimeout))
	_, err := raw.Write(b)
	putBuf(bp)
	if err != nil {
		raw.Close()
		return nil, fmt.Errorf("transport: accept: %w", err)
	}
	raw.SetDeadline(time.Time{})
	return newWSServerConn(raw, pre), nil
}

// rawResponse is the http.ResponseWriter of AcceptConn's refusals: it
// collects the answer, and send writes it (closing the connection, which
// is not reused after a refused upgrade).
type rawResponse struct {
	header http.Header
	code   int
	body   []byte
}

func (w *rawResponse) Header() http.Header {
	if w.header == nil {
		w.header = http.Header{}
	}
	return w.header
}

func (w *rawResponse) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

func (w *rawResponse) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.body = append(w.body, b...)
	return len(b), nil
}

func (w *rawResponse) send(conn net.Conn, method string) {
	h := w.Header()
	h.Set("Content-Length", strconv.Itoa(len(w.body)))
	h.Set("Connection", "close")
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", w.code, http.StatusText(w.code))
	h.Write(&b)
	b.WriteString("\r\n")
	if method != http.MethodHead {
		b.Write(w.body)
	}
	conn.SetWriteDeadline(time.Now().Add(upgradeTimeout))
	conn.Write(b.Bytes())
}

// checkUpgradeRequest answers a request Accept refuses and says why.
func checkUpgradeRequest(w http.ResponseWriter, r *http.Request) error {
	// Header keys as textproto canonicalizes them: Get looks them up
	// without making the canonical key.
	f := UpgradeRequest{
		Method: r.Method, Host: r.Host,
		Version: r.Header.Get("Sec-Websocket-Version"), Key: r.Header.Get("Sec-Websocket-Key"), Origin: r.Header.Get("Origin"),
	}
	return checkUpgradeFields(w, &f, headerHasToken(r.Header, "Upgrade", "websocket"))
}

// checkUpgradeFields is checkUpgradeRequest on the request's fields; websocket
// says whether an Upgrade field has the websocket token.
func checkUpgradeFields(w http.ResponseWriter, r *UpgradeRequest, websocket bool) error {
	refuse := func(code int, why string) error {
		http.Error(w, "websocket: "+why, code)
		return fmt.Errorf("%w: %s", ErrBadUpgrade, why)
	}
	if !websocket {
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Upgrade", "websocket")
		return refuse(http.StatusUpgradeRequired, "no Upgrade: websocket header")
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		return refuse(http.StatusMethodNotAllowed, "upgrade request method "+r.Method+", not GET")
	}
	if v := r.Version; v != "" && v != "13" {
		w.Header().Set("Sec-WebSocket-Version", "13")
		return refuse(http.StatusUpgradeRequired, "unsupported Sec-WebSocket-Version "+v)
	}
	if strings.TrimSpace(r.Key) == "" {
		return refuse(http.StatusBadRequest, "no Sec-WebSocket-Key")
	}
	if o := r.Origin; o != "" && !strings.EqualFold(o, Origin) {
		// (WhatsApp's own origin, as clients send it, needs no parse.)
		u, err := url.Parse(o)
		if err != nil || !(strings.EqualFold(u.Host, r.Host) || strings.EqualFold(u.Host, "web.whatsapp.com")) {
			return refuse(http.StatusForbidden, fmt.Sprintf("origin %q not allowed", o))
		}
	}
	return nil
}

// wsServerConn is a server WebSocket as a net.Conn byte stream.
type wsServerConn struct {
	raw net.Conn
	pre *prefixReader // bytes read with the upgrade request, until drained; nil: none
	// rc is raw's syscall.RawConn, kept by the first Park for the next
	// ones (SyscallConn allocates one per call); pmu guards it.
	rc syscall.RawConn

	// Read side; rmu serializes readers (Read, Close's drain).
	rmu       sync.Mutex
	remaining uint64    // payload bytes left in the current data frame
	msgLen    uint64    // payload bytes of the current message so far
	key       uint32    // the current frame's mask key, turned to the next byte
	inMessage bool      // a fragmented message awaits continuations
	readErr   error     // sticky, as in wsConn
	ra        readAhead // bytes read and not yet used: a small frame arrives in one read

	// Write side; wmu keeps frames whole on the wire.
	wmu       sync.Mutex
	closeSent bool
	writeErr  error // sticky

	// Close handshake.
	peer      peerClose
	closeOnce sync.Once
	closeErr  error

	// Parking in a Poller (Conn.Park); pmu guards these.
	pmu          sync.Mutex
	parked       pollRef // the current parking; may be stale (already taken)
	closing      bool    // Close has begun: no more parking
	readDeadline bool    // a read deadline is set, which a parked wait would not honour

	// The rest of the server connection's long-lived state, for
	// ServerHandshake to fill in; nil once taken.
	rest *serverState
}

// serverState is a server connection's long-lived state as one
// allocation, as clientState is a client's: the WebSocket, the Conn above
// it, its frame decoder and its cipher (moved in from the handshake's),
// 704 bytes in one size class instead of four objects of 704 bytes in
// all. What only the handshake needs is not in it.
type serverState struct {
	ws     wsServerConn
	conn   Conn
	dec    noise.Decoder
	cipher noise.Cipher
}

func newWSServerConn(raw net.Conn, pre []byte) *wsServerConn {
	s := &serverState{}
	c := &s.ws
	*c = wsServerConn{raw: raw, rest: s}
	if len(pre) > 0 {
		c.pre = &prefixReader{pre: pre, r: raw}
	}
	return c
}

// read reads from the socket: the bytes read with the upgrade request
// first. rmu is held.
func (c *wsServerConn) read(p []byte) (int, error) {
	if c.pre != nil {
		return c.pre.Read(p)
	}
	return c.raw.Read(p)
}

// prefixReader reads pre, then r.
type prefixReader struct {
	pre []byte
	r   io.Reader
}

func (p *prefixReader) Read(b []byte) (int, error) {
	if len(p.pre) == 0 {
		return p.r.Read(b)
	}
	n := copy(b, p.pre)
	p.pre = p.pre[n:]
	if len(p.pre) == 0 {
		p.pre = nil // drained: let the bytes' array go
	}
	return n, nil
}

// Read reads payload bytes of binary messages, across message boundaries.
// A normal close by the peer reads as io.EOF.
func (c *wsServerConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if len(p) == 0 {
		return 0, nil
	}
	if c.remaining == 0 && c.readErr == nil && len(p) >= wsHeadroom {
		// At a frame boundary: header and payload in one read into p.
		n, err := c.ra.readDirect(p, c, true)
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
	c.unmask(p[:n])
	if err != nil {
		c.readErr = unexpectedEOF(err) // mid-frame
		return n, c.readErr
	}
	return n, nil
}

// readPayload reads bytes of the current frame into p: those read ahead
// first, else from the socket. rmu is held.
func (c *wsServerConn) readPayload(p []byte) (int, error) {
	if c.ra.buffered() {
		return c.ra.take(p), nil
	}
	return c.read(p)
}

// unmask unmasks b, the next payload bytes of the current frame. rmu is
// held.
func (c *wsServerConn) unmask(b []byte) {
	mask(b, c.key)
	c.key = bits.RotateLeft32(c.key, -8*(len(b)&3))
	c.remaining -= uint64(len(b))
}

// waitReady blocks until payload bytes of a data frame can be read, with no
// buffer from the caller, and returns how many the frame has left.
func (c *wsServerConn) waitReady() (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if err := c.waitData(); err != nil {
		return 0, err
	}
	return int(min(c.remaining, 1<<30)), nil
}

// waitData reads frame headers (answering control frames) until a data
// frame with payload is current. rmu is held.
func (c *wsServerConn) waitData() error {
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
func (c *wsServerConn) nextFrame() error {
	h, err := c.readHeader()
	if err != nil {
		return c.headerErr(err)
	}
	return c.frame(h)
}

// headerErr is what an error reading a header is reported as, after the
// close frame a protocol error calls for. rmu is held.
func (c *wsServerConn) headerErr(err error) error {
	if errors.Is(err, io.EOF) && c.inMessage {
		return io.ErrUnexpectedEOF
	}
	if errors.Is(err, ErrWebSocketProtocol) {
		c.sendClose(StatusProtocolError)
	}
	return err
}

// frame acts on a frame header: a control frame is handled whole, a data
// frame becomes current. rmu is held.
func (c *wsServerConn) frame(h frameHeader) error {
	switch {
	case h.opcode >= opClose:
		return c.control(h)
	case h.opcode == opBinary:
		if c.inMessage {
			return c.fail(StatusProtocolError, "new message before the last one ended")
		}
		c.msgLen = 0
	case h.opcode == opContinuation:
		if !c.inMessage {
			return c.fail(StatusProtocolError, "continuation outside a message")
		}
	case h.opcode == opText:
		// As before with coder/websocket's binary NetConn: this stream
		// carries Noise frames, which a text message cannot hold.
		return c.fail(StatusUnsupportedData, "text message on a binary stream")
	}
	// The read limit is per message, as WhatsApp clients set theirs
	// (PROTOCOL.md §1) and as the server enforced it before.
	if h.length > ReadLimit-c.msgLen {
		return c.fail(StatusMessageTooBig, fmt.Sprintf("message over %d bytes", ReadLimit))
	}
	c.msgLen += h.length
	c.inMessage = !h.fin
	c.remaining = h.length
	c.key = h.key
	return nil
}

// readHeader reads and checks the header of a client frame, which must be
// masked. rmu is held.
func (c *wsServerConn) readHeader() (frameHeader, error) {
	return c.ra.readHeader(c.read, true)
}

// readRaw, left and consumed serve readDirect. rmu is held.
func (c *wsServerConn) readRaw(p []byte) (int, error) { return c.read(p) }
func (c *wsServerConn) left() uint64                  { return c.remaining }
func (c *wsServerConn) consumed(b []byte)             { c.unmask(b) }

// control handles a ping, pong or close frame. rmu is held.
func (c *wsServerConn) control(h frameHeader) error {
	// A pooled buffer: an array here would escape to the heap (the read
	// goes through an interface).
	bp := getBuf(125)
	defer putBuf(bp)
	payload := (*bp)[:h.length]
	for n := 0; n < len(payload); {
		m, err := c.readPayload(payload[n:])
		n += m
		if err != nil && n < len(payload) {
			return unexpectedEOF(err)
		}
	}
	mask(payload, h.key)
	switch h.opcode {
	case opPing:
		if err := c.writeControl(opPong, payload); err != nil && !errors.Is(err, net.ErrClosed) {
			return err
		}
		return nil
	case opPong:
		return nil
	}
	code, reason := statusNoStatus, ""
	if len(payload) == 1 {
		return c.fail(StatusProtocolError, "close frame with a 1-byte body")
	}
	if len(payload) >= 2 {
		code, reason = int(binary.BigEndian.Uint16(payload)), string(payload[2:])
	}
	c.peer.closed()
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
func (c *wsServerConn) fail(code int, why string) error {
	c.sendClose(code)
	return protoErr(why)
}

func (c *wsServerConn) sendClose(code int) {
	var body [2]byte
	binary.BigEndian.PutUint16(body[:], uint16(code))
	c.writeControl(opClose, body[:])
}

// appendServerHeader appends a final frame's header (unmasked) for a
// payload of n bytes.
func appendServerHeader(b []byte, op byte, n int) []byte {
	b = append(b, 0x80|op)
	switch {
	case n < 126:
		return append(b, byte(n))
	case n <= 0xFFFF:
		return append(b, 126, byte(n>>8), byte(n))
	}
	b = append(b, 127)
	return binary.BigEndian.AppendUint64(b, uint64(n))
}

// writeControl sends a control frame unless a close frame was sent.
func (c *wsServerConn) writeControl(op byte, payload []byte) error {
	bp := getBuf(10 + 125)
	defer putBuf(bp)
	b := appendServerHeader((*bp)[:0], op, len(payload))
	b = append(b, payload...)
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

// write sends bytes of whole frames. wmu is held.
func (c *wsServerConn) write(b []byte) error {
	if _, err := c.raw.Write(b); err != nil {
		c.writeErr = err
		return err
	}
	return nil
}

// Write sends p as one binary message in one write: copied behind the
// header into a borrowed buffer, or, when large, with a writev of the
// header and p.
func (c *wsServerConn) Write(p []byte) (int, error) {
	var hdr [10]byte
	h := appendServerHeader(hdr[:0], opBinary, len(p))
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.writable(); err != nil {
		return 0, err
	}
	if len(p) <= maxPooledBuf {
		// Copied behind the header in a borrowed buffer: one write. (A
		// writev would keep an iovec array in the socket's poll.FD for
		// the connection's life.)
		bp := getBuf(len(h) + len(p))
		b := append(append((*bp)[:0], h...), p...)
		*bp = b
		err := c.write(b)
		putBuf(bp)
		if err != nil {
			return 0, err
		}
		return len(p), nil
	}
	// The header copied out: hdr, were it to reach the writev, would be
	// on the heap on every call, the small ones too.
	bufs := net.Buffers{append([]byte(nil), h...), p}
	if _, err := bufs.WriteTo(c.raw); err != nil {
		c.writeErr = err
		return 0, err
	}
	return len(p), nil
}

// writeInPlace sends b[wsHeadroom:] as one binary message, its header
// written into the headroom in front of it: one write, no copy.
func (c *wsServerConn) writeInPlace(b []byte) error {
	var hdr [10]byte
	h := appendServerHeader(hdr[:0], opBinary, len(b)-wsHeadroom)
	start := wsHeadroom - len(h)
	copy(b[start:], h)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.writable(); err != nil {
		return err
	}
	return c.write(b[start:])
}

// writable reports why no data frame can be sent. wmu is held.
func (c *wsServerConn) writable() error {
	if c.closeSent {
		return ErrClosed
	}
	return c.writeErr
}

// Close runs the closing handshake: it sends a normal-closure frame and
// waits (at most 5 s) for the client's close frame, read by a Read in
// progress or by Close itself, then closes the socket.
func (c *wsServerConn) Close() error {
	c.closeOnce.Do(func() {
		// A parked wait is taken back before the socket closes (the
		// poller must not hold a descriptor number that may be reused),
		// and resumed once it is closed, to find it so.
		if resume := c.unpark(true, false); resume != nil {
			defer func() { go resume() }()
		}
		// With no reader, Close reads the client's answer itself, and
		// one deadline covers its write and that read.
		drain := c.rmu.TryLock()
		if drain {
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
		c.closeErr = c.raw.Close()
	})
	return c.closeErr
}

// awaitPeerClose waits for the client's close frame, at most
// wsCloseTimeout: with drain (rmu held, the deadline set), it reads frames
// until then.
func (c *wsServerConn) awaitPeerClose(drain bool) {
	if drain {
		var scratch []byte // pooled, when a payload is to be skipped
		for c.readErr == nil && !c.peer.isClosed() {
			if c.remaining > 0 {
				if scratch == nil {
					bp := getBuf(512)
					defer putBuf(bp)
					scratch = (*bp)[:512]
				}
				n, err := c.readPayload(scratch[:min(uint64(len(scratch)), c.remaining)])
				c.unmask(scratch[:n])
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

func (c *wsServerConn) LocalAddr() net.Addr                { return c.raw.LocalAddr() }
func (c *wsServerConn) RemoteAddr() net.Addr               { return c.raw.RemoteAddr() }
func (c *wsServerConn) SetWriteDeadline(t time.Time) error { return c.raw.SetWriteDeadline(t) }

func (c *wsServerConn) SetDeadline(t time.Time) error {
	err := c.raw.SetDeadline(t)
	c.readDeadlineSet(t)
	return err
}

func (c *wsServerConn) SetReadDeadline(t time.Time) error {
	err := c.raw.SetReadDeadline(t)
	c.readDeadlineSet(t)
	return err
}

// readDeadlineSet resumes a parked wait when a read deadline is set (the
// poller does not know it; the resumed reader's ReadFrame honours it), and
// keeps the connection from parking until the deadline is cleared.
func (c *wsServerConn) readDeadlineSet(t time.Time) {
	if resume := c.unpark(false, !t.IsZero()); resume != nil {
		go resume()
	}
}

// AwaitReadable blocks until a ReadFrame would find bytes to read (or an
// error, or the end of the stream) without blocking for the first of them,
// and is meant for a server holding many idle connections, one goroutine
// each: a goroutine parked here, on a Conn over Accept's WebSocket, has a
// call chain of a few hundred bytes, so it fits the smallest goroutine
// stack (2 KiB), where one parked in ReadFrame's chain (WebSocket header,
// io.ReadFull, the netpoller) needs the next size up. It returns at once
// when bytes are already buffered, over other streams, on other systems
// than Linux, and on an error (which ReadFrame then reports). Call it from
// the goroutine that reads, between ReadFrame calls.
func (c *Conn) AwaitReadable() {
	if !canPeek || c.closed.Load() {
		return
	}
	ws, ok := c.nc.(*wsServerConn)
	if !ok || !ws.idle(c, false) {
		return
	}
	sc, ok := ws.raw.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	// RawConn.Read calls peekReadable until it reports data, parking in
	// the netpoller in between; deadlines and Close end the wait too.
	_ = rc.Read(peekReadable)
}

// idle reports whether nothing read from the socket is waiting in c or ws
// (so that the socket must be waited for), and then releases c's frame
// buffer and, with cipher, the cipher's AES-GCM state.
func (ws *wsServerConn) idle(c *Conn, cipher bool) bool {
	c.readMu.Lock()
	buffered := c.dec.Buffered() > 0 || c.readErr != nil
	if !buffered {
		// The last frame's buffer is not needed while waiting (ReadFrame
		// waiting for a WebSocket header drops it the same way).
		c.dec.Release()
		// Open runs under readMu, held here, and Seal under writeMu: a
		// write in progress keeps the state (the connection is not idle).
		if cipher && c.writeMu.TryLock() {
			c.cipher.Release()
			c.writeMu.Unlock()
		}
	}
	c.readMu.Unlock()
	if buffered {
		return false
	}
	ws.rmu.Lock()
	defer ws.rmu.Unlock()
	if ws.remaining > 0 || ws.readErr != nil || ws.ra.buffered() {
		return false
	}
	if p := ws.pre; p != nil {
		if len(p.pre) > 0 {
			return false
		}
		// Drained: let the reader go.
		ws.pre = nil
	}
	return true
}
