package watest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/noise"
	"github.com/walinkdev/walink/transport"
)

// handshakeTimeout bounds the wait for each message of the Noise handshake,
// as clients bound theirs (PROTOCOL.md §1).
const handshakeTimeout = 20 * time.Second

// frameConn is the encrypted connection as the session uses it; tests
// substitute a recorder.
type frameConn interface {
	WriteFrame(ctx context.Context, plaintext []byte) error
	Close() error
}

// session is one client connection after the handshake: the protocol
// decisions for that connection. It takes decoded nodes (handle) and writes
// nodes through its frameConn; the socket loop around it is in serveWS.
type session struct {
	srv    *Server
	id     int64
	fc     frameConn
	raw    net.Conn // the WebSocket byte stream, for the oversize fault; may be nil
	dict   *binxml.Dictionary
	static keys.PublicKey // the client's Noise static key

	mu      sync.Mutex
	pending map[string]chan binxml.Node // server IQs awaiting the client's reply; made on first use
	ended   bool                        // a stream error or failure went out
	dropped bool                        // the connection is gone (dropSession)
	done    chan struct{}               // closed when dropped; made on first use (gone)
	linger  *time.Timer
	closing sync.Once

	// Set once by begin, read-only afterwards (fields inside are guarded
	// by srv.mu).
	reg   *registration
	login *loginState
}

// registration is what an unpaired companion registered in its payload.
type registration struct {
	identity  keys.PublicKey
	regID     uint32
	skeyID    uint32
	skey      keys.PublicKey
	skeySig   []byte
	props     []byte // DeviceProps, for the platform name (platformOf) at link time
	refText   string // the QR refs end to end, refLen bytes each
	refsAt    time.Time
	refreshed bool       // companion_reg_refresh already sent
	retired   [][32]byte // adv secrets retired by the refresh
	busy      bool       // a pair-success is in flight
	paired    bool
}

// refCount returns how many refs the registration has.
func (reg *registration) refCount() int { return len(reg.refText) / refLen }

// ref returns ref i.
func (reg *registration) ref(i int) string { return reg.refText[i*refLen : (i+1)*refLen] }

// loginState is a logged-in device's connection.
type loginState struct {
	phone *Phone
	dev   *linkedDevice
	jid   jid.JID
}

// refEntry locates a QR ref.
type refEntry struct {
	sess  *session
	index int
}

// serveWS is the /ws/chat handler: accept and handshake, then hand the
// connection to a goroutine of its own that runs the session until either
// side ends it or the server closes. The handler returns at once: its
// stack grew for the handshake and it would keep the request alive, which
// an idle connection does not need (bench/NOTES.md, sim memory). Nothing
// per connection watches the server's context: Close ends the sessions it
// finds registered (startSession registers under the same lock that Close
// marks the server closed with).
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	nc, err := transport.Accept(w, r)
	if err != nil {
		s.log.Debug("watest: websocket accept", "err", err)
		return
	}
	// This connection is not in s.pending (net/http has it): the
	// server's context ends its handshake on Close.
	if sess, tc, payload := s.handshake(s.ctx, nc, nil); sess != nil {
		go sess.serve(tc, payload)
	}
}

// handshake runs the server handshake on an accepted WebSocket and returns
// the session, whose goroutine (counted in s.wg) is to run
// sess.serve(tc, payload), or nil when the connection ended. ctx aborts
// the handshake; raw, when set, is the socket under nc, in s.pending until
// the session is registered.
func (s *Server) handshake(ctx context.Context, nc, raw net.Conn) (_ *session, _ *transport.Conn, payload []byte) {
	s.mu.Lock()
	s.nextConn++
	id := s.nextConn
	sc := s.scenario
	// RotateKey replaces these under s.mu.
	static, chain, badChain, leafChain := s.static, s.chain, s.badChain, s.leafChain
	s.mu.Unlock()

	hsConn := nc
	if sc.drop(DropHandshake2) {
		hsConn = &closeAfterWrite{Conn: nc}
	}
	switch {
	case sc.Faults.BadCert:
		chain = badChain
	case sc.Faults.LeafMismatch:
		chain = leafChain
	}
	// Each client message is waited for at most handshakeTimeout (socket
	// deadlines, no timer context per connection); ctx, or Close closing
	// raw, aborts a handshake in progress.
	tc, hello, err := transport.ServerHandshake(ctx, hsConn, transport.ServerConfig{
		Static: static, CertChain: chain, Rand: s.rand, IK: sc.ikPolicy(), HandshakeTimeout: handshakeTimeout,
	})
	if err != nil {
		s.info(id, "handshake failed: "+err.Error())
		nc.Close()
		return nil, nil, nil
	}
	dict, err := binxml.DictionaryFor(hello.Header[3])
	if err != nil {
		s.info(id, fmt.Sprintf("unsupported dictionary version %d", hello.Header[3]))
		tc.Close()
		return nil, nil, nil
	}
	sess := s.startSession(id, tc, dict, hello.ClientStatic, raw)
	if sess == nil {
		tc.Close()
		return nil, nil, nil
	}
	sess.raw = nc
	note := handshakeNote(hello.Mode, hello.Header[3])
	if hello.EdgeRouting != nil {
		note += fmt.Sprintf(", edge-routing pre-intro of %d bytes ignored", len(hello.EdgeRouting))
	}
	s.info(id, note)
	return sess, tc, hello.Payload
}

// serve is the connection's goroutine (counted in Server.wg by
// startSession, until finish): the first stanza, then the wait for the
// next one.
func (sess *session) serve(tc *transport.Conn, payload []byte) {
	if !sess.start(sess.srv.ctx, payload) {
		sess.finish(tc)
		return
	}
	sess.wait(tc)
}

// wait waits for the client's next stanza and ends the calling goroutine's
// part in the connection. An idle connection holds no goroutine: it is
// parked in the server's poller (transport.Conn.Park), which starts
// readNext on a fresh goroutine when the client sends something or the
// connection is closed (bench/NOTES.md, issue 12). Where it cannot park
// (other systems, a read deadline set by endStream), a fresh goroutine
// waits in AwaitReadable, whose call chain fits the smallest stack. Either
// way handling a frame (which may grow the stack, e.g. a pre-key upload)
// leaves no grown stack behind; a goroutine costs about a microsecond to
// start, against tens for a stanza.
func (sess *session) wait(tc *transport.Conn) {
	// The resume function is bound to sess alone (tc is sess.fc): 16
	// bytes held while parked rather than 24.
	if p := sess.srv.connPoller(); p != nil && tc.Park(p, sess.resume) {
		return
	}
	go sess.readLoop(tc)
}

// resume is wait's resume function: the parked connection has something
// to read. sess.fc is the *transport.Conn serve was given.
func (sess *session) resume() { sess.readNext(sess.fc.(*transport.Conn)) }

// readLoop waits for the client's next stanza on its goroutine, then
// handles it.
func (sess *session) readLoop(tc *transport.Conn) {
	tc.AwaitReadable()
	sess.readNext(tc)
}

// readNext reads and handles one stanza and waits for the next, or ends
// the connection.
func (sess *session) readNext(tc *transport.Conn) {
	if !sess.readOne(tc) {
		sess.finish(tc)
		return
	}
	sess.wait(tc)
}

// readOne reads and handles one frame; false ends the connection.
//
//go:noinline
func (sess *session) readOne(tc *transport.Conn) bool {
	frame, err := tc.ReadFrame()
	return err == nil && sess.handleFrame(sess.srv.ctx, frame)
}

// start sends the first stanza; false ends the connection.
//
//go:noinline
func (sess *session) start(ctx context.Context, payload []byte) bool {
	sess.prelude(ctx)
	if err := sess.begin(ctx, payload); err != nil {
		sess.srv.info(sess.id, "session: "+err.Error())
		return false
	}
	return true
}

// finish closes the connection and forgets the session; it ends the
// connection's goroutine.
//
//go:noinline
func (sess *session) finish(tc *transport.Conn) {
	defer sess.srv.wg.Done()
	sess.srv.dropSession(sess)
	tc.Close()
	if sess.raw != nil {
		sess.raw.Close()
	}
}

// startSession registers a session for a finished handshake and counts
// its goroutine in s.wg, or returns nil once Close has begun. raw (may be
// nil) leaves s.pending under the same lock: from then on Close finds the
// session instead.
func (s *Server) startSession(id int64, fc frameConn, dict *binxml.Dictionary, static keys.PublicKey, raw net.Conn) *session {
	sess := &session{
		srv:    s,
		id:     id,
		fc:     fc,
		dict:   dict,
		static: static,
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	if raw != nil {
		delete(s.pending, raw)
	}
	s.wg.Add(1)
	s.sessions[id] = sess
	return sess
}

// modeNote names a resume in the node log; a plain XX says nothing.
var modeNote = map[noise.Mode]string{
	noise.ModeIK:         "IK resume, ",
	noise.ModeXXFallback: "XXfallback after an IK resume, ",
}

// handshakeNotes are the "handshake done" notes of the usual modes and
// dictionaries, made once rather than per connection.
var handshakeNotes = func() map[noteKey]string {
	m := map[noteKey]string{}
	for _, mode := range []noise.Mode{noise.ModeXX, noise.ModeIK, noise.ModeXXFallback} {
		for _, v := range []byte{2, 3} {
			m[noteKey{mode, v}] = makeHandshakeNote(mode, v)
		}
	}
	return m
}()

type noteKey struct {
	mode noise.Mode
	dict byte
}

func handshakeNote(mode noise.Mode, dict byte) string {
	if n, ok := handshakeNotes[noteKey{mode, dict}]; ok {
		return n
	}
	return makeHandshakeNote(mode, dict)
}

func makeHandshakeNote(mode noise.Mode, dict byte) string {
	return "handshake done (" + modeNote[mode] + "dictionary v" + strconv.Itoa(int(dict)) + ")"
}

// newSession registers a session for a finished handshake.
func (s *Server) newSession(id int64, fc frameConn, dict *binxml.Dictionary, static keys.PublicKey) *session {
	sess := &session{
		srv:    s,
		id:     id,
		fc:     fc,
		dict:   dict,
		static: static,
	}
	s.mu.Lock()
	s.sessions[id] = sess
	s.mu.Unlock()
	return sess
}

// dropSession forgets everything that points at a finished session and
// wakes the phone calls waiting on it.
func (s *Server) dropSession(sess *session) {
	s.mu.Lock()
	delete(s.sessions, sess.id)
	if sess.reg != nil {
		for i := range sess.reg.refCount() {
			delete(s.refs, sess.reg.ref(i))
		}
	}
	for num, f := range s.codes {
		if f.sess == sess {
			delete(s.codes, num)
		}
	}
	if sess.login != nil && s.online[sess.login.jid] == sess {
		delete(s.online, sess.login.jid)
	}
	s.mu.Unlock()
	sess.mu.Lock()
	if sess.linger != nil {
		sess.linger.Stop()
	}
	sess.dropped = true
	if sess.done != nil {
		close(sess.done)
	}
	sess.mu.Unlock()
	s.info(sess.id, "connection closed")
}

// closedChan stands for the done channel of a session dropped before
// anyone asked for it.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// gone returns a channel closed when the connection is gone. It is made on
// first use: most connections are never waited on (an idle connection
// holds as little as it can, bench/NOTES.md issue 12).
func (sess *session) gone() <-chan struct{} {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.done == nil {
		if sess.dropped {
			return closedChan
		}
		sess.done = make(chan struct{})
	}
	return sess.done
}

// isGone reports whether the connection is gone.
func (sess *session) isGone() bool {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.dropped
}

// reader is the part of transport.Conn the read loop needs.
type reader interface{ ReadFrame() ([]byte, error) }

// run sends the first stanza and then serves the client's stanzas until the
// connection ends (the loop of sessions driven by tests; serveWS's
// connections use serve).
func (sess *session) run(ctx context.Context, r reader, payload []byte) {
	sess.prelude(ctx)
	if err := sess.begin(ctx, payload); err != nil {
		sess.srv.info(sess.id, "session: "+err.Error())
		return
	}
	for {
		frame, err := r.ReadFrame()
		if err != nil || !sess.handleFrame(ctx, frame) {
			return
		}
	}
}

// prelude sends what the fault knobs put before the first stanza.
func (sess *session) prelude(ctx context.Context) {
	sc := sess.srv.Scenario()
	if sc.Faults.GarbageFrame {
		// A valid frame whose plaintext is no node: flags 0, then LIST_8
		// announcing 200 items that never come.
		_ = sess.fc.WriteFrame(ctx, []byte{0x00, 0xf8, 0xc8, 0x01})
		sess.srv.info(sess.id, "fault: garbage frame sent")
	}
	if sc.Faults.OversizeFrame && sess.raw != nil {
		big := make([]byte, 1<<24+64)
		big[0], big[1], big[2] = 0xff, 0xff, 0xff
		_, _ = sess.raw.Write(big)
		sess.srv.info(sess.id, "fault: oversize message sent")
	}
}

// handleFrame decodes and handles one frame from the client; false ends
// the connection.
//
//go:noinline
func (sess *session) handleFrame(ctx context.Context, frame []byte) bool {
	n, err := sess.dict.Unmarshal(frame)
	if err != nil {
		sess.srv.info(sess.id, "undecodable frame: "+err.Error())
		_ = sess.endStream(ctx, binxml.Node{Tag: "stream:error", Children: []binxml.Node{{Tag: "xml-not-well-formed"}}})
		return true
	}
	sess.srv.logNode(sess.id, DirIn, n)
	if err := sess.handle(ctx, n); err != nil {
		sess.srv.info(sess.id, "session: "+err.Error())
		return false
	}
	return true
}

// send writes one node (after the fault delay, if any).
func (sess *session) send(ctx context.Context, n binxml.Node) error {
	return sess.sendNode(ctx, n, false)
}

// sendOwned is send for a node built for this send alone, which nobody
// changes afterwards: the node log may keep it instead of a copy
// (logNodeOwned).
func (sess *session) sendOwned(ctx context.Context, n binxml.Node) error {
	return sess.sendNode(ctx, n, true)
}

func (sess *session) sendNode(ctx context.Context, n binxml.Node, owned bool) error {
	if d := sess.srv.Scenario().Faults.DelayMS; d > 0 {
		if err := sleep(ctx, ms(d)); err != nil {
			return err
		}
	}
	if tc, ok := sess.fc.(*transport.Conn); ok {
		// Encoded straight into the frame's buffer (no copy of the
		// stanza), and logged, as below, before it goes out.
		var encErr error
		err := tc.WriteFrameFunc(sess.writeCtx(ctx), func(dst []byte) ([]byte, error) {
			b, err := sess.dict.AppendMarshal(dst, n)
			if err != nil {
				encErr = err
				return b, err
			}
			sess.srv.logOut(sess.id, n, owned)
			return b, nil
		})
		switch {
		case encErr != nil:
			return fmt.Errorf("watest: encode %s: %w", n.Tag, encErr)
		case err != nil:
			return fmt.Errorf("%w: write %s: %w", ErrDisconnected, n.Tag, err)
		}
		return nil
	}
	b, err := sess.dict.Marshal(n)
	if err != nil {
		return fmt.Errorf("watest: encode %s: %w", n.Tag, err)
	}
	sess.srv.logOut(sess.id, n, owned)
	if err := sess.fc.WriteFrame(sess.writeCtx(ctx), b); err != nil {
		// The socket is gone (or going): to a phone waiting on this
		// companion that is a disconnect, not an internal error.
		return fmt.Errorf("%w: write %s: %w", ErrDisconnected, n.Tag, err)
	}
	return nil
}

// writeCtx is the context to write under ctx with: none for the server's
// own, whose end closes every session (Close, session.close cancelling a
// blocked write), so that a write needs no watch of it (a context.AfterFunc
// per frame in transport).
func (sess *session) writeCtx(ctx context.Context) context.Context {
	if ctx == sess.srv.ctx {
		return context.Background()
	}
	return ctx
}

// request sends a server IQ and waits for the client's result or error.
func (sess *session) request(ctx context.Context, n binxml.Node) (binxml.Node, error) {
	id := n.Attr("id")
	ch := make(chan binxml.Node, 1)
	sess.mu.Lock()
	if sess.pending == nil {
		// Made on first use: most connections never get a server IQ.
		sess.pending = map[string]chan binxml.Node{}
	}
	sess.pending[id] = ch
	sess.mu.Unlock()
	defer func() {
		sess.mu.Lock()
		delete(sess.pending, id)
		sess.mu.Unlock()
	}()
	if err := sess.send(ctx, n); err != nil {
		return binxml.Node{}, err
	}
	select {
	case r := <-ch:
		return r, nil
	case <-sess.gone():
		return binxml.Node{}, ErrDisconnected
	case <-ctx.Done():
		return binxml.Node{}, ctx.Err()
	}
}

// endStream sends a stream error or failure and then leaves the socket
// open until the client closes it, at most LingerMS (PROTOCOL.md §20.9).
// Later stanzas from the client are ignored.
func (sess *session) endStream(ctx context.Context, n binxml.Node) error {
	sess.mu.Lock()
	if sess.ended {
		sess.mu.Unlock()
		return nil
	}
	sess.ended = true
	sess.mu.Unlock()
	sess.offline()
	err := sess.send(ctx, n)
	linger := ms(sess.srv.Scenario().LingerMS)
	if sess.raw != nil {
		// The read loop ends when the deadline passes; no timer goroutine.
		// Network deadlines are wall-clock, whatever Config.Now says.
		_ = sess.raw.SetReadDeadline(time.Now().Add(linger))
		return err
	}
	sess.mu.Lock()
	if !sess.dropped {
		sess.linger = time.AfterFunc(linger, sess.close)
	}
	sess.mu.Unlock()
	return err
}

// offline removes a logged-in session from the online set: once its stream
// is ending, the device counts as not connected.
func (sess *session) offline() {
	if sess.login == nil {
		return
	}
	s := sess.srv
	s.mu.Lock()
	if s.online[sess.login.jid] == sess {
		delete(s.online, sess.login.jid)
	}
	s.mu.Unlock()
}

// close drops the connection at once (faults, linger expiry).
func (sess *session) close() {
	sess.closing.Do(func() {
		// A write blocked on a client that reads nothing fails at once
		// (writes under the server's context have no watch of it, and
		// the WebSocket close below waits for the write lock).
		if cw, ok := sess.fc.(interface{ CancelWrites() }); ok {
			cw.CancelWrites()
		}
		if sess.raw != nil {
			sess.raw.Close()
		}
		sess.fc.Close()
	})
}

// drop closes the socket abruptly when the fault knob names this point.
func (sess *session) drop(point string) bool {
	if !sess.srv.Scenario().drop(point) {
		return false
	}
	sess.dropNow(point)
	return true
}

// dropNow closes the socket for a drop already decided on (the scenario
// read when it was decided, not now: a knob cleared in between must not
// leave a half-done drop, e.g. a pair-success sent and then nobody
// waiting for its reply).
func (sess *session) dropNow(point string) {
	sess.srv.info(sess.id, "fault: drop after "+point)
	sess.mu.Lock()
	sess.ended = true
	sess.mu.Unlock()
	sess.offline()
	sess.close()
}

func (sess *session) isEnded() bool {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.ended
}

// begin reads the client payload and sends the first stanza after the
// configured pause: pair-device for a registration, success or failure for
// a login.
func (sess *session) begin(ctx context.Context, payload []byte) error {
	sc := sess.srv.Scenario()
	if err := sleep(ctx, ms(sc.FirstStanzaDelayMS)); err != nil {
		return err
	}
	p, err := decodePayload(payload)
	if err != nil {
		sess.srv.info(sess.id, "malformed client payload")
		return sess.endStream(ctx, failure(400))
	}
	if sc.MinClientVersion != "" {
		minV, _ := parseVersion(sc.MinClientVersion)
		got := p.appVersion
		if got.less(minV) {
			sess.srv.info(sess.id, fmt.Sprintf("client version %s older than %s", got, minV))
			return sess.endStream(ctx, failure(405))
		}
	}
	switch {
	case p.hasPairing:
		return sess.beginRegistration(ctx, &p.pairing)
	case p.hasUsername:
		return sess.beginLogin(ctx, &p)
	default:
		sess.srv.info(sess.id, "client payload is neither registration nor login")
		return sess.endStream(ctx, failure(400))
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// closeAfterWrite closes the connection after its first write: the
// "handshake2" drop fault (the server hello goes out, then nothing).
type closeAfterWrite struct {
	net.Conn
	once sync.Once
}

func (c *closeAfterWrite) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.once.Do(func() { c.Conn.Close() })
	return n, err
}

var errEnded = errors.New("watest: stream ended")
