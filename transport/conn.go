package transport

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/noise"
)

// DefaultHandshakeTimeout bounds the wait for each handshake reply when the
// config does not say otherwise.
const DefaultHandshakeTimeout = 20 * time.Second

// DefaultIdleRelease is ClientConfig.IdleRelease's default: long enough
// that a busy connection never rebuilds its AES-GCM state between frames
// (the rebuild allocates it again), short enough that an idle session,
// whose keepalive talks every 20–30 s, spends most of its life without it.
const DefaultIdleRelease = 2 * time.Second

// handshakeMaxFrame limits frames before the peer is authenticated, so a
// 3-byte length cannot make us reserve 16 MiB. Real handshake messages are
// well under 4 KiB.
const handshakeMaxFrame = 64 << 10

var (
	// ErrClosed is returned by ReadFrame and WriteFrame after Close. It
	// wraps net.ErrClosed.
	ErrClosed = fmt.Errorf("transport: %w", net.ErrClosed)
	// ErrHandshakeTimeout reports a peer that did not answer within the
	// handshake timeout.
	ErrHandshakeTimeout = errors.New("transport: handshake timed out")
	// ErrBadHandshakeConfig reports a config missing a required key.
	ErrBadHandshakeConfig = errors.New("transport: bad handshake config")
	// ErrResumeFailed reports an IK resume that failed before the server
	// answered it with a full handshake: the server closed the connection
	// on the resume, or its answer did not decrypt or verify. As CHANGES-2026
	// §7 says, the caller should forget the cached chain, stop resuming in
	// this process and reconnect with a full handshake. Timeouts and ctx
	// errors are not wrapped in it. It wraps noise.ErrResumeFailed.
	ErrResumeFailed = fmt.Errorf("transport: %w", noise.ErrResumeFailed)
)

// HandshakeError reports a failed handshake: Step names what was being
// done ("write client hello", "read server hello", …) and Err is the cause.
// Use errors.As to reach a *noise.CertError inside.
type HandshakeError struct {
	Step string
	Err  error
}

func (e *HandshakeError) Error() string {
	return "transport: handshake: " + e.Step + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *HandshakeError) Unwrap() error { return e.Err }

// ClientConfig configures Handshake.
type ClientConfig struct {
	NoiseKey keys.KeyPair
	RootKey  keys.PublicKey // zero = WhatsApp's real root
	Payload  []byte         // serialized ClientPayload
	Header   [4]byte        // zero = WA 06 03
	Rand     io.Reader      // nil = crypto/rand
	Now      func() time.Time
	// EdgeRouting, when not nil, is sent in an ED pre-intro before the
	// header (routing bytes from an earlier session's <edge_routing>).
	EdgeRouting []byte
	// HandshakeTimeout bounds the wait for the server hello; zero means
	// DefaultHandshakeTimeout. A ctx deadline that comes sooner wins.
	HandshakeTimeout time.Duration
	// Logger receives debug records; nil means none.
	Logger *slog.Logger
	// Resume, when set, is the server certificate chain cached from an
	// earlier handshake (Conn.ServerCert). If both its certificates are
	// valid at Now(), Handshake resumes with Noise IK, sending Payload in
	// message 1 and assuming the cached leaf key is the server's static
	// key; a server that no longer has it answers with XXfallback, which
	// Handshake completes transparently. A chain outside its validity
	// windows is ignored (full XX handshake). Conn.Mode tells what ran.
	Resume *noise.CertInfo
	// IdleRelease is how long the Conn's reader waits for a frame before
	// it drops the cipher's AES-GCM state (about 1.5 KiB, rebuilt by the
	// next frame either way) while the connection is quiet; zero means
	// DefaultIdleRelease, negative never. It applies over this package's
	// WebSocket (Dial).
	IdleRelease time.Duration
	// Chains caches verified server certificate chains between handshakes;
	// nil means a cache shared by the whole process. Only a chain with the
	// same bytes under the same root and server key is taken from it, and
	// its validity windows are checked against Now() every time.
	Chains *noise.ChainCache
}

// sharedChains is the chain cache of every ClientConfig that names none:
// all the clients of a process talk to the same few servers.
var sharedChains noise.ChainCache

// Hello is what the server learns from the client's handshake.
type Hello struct {
	Header       [4]byte
	ClientStatic keys.PublicKey
	// Payload is the client's ClientPayload: from message 3, or from
	// message 1 of an accepted IK resume.
	Payload []byte
	// EdgeRouting is the routing blob of the client's ED pre-intro, or nil.
	EdgeRouting []byte
	// Mode is the handshake that ran: noise.ModeXX, noise.ModeIK (a resume
	// accepted) or noise.ModeXXFallback (a resume answered with a full
	// handshake).
	Mode noise.Mode
}

// ServerConfig configures ServerHandshake.
type ServerConfig struct {
	Static    keys.KeyPair
	CertChain []byte // serialized CertChain whose leaf key is Static.Public
	Rand      io.Reader
	// HandshakeTimeout bounds the wait for each client message; zero means
	// DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// Logger receives debug records; nil means none.
	Logger *slog.Logger
	// IK says how to answer a client that resumes with Noise IK; the zero
	// value accepts a resume made for Static and answers any other with
	// XXfallback, as WhatsApp does.
	IK noise.IKPolicy
}

// discard is the logger of every Conn configured without one: shared, so
// an idle connection does not hold a logger of its own.
var discard = slog.New(slog.DiscardHandler)

func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return discard
	}
	return l
}

func timeout(d time.Duration) time.Duration {
	if d <= 0 {
		return DefaultHandshakeTimeout
	}
	return d
}

// aLongTimeAgo is a deadline in the past: setting it aborts blocked IO.
var aLongTimeAgo = time.Unix(1, 0)

// watchCtx ties ctx to conn's deadlines until the returned function is
// called; that function reports ctx's error if ctx ended meanwhile, in
// which case the deadline stays in the past.
func watchCtx(ctx context.Context, set func(time.Time) error) (stop func() error) {
	if ctx.Done() == nil {
		return func() error { return nil }
	}
	fired := make(chan struct{})
	stopAF := context.AfterFunc(ctx, func() {
		set(aLongTimeAgo)
		close(fired)
	})
	return func() error {
		if !stopAF() {
			<-fired // do not race its deadline with ours
			return ctx.Err()
		}
		return nil
	}
}

// ctxWatch ties the end of a context to a connection's deadline while a
// call bounded by the context is active: it then puts the deadline in the
// past, for good (mu keeps a later step from undoing it). Dial hands its
// watch, inactive, to the Handshake that follows under the same context
// (wsConn.watch): one context.AfterFunc serves both calls.
type ctxWatch struct {
	done   <-chan struct{}
	nc     net.Conn
	stopAF func() bool
	fired  sync.WaitGroup // fire is running or done

	mu        sync.Mutex
	active    bool
	cancelled bool // the context ended while active
}

// newCtxWatch returns an active watch of ctx over nc, or nil when ctx
// cannot end.
func newCtxWatch(ctx context.Context, nc net.Conn) *ctxWatch {
	done := ctx.Done()
	if done == nil {
		return nil
	}
	w := &ctxWatch{done: done, nc: nc, active: true}
	w.fired.Add(1)
	w.stopAF = context.AfterFunc(ctx, w.fire)
	return w
}

func (w *ctxWatch) fire() {
	w.mu.Lock()
	if w.active {
		w.cancelled = true
		w.nc.SetDeadline(aLongTimeAgo)
	}
	w.mu.Unlock()
	w.fired.Done()
}

// set sets nc's deadline with set unless the context ended while
// active.
func (w *ctxWatch) set(set func(time.Time) error, d time.Time) (cancelled bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cancelled {
		return true, nil
	}
	return false, set(d)
}

// pause ends the bound of the call that ran under the context, keeping the
// registration for a later call under it (resume). It reports false if
// the context ended first (nc's deadline may then be in the past).
func (w *ctxWatch) pause() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.active = false
	select {
	case <-w.done:
		return false
	default:
		return !w.cancelled
	}
}

func (w *ctxWatch) resume() {
	w.mu.Lock()
	w.active = true
	w.mu.Unlock()
}

// stop ends the watch; it reports false if the context ended first (its
// function has then run, and nc's deadline may be in the past).
func (w *ctxWatch) stop() bool {
	if w.stopAF() {
		w.fired.Done() // fire will not run
		return true
	}
	w.fired.Wait() // do not race its deadline with ours
	return false
}

// handshakeIO is the shared reading/writing of the two handshakes. It maps
// ctx onto the connection's deadlines (ctxWatch): one watch of ctx covers
// the whole handshake (Dial's, when it ran under the same ctx), and none is
// made for a ctx that cannot end.
type handshakeIO struct {
	ctx     context.Context
	nc      net.Conn
	dec     *noise.Decoder
	timeout time.Duration
	watch   *ctxWatch // nil: ctx cannot end

	ctxBound    bool // the last deadline set was ctx's own
	deadlineSet bool // a deadline is set that stop clears
	stopped     bool
}

// init starts a handshake's IO under ctx in h (the handshakes keep theirs
// on the stack); w is a paused watch handed over by Dial (or nil), taken
// over when it watches ctx's end and stopped otherwise.
func (h *handshakeIO) init(ctx context.Context, nc net.Conn, dec *noise.Decoder, timeout time.Duration, w *ctxWatch) {
	*h = handshakeIO{ctx: ctx, nc: nc, dec: dec, timeout: timeout}
	if w != nil {
		if done := ctx.Done(); done != nil && done == w.done {
			w.resume()
			h.watch = w
			return
		}
		w.stop()
	}
	h.watch = newCtxWatch(ctx, nc)
}

// stop ends the ctx watch and clears the deadlines; later calls do
// nothing. It reports ctx's error if ctx ended first (the deadline then
// stays in the past).
func (h *handshakeIO) stop() error {
	if h.stopped {
		return nil
	}
	h.stopped = true
	if h.watch != nil && !h.watch.stop() {
		if err := h.ctx.Err(); err != nil {
			return err
		}
	}
	if h.deadlineSet {
		h.nc.SetDeadline(time.Time{})
	}
	return nil
}

// setDeadline sets one or both of the connection's deadlines (set is
// nc.SetDeadline or nc.SetReadDeadline) to now+timeout, or to ctx's
// deadline if that is sooner.
func (h *handshakeIO) setDeadline(set func(time.Time) error) error {
	if err := h.ctx.Err(); err != nil {
		// (It may have ended while Dial's watch was paused.)
		return err
	}
	d := time.Now().Add(h.timeout)
	cd, ok := h.ctx.Deadline()
	h.ctxBound = ok && cd.Before(d)
	if h.ctxBound {
		d = cd
	}
	h.deadlineSet = true
	if h.watch == nil {
		return set(d)
	}
	cancelled, err := h.watch.set(set, d)
	if cancelled {
		return h.ctx.Err()
	}
	return err
}

// fail wraps err, preferring ctx's own error and naming timeouts.
func (h *handshakeIO) fail(step string, err error) error {
	switch {
	case h.ctx.Err() != nil:
		if !errors.Is(err, h.ctx.Err()) {
			err = fmt.Errorf("%w (%w)", h.ctx.Err(), err)
		}
	case errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded):
		if h.ctxBound {
			// ctx's deadline, set on the conn, fired before ctx noticed.
			err = fmt.Errorf("%w (%w)", context.DeadlineExceeded, err)
		} else {
			err = fmt.Errorf("%w: %w", ErrHandshakeTimeout, err)
		}
	}
	return &HandshakeError{Step: step, Err: err}
}

// write writes b under the deadline the step set.
func (h *handshakeIO) write(b []byte) error {
	_, err := h.nc.Write(b)
	return err
}

// beginFrame reserves a frame's length prefix at the end of dst, for a
// body that a noise Append form writes straight after it (no message
// buffer of its own to copy from); endFrame fills the prefix in. The
// frame is noise.AppendFrame's.
func beginFrame(dst []byte) ([]byte, int) {
	return append(dst, make([]byte, noise.FrameHeaderSize)...), len(dst)
}

func endFrame(frame []byte, at int) error {
	n := len(frame) - at - noise.FrameHeaderSize
	if n > noise.MaxFrameSize {
		return &noise.FrameError{Length: n, Limit: noise.MaxFrameSize}
	}
	frame[at], frame[at+1], frame[at+2] = byte(n>>16), byte(n>>8), byte(n)
	return nil
}

// Room a handshake message needs beyond the certificate chain or payload
// it carries (keys, tags, field headers), so that the frame buffer is
// asked for once at the right size.
const handshakeMsgRoom = 128

// keepBuf makes b, grown from *bp, the buffer bp returns to the pool.
func keepBuf(bp *[]byte, b []byte) {
	if cap(b) > 0 {
		*bp = b[:0]
	}
}

// readMessage returns the next frame body, under the deadline the step
// set. The body is the decoder's bytes, valid until its next use: each is
// handed to noise, which copies out (decrypts into its own buffers) what it
// keeps, before the next read.
func (h *handshakeIO) readMessage() ([]byte, error) {
	for {
		body, err := h.dec.Next()
		if err != nil {
			return nil, err
		}
		if body != nil {
			return body, nil
		}
		n, err := h.dec.Fill(h.nc)
		if err != nil {
			if n > 0 {
				// Deliver what arrived with the error first.
				if body, derr := h.dec.Next(); derr == nil && body != nil {
					return body, nil
				}
			}
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
}

// Handshake runs the client side of the Noise XX handshake over conn:
// it writes the header and message 1 in one write, waits for message 2
// (at most cfg.HandshakeTimeout, and no longer than ctx allows), verifies
// the server's certificate chain against cfg.RootKey at cfg.Now(), and
// sends message 3 carrying cfg.Payload. With a valid cfg.Resume it resumes
// with IK instead (no message 3 when the server accepts; XXfallback when it
// does not). On failure conn is closed; a resume the server cut short is
// reported with ErrResumeFailed.
func Handshake(ctx context.Context, conn net.Conn, cfg ClientConfig) (_ *Conn, err error) {
	if cfg.NoiseKey.Private.IsZero() {
		conn.Close()
		return nil, fmt.Errorf("%w: missing noise key", ErrBadHandshakeConfig)
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Header == [4]byte{} {
		cfg.Header = noise.HeaderV3
	}
	if cfg.Chains == nil {
		cfg.Chains = &sharedChains
	}
	log := logger(cfg.Logger)
	ws, _ := conn.(*wsConn)
	var dec *noise.Decoder
	if ws != nil && ws.rest != nil {
		// Dial's WebSocket came with room for the decoder (clientState).
		dec = &ws.rest.dec
		dec.SetMaxFrame(handshakeMaxFrame)
	} else {
		dec = noise.NewDecoder(noise.DecoderConfig{MaxFrame: handshakeMaxFrame})
	}
	var dialWatch *ctxWatch
	if ws != nil {
		dialWatch = ws.watch.Swap(nil)
	}
	var h handshakeIO // on the stack: it lives for the handshake only
	h.init(ctx, conn, dec, timeout(cfg.HandshakeTimeout), dialWatch)
	bp := getBuf(max(512, noise.FrameHeaderSize+handshakeMsgRoom+len(cfg.Payload)))
	defer func() {
		putBuf(bp)
		if cerr := h.stop(); cerr != nil && err == nil {
			err = &HandshakeError{Step: "finish", Err: cerr}
		}
		if err != nil {
			conn.Close()
			log.Debug("transport: client handshake failed", "err", err)
		}
	}()

	resume := cfg.Resume != nil
	if resume {
		if verr := cfg.Resume.CheckValidity(cfg.Now()); verr != nil {
			log.Debug("transport: cached server certificate unusable, full handshake", "err", verr)
			resume = false
		}
	}
	in, err := noise.NewInitiator(noise.InitiatorConfig{
		Static: cfg.NoiseKey, Prologue: cfg.Header, Rand: cfg.Rand,
		RootKey: cfg.RootKey, Time: cfg.Now, Resume: cfg.Resume, Chains: cfg.Chains,
	})
	if err != nil {
		return nil, &HandshakeError{Step: "start", Err: err}
	}
	wire, err := noise.AppendIntro((*bp)[:0], cfg.Header, cfg.EdgeRouting)
	if err == nil {
		if resume {
			var msg1 []byte
			if msg1, err = in.ResumeHello(cfg.Payload); err == nil {
				wire, err = noise.AppendFrame(wire, msg1)
			}
		} else {
			// Message 1 written straight into the frame.
			var at int
			wire, at = beginFrame(wire)
			if wire, err = in.AppendClientHello(wire); err == nil {
				err = endFrame(wire, at)
			}
		}
	}
	keepBuf(bp, wire)
	if err != nil {
		return nil, &HandshakeError{Step: "client hello", Err: err}
	}
	// One deadline for the hello's write, the wait for the server's
	// answer and the finish's write: the wait is the step that takes time.
	if err := h.setDeadline(conn.SetDeadline); err != nil {
		return nil, h.fail("write client hello", err)
	}
	if err := h.write(wire); err != nil {
		return nil, h.fail("write client hello", err)
	}
	msg2, err := h.readMessage()
	if err != nil {
		if resume && ctx.Err() == nil && !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, context.DeadlineExceeded) {
			// The server dropped the connection on our resume.
			err = fmt.Errorf("%w: %w", ErrResumeFailed, err)
		}
		return nil, h.fail("read server hello", err)
	}
	serverStatic, _, err := in.ReadServerHello(msg2)
	if err != nil {
		if in.Mode() == noise.ModeIK {
			// Failed before the pivot to XXfallback.
			err = fmt.Errorf("%w: %w", ErrResumeFailed, err)
		}
		return nil, &HandshakeError{Step: "server hello", Err: err}
	}
	// Message 3 written straight into the frame.
	wire, at := beginFrame(wire[:0])
	wire, cipher, err := in.AppendClientFinish(wire, cfg.Payload)
	keepBuf(bp, wire)
	if err != nil {
		return nil, &HandshakeError{Step: "client finish", Err: err}
	}
	if len(wire) > noise.FrameHeaderSize { // no message after an accepted resume
		if err := endFrame(wire, at); err != nil {
			return nil, &HandshakeError{Step: "client finish", Err: err}
		}
		if err := h.write(wire); err != nil {
			return nil, h.fail("write client finish", err)
		}
	}
	if cerr := h.stop(); cerr != nil {
		return nil, &HandshakeError{Step: "finish", Err: cerr}
	}
	if log.Enabled(context.Background(), slog.LevelDebug) {
		// Not formatted for a logger that drops it.
		log.Debug("transport: client handshake done", "mode", in.Mode().String(), "server_static", serverStatic.String())
	}
	var c *Conn
	if ws != nil && ws.rest != nil {
		// Dial's WebSocket came with room for the rest (clientState).
		s := ws.rest
		ws.rest = nil
		cipher.MoveTo(&s.cipher)
		s.conn = Conn{nc: conn, cipher: &s.cipher, dec: &s.dec, peer: serverStatic, log: log}
		s.dec.SetMaxFrame(noise.MaxFrameSize)
		c = &s.conn
		if sc := in.ServerCert(); sc != nil {
			s.cert = *sc
			c.serverCert = &s.cert
		}
	} else {
		c = newConn(conn, cipher, h.dec, serverStatic, log)
		c.serverCert = in.ServerCert()
	}
	c.mode = in.Mode()
	switch {
	case cfg.IdleRelease == 0:
		c.idleRelease = DefaultIdleRelease
	case cfg.IdleRelease > 0:
		c.idleRelease = cfg.IdleRelease
	}
	return c, nil
}

// ServerHandshake runs the server side over conn: it reads the client's
// intro (optional ED pre-intro, then WA 06 02 or WA 06 03, which becomes
// the prologue) and message 1, answers with message 2 carrying
// cfg.CertChain, and reads message 3. The caller decides from Hello
// whether to keep the client. On failure conn is closed.
func ServerHandshake(ctx context.Context, conn net.Conn, cfg ServerConfig) (_ *Conn, _ *Hello, err error) {
	if cfg.Static.Private.IsZero() {
		conn.Close()
		return nil, nil, fmt.Errorf("%w: missing static key", ErrBadHandshakeConfig)
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	log := logger(cfg.Logger)
	decCfg := noise.DecoderConfig{Intro: true, MaxFrame: handshakeMaxFrame}
	ws, _ := conn.(*wsServerConn)
	var dec *noise.Decoder
	if ws != nil && ws.rest != nil {
		// Accept's WebSocket came with room for the decoder
		// (serverState).
		dec = &ws.rest.dec
		*dec = *noise.NewDecoder(decCfg)
	} else {
		dec = noise.NewDecoder(decCfg)
	}
	var h handshakeIO // on the stack: it lives for the handshake only
	h.init(ctx, conn, dec, timeout(cfg.HandshakeTimeout), nil)
	var bp *[]byte
	defer func() {
		if bp != nil {
			putBuf(bp)
		}
		if cerr := h.stop(); cerr != nil && err == nil {
			err = &HandshakeError{Step: "finish", Err: cerr}
		}
		if err != nil {
			conn.Close()
			log.Debug("transport: server handshake failed", "err", err)
		}
	}()

	// One deadline for the wait for the client's hello and the write of
	// the answer.
	if err := h.setDeadline(conn.SetDeadline); err != nil {
		return nil, nil, h.fail("read client hello", err)
	}
	msg1, err := h.readMessage()
	if err != nil {
		return nil, nil, h.fail("read client hello", err)
	}
	header, _ := h.dec.Header()
	r, err := noise.NewResponder(noise.ResponderConfig{Static: cfg.Static, Prologue: header, Rand: cfg.Rand, IK: cfg.IK})
	if err != nil {
		return nil, nil, &HandshakeError{Step: "start", Err: err}
	}
	if err := r.ReadClientHello(msg1); err != nil {
		return nil, nil, &HandshakeError{Step: "client hello", Err: err}
	}
	// Message 2 written straight into the frame.
	bp = getBuf(noise.FrameHeaderSize + handshakeMsgRoom + len(cfg.CertChain))
	wire, at := beginFrame((*bp)[:0])
	wire, err = r.AppendServerHello(wire, cfg.CertChain)
	if err == nil {
		err = endFrame(wire, at)
	}
	keepBuf(bp, wire)
	if err != nil {
		return nil, nil, &HandshakeError{Step: "server hello", Err: err}
	}
	if err := h.write(wire); err != nil {
		return nil, nil, h.fail("write server hello", err)
	}
	var (
		clientStatic keys.PublicKey
		payload      []byte
		cipher       *noise.Cipher
	)
	if r.Mode() == noise.ModeIK {
		// Accepted resume: message 1 carried the client's key and payload.
		if clientStatic, payload, cipher, err = r.Resumed(); err != nil {
			return nil, nil, &HandshakeError{Step: "resume", Err: err}
		}
	} else {
		// The client's finish is waited for as long as its hello was.
		if err := h.setDeadline(conn.SetReadDeadline); err != nil {
			return nil, nil, h.fail("read client finish", err)
		}
		msg3, err := h.readMessage()
		if err != nil {
			return nil, nil, h.fail("read client finish", err)
		}
		if clientStatic, payload, cipher, err = r.ReadClientFinish(msg3); err != nil {
			return nil, nil, &HandshakeError{Step: "client finish", Err: err}
		}
	}
	if cerr := h.stop(); cerr != nil {
		return nil, nil, &HandshakeError{Step: "finish", Err: cerr}
	}
	h.dec.SetMaxFrame(noise.MaxFrameSize)
	hello := &Hello{Header: header, ClientStatic: clientStatic, Payload: payload, EdgeRouting: h.dec.RoutingInfo(), Mode: r.Mode()}
	if log.Enabled(context.Background(), slog.LevelDebug) {
		log.Debug("transport: server handshake done", "mode", r.Mode().String(), "client_static", clientStatic.String(), "header", fmt.Sprintf("% x", header))
	}
	var c *Conn
	if ws != nil && ws.rest != nil {
		// Accept's WebSocket came with room for the rest (serverState).
		s := ws.rest
		ws.rest = nil
		cipher.MoveTo(&s.cipher)
		s.conn = Conn{nc: conn, cipher: &s.cipher, dec: &s.dec, peer: clientStatic, log: log}
		c = &s.conn
	} else {
		c = newConn(conn, cipher, h.dec, clientStatic, log)
	}
	c.mode = r.Mode()
	return c, hello, nil
}

// Conn is an encrypted WhatsApp connection carrying frame plaintexts.
//
// ReadFrame may run concurrently with WriteFrame; WriteFrame is safe for
// concurrent use; ReadFrame calls are serialized.
type Conn struct {
	nc     net.Conn
	cipher *noise.Cipher
	peer   keys.PublicKey
	log    *slog.Logger
	// Set by the handshake before the Conn is returned, read-only after.
	mode        noise.Mode
	serverCert  *noise.CertInfo
	idleRelease time.Duration // ClientConfig.IdleRelease; 0: never

	readMu  sync.Mutex
	dec     *noise.Decoder // reads straight into its buffer (Fill)
	readErr error          // sticky

	// Frames are built in buffers borrowed from a process-wide pool for
	// the write only, so an idle Conn holds no write buffer.
	writeMu  sync.Mutex
	writeErr error // sticky
	// bound is the context whose end closes the Conn (CloseOnDone): a
	// write under it needs no watch of its own.
	bound context.Context

	closeOnce sync.Once
	closed    atomic.Bool
	closeErr  error
}

func newConn(nc net.Conn, c *noise.Cipher, dec *noise.Decoder, peer keys.PublicKey, log *slog.Logger) *Conn {
	dec.SetMaxFrame(noise.MaxFrameSize)
	return &Conn{nc: nc, cipher: c, dec: dec, peer: peer, log: log}
}

// PeerStatic returns the peer's static noise key: the server's for a
// client, the client's for a server.
func (c *Conn) PeerStatic() keys.PublicKey { return c.peer }

// Mode returns the handshake that opened the connection: noise.ModeXX,
// noise.ModeIK or noise.ModeXXFallback.
func (c *Conn) Mode() noise.Mode { return c.mode }

// ServerCert returns, on a client Conn, what the server's certificate chain
// certified (see noise.Initiator.ServerCert): what to store and pass as
// ClientConfig.Resume next time. It is nil on a server Conn.
func (c *Conn) ServerCert() *noise.CertInfo { return c.serverCert }

// LocalAddr and RemoteAddr return the underlying connection's addresses.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// RemoteAddr returns the underlying connection's remote address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// ReadFrame blocks for the next decrypted frame plaintext, returned in a
// buffer of its own that the caller may keep. It returns io.EOF when the
// peer closed the stream between frames, and ErrClosed after Close. A
// frame that fails to decrypt closes the connection.
func (c *Conn) ReadFrame() ([]byte, error) { return c.readFrame(false) }

// NextFrame is ReadFrame without the copy: the frame is decrypted in place
// in the connection's read buffer, and the plaintext is valid only until
// the next NextFrame or ReadFrame call. It suits a reader that decodes each
// frame before it reads the next, and copies out what it keeps.
func (c *Conn) NextFrame() ([]byte, error) { return c.readFrame(true) }

func (c *Conn) readFrame(inPlace bool) ([]byte, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	if c.closed.Load() {
		if c.readErr != nil {
			return nil, c.readErr
		}
		return nil, ErrClosed
	}
	for {
		// Frames already buffered are delivered before a pending error.
		body, err := c.dec.Next()
		if err != nil {
			c.readErr = fmt.Errorf("transport: %w", err)
			return nil, c.readErr
		}
		if body != nil {
			dst := body[:0] // the body is consumed: its bytes can hold the plaintext
			if !inPlace {
				dst = make([]byte, 0, max(len(body)-noise.Overhead, 0))
			}
			pt, err := c.cipher.Open(dst, body)
			if err != nil {
				c.readErr = fmt.Errorf("transport: reading frame: %w", err)
				c.Close()
				return nil, c.readErr
			}
			return pt, nil
		}
		if c.readErr != nil {
			return nil, c.readErr
		}
		if ws, ok := c.nc.(wsStream); ok && c.dec.Buffered() == 0 {
			// Wait for the next WebSocket frame with no buffer, then
			// make room for all of it at once.
			c.dec.Release()
			n, werr := c.waitReady(ws)
			if werr != nil {
				c.readErr = c.mapReadErr(werr)
				continue
			}
			c.dec.Grow(n)
		}
		if _, rerr := c.dec.Fill(c.nc); rerr != nil {
			c.readErr = c.mapReadErr(rerr)
		}
	}
}

// waitReady waits for the next WebSocket frame. A client Conn whose
// connection stays quiet for idleRelease first drops the cipher's AES-GCM
// state: Open runs under readMu, held by the caller, and Seal under
// writeMu, so a write in progress keeps the state (the connection is not
// idle) and the wait starts over. A busy connection, whose frames come
// sooner, never rebuilds the state (no allocation per frame).
func (c *Conn) waitReady(ws wsStream) (int, error) {
	if cw, ok := ws.(*wsConn); ok && c.idleRelease > 0 {
		for {
			n, idle, err := cw.waitReadyIdle(c.idleRelease)
			if !idle {
				return n, err
			}
			if c.writeMu.TryLock() {
				c.cipher.Release()
				c.writeMu.Unlock()
				break
			}
		}
	}
	return ws.waitReady()
}

func (c *Conn) mapReadErr(err error) error {
	switch {
	case c.closed.Load():
		return ErrClosed
	case errors.Is(err, io.EOF) && c.dec.Buffered() > 0:
		return fmt.Errorf("transport: %w: %w", noise.ErrShortFrame, io.ErrUnexpectedEOF)
	case errors.Is(err, io.EOF):
		return io.EOF
	}
	return fmt.Errorf("transport: read: %w", err)
}

// WriteFrame encrypts and sends one frame; safe for concurrent use. ctx's
// deadline and cancellation bound the write; a write cut short leaves the
// stream unusable, so that error, like every write error, is returned by
// all later calls.
func (c *Conn) WriteFrame(ctx context.Context, plaintext []byte) error {
	if err := checkFrameSize(len(plaintext)); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	bp := getBuf(frameStart + len(plaintext) + noise.Overhead)
	err := c.sendFrame(ctx, bp, plaintext)
	putBuf(bp)
	return err
}

// WriteNode encodes n (binxml.AppendMarshal: flags byte, then the node)
// straight into the frame buffer, seals it in place and sends it: no copy
// of the stanza and, in steady state, no allocation. An encoding failure
// is returned wrapping the *binxml.EncodeError and does not harm the Conn;
// write failures are as for WriteFrame.
func (c *Conn) WriteNode(ctx context.Context, n binxml.Node) error {
	err := c.WriteFrameFunc(ctx, func(dst []byte) ([]byte, error) {
		return binxml.AppendMarshal(dst, n)
	})
	if err != nil {
		if ee := (*binxml.EncodeError)(nil); errors.As(err, &ee) {
			return fmt.Errorf("transport: encoding frame: %w", err)
		}
	}
	return err
}

// WriteFrameFunc sends the frame whose plaintext fill appends to dst, the
// way binxml.AppendMarshal and other append functions do: dst's bytes are
// reserved for the frame's headers and must be kept, and fill may grow it.
// The plaintext is built straight into the frame buffer and sealed in
// place. An error from fill is returned as is and does not harm the Conn;
// write failures are as for WriteFrame.
func (c *Conn) WriteFrameFunc(ctx context.Context, fill func(dst []byte) ([]byte, error)) error {
	bp := getBuf(1024)
	b, err := fill((*bp)[:frameStart])
	if err != nil {
		putBuf(bp)
		return err
	}
	if len(b) < frameStart {
		putBuf(bp)
		return errors.New("transport: WriteFrameFunc: fill dropped the reserved header bytes")
	}
	*bp = b
	err = c.sendBuilt(ctx, bp)
	putBuf(bp)
	return err
}

// CloseOnDone closes the Conn when ctx ends, like
// context.AfterFunc(ctx, c.Close), and lets writes under ctx skip their own
// watch of it (the close unblocks them), which keeps a write free of
// allocations. The returned function stops the watch (see
// context.AfterFunc). Call it once, before writing with ctx.
func (c *Conn) CloseOnDone(ctx context.Context) (stop func() bool) {
	c.writeMu.Lock()
	c.bound = ctx
	c.writeMu.Unlock()
	return context.AfterFunc(ctx, func() { c.Close() })
}

// CancelWrites makes a write in progress, and every later one, fail at
// once (the write deadline is put in the past): a driver that writes
// without a ctx uses it to unblock a write to a peer that reads nothing
// before it closes the Conn. Close still runs the WebSocket closing
// handshake (it sets a deadline of its own). Safe for concurrent use.
func (c *Conn) CancelWrites() {
	c.nc.SetWriteDeadline(aLongTimeAgo)
}

// frameStart is where a frame's plaintext starts in a send buffer: room
// for the WebSocket header, then the 3-byte frame length.
const frameStart = wsHeadroom + noise.FrameHeaderSize

func checkFrameSize(plaintext int) error {
	if plaintext+noise.Overhead > noise.MaxFrameSize {
		return fmt.Errorf("transport: %w", &noise.FrameError{Length: plaintext + noise.Overhead, Limit: noise.MaxFrameSize})
	}
	return nil
}

// sendBuilt seals the plaintext at (*bp)[frameStart:] in place and sends
// the frame.
func (c *Conn) sendBuilt(ctx context.Context, bp *[]byte) error {
	b := *bp
	if err := checkFrameSize(len(b) - frameStart); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	b = slices.Grow(b, noise.Overhead)
	*bp = b
	return c.sendFrame(ctx, bp, b[frameStart:])
}

// sendFrame seals plaintext behind (*bp)[:frameStart] (plaintext may be
// (*bp)[frameStart:] itself: AES-GCM seals in place) and writes the frame:
// over this package's WebSocket the header goes into the headroom and the
// frame is masked in place, so the bytes reach the socket in one write with
// no copy.
func (c *Conn) sendFrame(ctx context.Context, bp *[]byte, plaintext []byte) (err error) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if c.writeErr != nil {
		return c.writeErr
	}
	if c.closed.Load() {
		return ErrClosed
	}
	buf, err := c.cipher.Seal((*bp)[:frameStart], plaintext)
	if err != nil {
		c.writeErr = fmt.Errorf("transport: writing frame: %w", err)
		return c.writeErr
	}
	*bp = buf
	n := len(buf) - frameStart
	buf[wsHeadroom], buf[wsHeadroom+1], buf[wsHeadroom+2] = byte(n>>16), byte(n>>8), byte(n)

	dl, hasDL := ctx.Deadline()
	if hasDL {
		c.nc.SetWriteDeadline(dl)
	}
	stop := noWatch
	if ctx != c.bound && ctx.Done() != nil {
		stop = watchCtx(ctx, c.nc.SetWriteDeadline)
	}
	var werr error
	if ws, ok := c.nc.(wsStream); ok {
		werr = ws.writeInPlace(buf)
	} else {
		_, werr = c.nc.Write(buf[wsHeadroom:])
	}
	cerr := stop()
	if hasDL || cerr != nil {
		c.nc.SetWriteDeadline(time.Time{})
	}
	switch {
	case werr == nil:
		return nil
	case c.closed.Load():
		c.writeErr = ErrClosed
	case cerr != nil:
		c.writeErr = fmt.Errorf("transport: writing frame: %w", cerr)
	case ctx.Err() != nil:
		c.writeErr = fmt.Errorf("transport: writing frame: %w", ctx.Err())
	case hasDL && (errors.Is(werr, os.ErrDeadlineExceeded) || errors.Is(werr, context.DeadlineExceeded)):
		// ctx's deadline, set on the conn, fired before ctx noticed.
		c.writeErr = fmt.Errorf("transport: writing frame: %w (%w)", context.DeadlineExceeded, werr)
	default:
		c.writeErr = fmt.Errorf("transport: writing frame: %w", werr)
	}
	return c.writeErr
}

func noWatch() error { return nil }

// Close closes the connection and unblocks ReadFrame and WriteFrame.
// It is idempotent: later calls return the first call's result. Over a
// WebSocket it runs the closing handshake, which waits (at most 5 s) for
// the peer's reader to answer.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		c.closeErr = c.nc.Close()
		c.log.Debug("transport: closed")
	})
	return c.closeErr
}
