package watest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
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

// Config configures Start. The zero value serves on 127.0.0.1 with an
// ephemeral port, in memory, with DefaultScenario.
type Config struct {
	// Addr is the TCP address to listen on. Default "127.0.0.1:0".
	Addr string
	// StateDir, when set, keeps the server keys, phones and linked devices
	// in StateDir/state.json across restarts. "" = memory only.
	StateDir string
	// Scenario holds the initial knobs; nil = DefaultScenario().
	Scenario *Scenario
	// Logger receives server diagnostics; nil discards them. Node traffic
	// goes to the event log (Server.Events), not here, except at Debug.
	Logger *slog.Logger
	// Rand is the source of keys, refs and signatures; nil = crypto/rand.
	// It is used under a lock, so any reader will do.
	Rand io.Reader
	// Now is the clock; nil = time.Now.
	Now func() time.Time
	// EventLogSize is how many events the in-memory node log (Events,
	// AwaitNode, GET /events) keeps; 0 = DefaultEventLogSize.
	EventLogSize int
	// EventFile, when set, receives every event as a JSON line (the format
	// of GET /events), so nothing is lost when the in-memory log wraps.
	// Writes are buffered and flushed by Close; the caller closes the file.
	EventFile io.Writer
}

// Server is the local WhatsApp: a WebSocket endpoint at /ws/chat speaking
// the server side of the protocol, the virtual phones, and the control API,
// all on one port. Use Start to run one; Close stops it.
type Server struct {
	log      *slog.Logger
	rand     io.Reader
	now      func() time.Time
	stateDir string

	root, intermediate, static keys.KeyPair
	chain, badChain, leafChain []byte // normal chain and the two fault chains

	events *eventLog

	ln         net.Listener
	httpSrv    *http.Server
	httpLn     *connListener         // the connections httpSrv serves (acceptLoop)
	pending    map[net.Conn]struct{} // accepted, request head not read yet; guarded by mu
	url        string
	controlURL string

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// poller holds idle connections without a goroutine each; made with
	// the first connection (connPoller), closed by Close after the
	// sessions ended.
	pollOnce sync.Once
	poller   *transport.Poller

	saveMu sync.Mutex // serializes state file writes

	mu       sync.Mutex
	closed   bool
	scenario Scenario
	phones   map[string]*Phone
	sessions map[int64]*session
	refs     map[string]refEntry  // QR refs of live registration connections
	codes    map[string]*codeFlow // pending pair-code flows by phone number
	online   map[jid.JID]*session // logged-in connections by device JID
	pk       passkeyServer        // passkey credentials and steps
	nextConn int64
	nextID   uint64
}

// Start creates a server and starts listening. It returns once the socket
// is bound; the server runs until Close (ctx only bounds the start: loading
// state).
func Start(ctx context.Context, cfg Config) (*Server, error) {
	s, err := newServer(cfg)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("watest: start: %w", err)
	}
	addr := cfg.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	// TCP keep-alive on accepted sockets with the system's timers, at most
	// one setsockopt per connection instead of net's four (none on Linux:
	// listen_linux.go). Clients ping in the protocol; keep-alive here only
	// reaps the half-open connections of clients that vanished (hours
	// rather than minutes, which a test server can afford).
	lc := listenConfig()
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("watest: listen: %w", err)
	}
	s.ln = ln
	host := ln.Addr().String()
	s.url = "ws://" + host + "/ws/chat"
	s.controlURL = "http://" + host
	s.httpSrv = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		BaseContext:       func(net.Listener) context.Context { return s.ctx },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.httpLn = &connListener{addr: ln.Addr(), conns: make(chan net.Conn), done: make(chan struct{})}
	s.pending = map[net.Conn]struct{}{}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if err := s.httpSrv.Serve(s.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("watest: serve", "err", err)
		}
	}()
	go s.acceptLoop(ln)
	s.log.Info("watest: listening", "ws_url", s.url, "root_public_key", s.root.Public.String())
	return s, nil
}

// New makes a server without a listener, to be served as a plain
// http.Handler (Handler), e.g. over net.Pipe; URL then names no real host.
// Close still ends its connections and goroutines.
func New(cfg Config) (*Server, error) {
	s, err := newServer(cfg)
	if err == nil {
		s.url, s.controlURL = "ws://watest.invalid/ws/chat", "http://watest.invalid"
	}
	return s, err
}

// newServer builds a server without a listener (tests drive sessions
// directly).
func newServer(cfg Config) (*Server, error) {
	sc := DefaultScenario()
	if cfg.Scenario != nil {
		sc = *cfg.Scenario
	}
	if err := sc.Validate(); err != nil {
		return nil, err
	}
	s := &Server{
		log:      cfg.Logger,
		rand:     &lockedReader{r: cfg.Rand},
		now:      cfg.Now,
		stateDir: cfg.StateDir,
		events:   newEventLog(cfg.EventLogSize, cfg.EventFile),
		scenario: sc,
		phones:   map[string]*Phone{},
		sessions: map[int64]*session{},
		refs:     map[string]refEntry{},
		codes:    map[string]*codeFlow{},
		online:   map[jid.JID]*session{},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if cfg.Rand == nil {
		s.rand = rand.Reader
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if err := s.loadOrInitKeys(); err != nil {
		s.cancel()
		return nil, err
	}
	if err := s.makeChains(); err != nil {
		s.cancel()
		return nil, err
	}
	var b [8]byte
	if _, err := io.ReadFull(s.rand, b[:]); err != nil {
		s.cancel()
		return nil, fmt.Errorf("watest: rand: %w", err)
	}
	// Server stanza ids are plain decimal numbers, as in captured traffic.
	s.nextID = 1_000_000_000 + binary.BigEndian.Uint64(b[:])%1_000_000_000
	return s, nil
}

// makeChains mints the certificate chains: the real one (leaf = static key)
// and the two deliberately wrong ones the fault knobs present.
func (s *Server) makeChains() error {
	now := s.now()
	opts := noise.CertOptions{
		IntermediateSerial: 7,
		LeafSerial:         1,
		NotBefore:          now.Add(-24 * time.Hour),
		NotAfter:           now.Add(365 * 24 * time.Hour),
	}
	var err error
	if s.chain, err = noise.NewCertChain(s.rand, s.root.Private, s.intermediate, s.static.Public, opts); err != nil {
		return fmt.Errorf("watest: cert chain: %w", err)
	}
	otherRoot, err := keys.NewKeyPair(s.rand)
	if err != nil {
		return fmt.Errorf("watest: cert chain: %w", err)
	}
	if s.badChain, err = noise.NewCertChain(s.rand, otherRoot.Private, s.intermediate, s.static.Public, opts); err != nil {
		return fmt.Errorf("watest: cert chain: %w", err)
	}
	otherLeaf, err := keys.NewKeyPair(s.rand)
	if err != nil {
		return fmt.Errorf("watest: cert chain: %w", err)
	}
	if s.leafChain, err = noise.NewCertChain(s.rand, s.root.Private, s.intermediate, otherLeaf.Public, opts); err != nil {
		return fmt.Errorf("watest: cert chain: %w", err)
	}
	return nil
}

// URL returns the WebSocket URL, "ws://127.0.0.1:PORT/ws/chat".
func (s *Server) URL() string { return s.url }

// ControlURL returns the control API base, "http://127.0.0.1:PORT".
func (s *Server) ControlURL() string { return s.controlURL }

// RootKey returns the root public key of the server's certificate chain;
// clients must be told to trust it instead of WhatsApp's.
func (s *Server) RootKey() keys.PublicKey { return s.root.Public }

// Scenario returns the current knobs.
func (s *Server) Scenario() Scenario {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.scenario
}

// SetScenario replaces the knobs. An invalid scenario is ignored and logged;
// use UpdateScenario to get the error.
func (s *Server) SetScenario(sc Scenario) {
	if err := s.UpdateScenario(sc); err != nil {
		s.log.Error("watest: set scenario", "err", err)
	}
}

// UpdateScenario validates and replaces the knobs. Connections pick up the
// new values at their next decision.
func (s *Server) UpdateScenario(sc Scenario) error {
	if err := sc.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	s.scenario = sc
	s.mu.Unlock()
	s.info(0, "scenario changed")
	return nil
}

// Events returns the node log so far, oldest first.
func (s *Server) Events() []Event {
	evs, _ := s.events.since(0)
	return evs
}

// AwaitNode waits for the first logged event, from the beginning of the
// log, that match accepts.
func (s *Server) AwaitNode(ctx context.Context, match func(Event) bool) (Event, error) {
	return s.events.await(ctx, 0, match)
}

// AwaitNodeFrom is AwaitNode looking only at events with Seq > after, so
// a test can wait for something that happens after a point it noted.
func (s *Server) AwaitNodeFrom(ctx context.Context, after int64, match func(Event) bool) (Event, error) {
	return s.events.await(ctx, after, match)
}

// Close stops listening, ends every connection and pending phone call, and
// waits for all goroutines. It is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	// End every connection, as a per-connection watch of ctx would (none
	// is kept, to save its memory): closing the socket unblocks the read.
	for _, sess := range s.sessions {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			sess.close()
		}()
	}
	// Connections still sending their request head are closed; the
	// listener's close ends acceptLoop.
	for c := range s.pending {
		c.Close()
	}
	s.mu.Unlock()
	s.cancel()
	var err error
	if s.ln != nil {
		s.ln.Close()
	}
	if s.httpSrv != nil {
		err = s.httpSrv.Close()
	}
	s.wg.Wait()
	// No session is left to park: a session resumed by its closing and
	// handling a last frame finds its socket closing and waits without
	// the poller.
	s.pollOnce.Do(func() {}) // none made from now on
	if s.poller != nil {
		s.poller.Close()
	}
	if ferr := s.events.flush(); ferr != nil && err == nil {
		err = fmt.Errorf("watest: event file: %w", ferr)
	}
	return err
}

// connPoller returns the poller idle connections park in, made on first
// use; nil if none could be made (the sessions then wait on goroutines).
func (s *Server) connPoller() *transport.Poller {
	s.pollOnce.Do(func() {
		p, err := transport.NewPoller()
		if err != nil {
			s.log.Warn("watest: no poller, idle connections keep a goroutine each", "err", err)
			return
		}
		s.poller = p
	})
	return s.poller
}

// track registers a goroutine with the server; false after Close.
func (s *Server) track() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

// newID returns a server stanza id.
func (s *Server) newID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	return strconv.FormatUint(s.nextID, 10)
}

func (s *Server) unix() string { return strconv.FormatInt(s.now().Unix(), 10) }

func (s *Server) logNode(conn int64, dir string, n binxml.Node) {
	s.logRedacted(conn, dir, n, redact(n))
}

// logOut logs a node the server sends; owned: see logNodeOwned.
func (s *Server) logOut(conn int64, n binxml.Node, owned bool) {
	if owned {
		s.logNodeOwned(conn, DirOut, n)
	} else {
		s.logNode(conn, DirOut, n)
	}
}

// logNodeOwned is logNode for a node that nobody changes after this call
// (built for one send): when redact would copy it unchanged, the log keeps
// the node itself, not a copy (three allocations per registration
// connection's pair-device).
func (s *Server) logNodeOwned(conn int64, dir string, n binxml.Node) {
	r := n
	if !redactsSame(n) {
		r = redact(n)
	}
	s.logRedacted(conn, dir, n, r)
}

// logRedacted logs n, redacted as r.
func (s *Server) logRedacted(conn int64, dir string, n, r binxml.Node) {
	// Event.XML is rendered when the event is read (eventLog.since), not
	// here on every connection's path.
	s.events.add(Event{Time: s.now(), Conn: conn, Dir: dir, Node: r, Tag: n.Tag})
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.Debug("watest: node", "conn", conn, "dir", dir, "xml", xmlString(r))
	}
}

func (s *Server) info(conn int64, note string) {
	s.events.add(Event{Time: s.now(), Conn: conn, Dir: DirInfo, Note: note})
	if s.log.Enabled(context.Background(), slog.LevelInfo) { // the message is built only for a logger that takes it
		s.log.Info("watest: "+note, "conn", conn)
	}
}

// Phone returns the virtual primary phone for a number, creating it (with
// keys derived from the number) on first use.
func (s *Server) Phone(number string) *Phone {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.phoneLocked(number)
}

func (s *Server) phoneLocked(number string) *Phone {
	if p, ok := s.phones[number]; ok {
		return p
	}
	p := newPhone(s, number)
	s.phones[number] = p
	return p
}

// Kick ends a connected device's stream the way WhatsApp does: kind "515"
// (restart required), "401" (device removed: the device is also unlinked,
// as a removed device is), "429" (rate limited), "503" (service
// unavailable) or "replaced" (another connection took over).
func (s *Server) Kick(ctx context.Context, device jid.JID, kind string) error {
	var n binxml.Node
	switch kind {
	case "515":
		n = streamError("515")
	case "401":
		n = deviceRemoved()
	case "replaced":
		n = replaced()
	case "429", "503":
		n = streamError(kind) // rate limited; service unavailable
	default:
		return fmt.Errorf("%w: kick kind %q: want 515, 401, 429, 503 or replaced", ErrBadScenario, kind)
	}
	if kind == "401" {
		s.mu.Lock()
		p := s.phones[device.User]
		s.mu.Unlock()
		if p == nil {
			return fmt.Errorf("%w: %s", ErrUnknownDevice, device)
		}
		return p.Unlink(ctx, device.Device)
	}
	s.mu.Lock()
	sess := s.online[device]
	s.mu.Unlock()
	if sess == nil {
		return fmt.Errorf("%w: %s", ErrNotConnected, device)
	}
	s.info(sess.id, "kick "+device.String()+" "+kind)
	return sess.endStream(ctx, n)
}

// Ping sends a server-initiated ping (<iq type="get" xmlns="urn:xmpp:ping"
// t=…>, as WhatsApp Web receives) to a connected device and waits for its
// result.
func (s *Server) Ping(ctx context.Context, device jid.JID) error {
	s.mu.Lock()
	sess := s.online[device]
	s.mu.Unlock()
	if sess == nil {
		return fmt.Errorf("%w: %s", ErrNotConnected, device)
	}
	r, err := sess.request(ctx, serverIQ(s.newID(), "get", "urn:xmpp:ping", []binxml.Attr{binxml.A("t", s.unix())}))
	if err != nil {
		return fmt.Errorf("watest: ping %s: %w", device, err)
	}
	if r.Attr("type") != "result" {
		return fmt.Errorf("watest: ping %s: reply type %q", device, r.Attr("type"))
	}
	return nil
}

// lockedReader serializes reads from a reader that may not be safe for
// concurrent use (a deterministic test source).
type lockedReader struct {
	mu sync.Mutex
	r  io.Reader
}

func (l *lockedReader) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Read(p)
}

// readHeaderTimeout bounds the wait for a request head, on both paths.
const readHeaderTimeout = 10 * time.Second

// wsRequest starts the request line of a WebSocket upgrade to /ws/chat.
const wsRequest = "GET /ws/chat"

// maxHeadBytes bounds a WebSocket upgrade request head, as net/http's
// server bounds every request head (http.DefaultMaxHeaderBytes).
const maxHeadBytes = http.DefaultMaxHeaderBytes

// headReaders lend the buffered readers request heads are read with; a
// connection keeps none.
var headReaders = sync.Pool{New: func() any { return &headReader{br: bufio.NewReaderSize(nil, 4096)} }}

// headReader is a pooled reader with the limit it reads through, pooled
// together so that a connection allocates neither.
type headReader struct {
	br *bufio.Reader
	lr io.LimitedReader
}

// acceptLoop accepts connections until the listener closes: each gets a
// goroutine (counted in wg) that reads the start of its request line. A
// WebSocket upgrade to /ws/chat (every client connection) is read,
// upgraded and handshaken there, without net/http's server (its
// per-connection goroutine, 8 KiB of buffers that a hijack does not give
// back, contexts and routing: ~3 % of a local handshake's CPU and 10 KiB
// of its allocations); every other
// request, and the rest of that connection, goes to httpSrv with the bytes
// already read, so the control API and anything else is served as before.
func (s *Server) acceptLoop(ln net.Listener) {
	defer s.wg.Done()
	defer s.httpLn.Close()
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and the like: wait, as net/http's server does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn("watest: accept", "err", err, "retry_in", delay)
			select {
			case <-time.After(delay):
				continue
			case <-s.ctx.Done():
				return
			}
		}
		delay = 0
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.wg.Add(1)
		s.pending[c] = struct{}{}
		s.mu.Unlock()
		go s.serveConn(c)
	}
}

// serveConn reads the start of c's request and serves it (see acceptLoop).
// c stays in s.pending, so that Close closes it, until it is handed on:
// to httpSrv, or as a session registered with the server (startSession);
// the handshake in between then needs no watch of the server's context.
func (s *Server) serveConn(c net.Conn) {
	defer s.wg.Done()
	hr := headReaders.Get().(*headReader)
	hr.lr = io.LimitedReader{R: c, N: maxHeadBytes + 4096}
	br := hr.br
	br.Reset(&hr.lr)
	// A client that stalls sending its head is timed out here; on the
	// WebSocket path AcceptConn clears the deadline (its 101 write sets
	// and clears its own), and the handshake sets one per message.
	c.SetReadDeadline(time.Now().Add(readHeaderTimeout))
	b, _ := br.Peek(len(wsRequest) + 1)
	ws := len(b) == len(wsRequest)+1 && string(b[:len(wsRequest)]) == wsRequest && (b[len(wsRequest)] == ' ' || b[len(wsRequest)] == '?')
	var (
		req   *http.Request
		quick quickHead
		isQ   bool
	)
	if ws {
		// Every client's request takes the quick path (no http.Request
		// is built for it); anything unusual is read by net/http as
		// before.
		if quick, isQ = quickScan(br); !isQ {
			var err error
			if req, err = http.ReadRequest(br); err != nil {
				s.log.Debug("watest: reading websocket request", "err", err)
				c.SetWriteDeadline(time.Now().Add(readHeaderTimeout))
				io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request")
				s.release(hr)
				s.unpend(c)
				c.Close()
				return
			}
		}
	}
	// What the reader holds past the head: the client's first message, or
	// (for httpSrv) the request itself.
	var buffered []byte
	if n := br.Buffered(); n > 0 {
		p, _ := br.Peek(n)
		buffered = append([]byte(nil), p...)
	}
	s.release(hr)
	if !ws {
		if !s.unpend(c) {
			c.Close()
			return
		}
		c.SetReadDeadline(time.Time{})
		var hc net.Conn = c
		if len(buffered) > 0 {
			hc = &prefixedConn{Conn: c, pre: buffered}
		}
		if !s.httpLn.hand(hc) {
			c.Close()
		}
		return
	}
	var (
		nc  net.Conn
		err error
	)
	if isQ {
		nc, err = transport.AcceptUpgrade(c, quick.upgrade(), buffered)
	} else {
		nc, err = transport.AcceptConn(c, req, buffered)
	}
	if err != nil {
		s.log.Debug("watest: websocket accept", "err", err)
		s.unpend(c)
		c.Close()
		return
	}
	// The session runs on this goroutine: its first stanza, then it parks
	// and the goroutine ends (its stack, grown by the handshake, with it).
	// One goroutine start per connection fewer than net/http's handler.
	// No context: Close ends the handshake by closing c (still pending),
	// and a context that is never done costs the handshake no watch.
	sess, tc, payload := s.handshake(context.Background(), nc, c)
	if sess == nil {
		s.unpend(c)
		return
	}
	sess.serve(tc, payload)
}

// release returns hr to its pool.
func (s *Server) release(hr *headReader) {
	hr.br.Reset(nil)
	hr.lr = io.LimitedReader{}
	headReaders.Put(hr)
}

// unpend removes c from s.pending; false when Close has begun (and closed
// c, or is about to).
func (s *Server) unpend(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.pending, c)
	return !s.closed
}

// connListener is the listener httpSrv serves: the connections acceptLoop
// hands it.
type connListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *connListener) Addr() net.Addr { return l.addr }

// hand passes c to the server; false once the listener is closed.
func (l *connListener) hand(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.done:
		return false
	}
}

// prefixedConn reads bytes already read from its connection first.
type prefixedConn struct {
	net.Conn
	pre []byte
}

func (c *prefixedConn) Read(b []byte) (int, error) {
	if len(c.pre) == 0 {
		return c.Conn.Read(b)
	}
	n := copy(b, c.pre)
	c.pre = c.pre[n:]
	if len(c.pre) == 0 {
		c.pre = nil
	}
	return n, nil
}

// CloseWrite lets net/http half-close the connection, as it does with a
// bare TCP connection before closing it after an error.
func (c *prefixedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
