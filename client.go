package walink

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/walinkdev/walink/engine"
	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/noise"
	"github.com/walinkdev/walink/store"
	"github.com/walinkdev/walink/transport"
)

// Client links one companion device and keeps it connected. Create it with
// NewClient, add event handlers, then Connect. All methods are safe for
// concurrent use.
type Client struct {
	st     store.Store
	cfg    Config // resolved
	cfgErr error
	// serverSet: Config named a server; otherwise a device linked against
	// a non-default server keeps using the one it remembers.
	serverSet bool
	log       *slog.Logger
	pc        engine.PayloadConfig
	// The ids and the pairing-mode registry are kept by value: small
	// objects of their own, made while clients link, would stay scattered
	// through the spans of the linking's garbage.
	ids engine.IDs
	ev  *dispatcher

	// mu guards the fields below. It is a leaf lock: nothing else is
	// locked while it is held.
	mu         sync.Mutex
	dev        *store.Device // nil until loaded; replaced, never mutated
	run        *runner       // the connection manager of the current Connect
	cur        *conn         // the live connection, if any
	connWait   chan struct{} // closed and replaced whenever cur changes state
	closed     bool
	loggingOut bool
	fresh      keys.PublicKey // the device Config.NewDevice made, until Close
	lastEnd    error          // why the last runner stopped (see WaitReady); nil while one runs
	lastCode   PairCode       // the last pair code issued (see RequestPairCode)
	gateHeld   func()         // releases the Config.DialGate slot of the current dial; nil when none is held

	modes   []pairMode // set before Connect, read-only after
	modeBuf [1]pairMode

	pinned, builtIn engine.Version                     // Config.Version (zero: not pinned), DefaultVersion
	ver             versionState                       // guarded by mu
	pkReq           atomic.Pointer[PairPasskeyRequest] // the latest passkey request (PasskeyRequest)
}

// runner owns the goroutine that dials, runs and re-dials connections
// between Connect and Disconnect.
//
// ctx is done once the runner stops (Client.stop). Nothing that outlives
// a dial is derived from it: a context keeps the map of its children for
// its life once it had one, so each dial runs under a context of its own
// (attempt), which stop cancels too, and the connection learns of the stop
// from stop itself.
type runner struct {
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	attempt context.CancelFunc // cancels the dial in progress, if any
}

// NewClient returns a client that keeps its session in st. It does no IO:
// the device is loaded (or created) by the first Connect. Config errors are
// reported by Connect.
func NewClient(st store.Store, cfg Config) *Client {
	rc, v, err := cfg.resolved()
	c := &Client{st: st, cfg: rc, cfgErr: err, serverSet: cfg.ServerURL != "" || !cfg.ServerRoot.IsZero(),
		log: rc.Logger, pc: rc.payloadConfig(v), connWait: make(chan struct{})}
	if st == nil && err == nil {
		c.cfgErr = fmt.Errorf("%w: nil store", ErrInvalidConfig)
	}
	c.ev = &dispatcher{}
	if idErr := c.ids.Init(rc.Rand); idErr != nil && c.cfgErr == nil {
		c.cfgErr = fmt.Errorf("walink: %w", idErr)
	}
	c.builtIn, _ = engine.ParseVersion(DefaultVersion)
	if cfg.Version != "" {
		c.pinned = v
	}
	c.modeBuf[0] = passkeyModeDef
	c.modes = c.modeBuf[:1]
	return c
}

// AddEventHandler registers h. Handlers run one event at a time, in order,
// on a goroutine owned by the client; a handler must not call Close (it
// would wait for itself) but may call anything else.
func (c *Client) AddEventHandler(h func(Event)) { c.ev.add(h) }

func (c *Client) emit(e Event) { c.ev.emit(e) }

func (c *Client) now() time.Time { return c.cfg.Now() }

// device returns the current device record (nil if not loaded).
func (c *Client) device() *store.Device {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dev
}

func (c *Client) setDevice(d *store.Device) {
	c.mu.Lock()
	c.dev = d
	c.mu.Unlock()
}

// IsLoggedIn reports whether the client holds a paired session.
func (c *Client) IsLoggedIn() bool { return c.device().Paired() }

// ID returns the device's own JID (phone:device@s.whatsapp.net), or the
// zero JID when not paired.
func (c *Client) ID() jid.JID {
	if d := c.device(); d.Paired() {
		return d.ID
	}
	return jid.JID{}
}

// IsConnected reports whether a connection is logged in and online.
func (c *Client) IsConnected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur != nil && c.cur.connected
}

// ensureDevice loads the device to use, creating and storing a fresh one
// when the store has none (keys, signed pre-key 1, registration id and adv
// secret are made before the first connect).
func (c *Client) ensureDevice(ctx context.Context) (*store.Device, error) {
	if d := c.device(); d != nil {
		return d, nil
	}
	var d *store.Device
	if !c.cfg.Device.IsEmpty() {
		var err error
		if d, err = c.st.DeviceByJID(ctx, c.cfg.Device); err != nil {
			return nil, fmt.Errorf("walink: loading device %s: %w", c.cfg.Device, err)
		}
	} else if c.cfg.NewDevice {
		var err error
		if d, err = c.createDevice(ctx); err != nil {
			return nil, err
		}
		c.mu.Lock()
		c.fresh = d.NoiseKey.Public
		c.mu.Unlock()
	} else {
		var err error
		if d, err = DefaultDevice(ctx, c.st); err != nil {
			return nil, fmt.Errorf("walink: listing devices: %w", err)
		}
		if d == nil {
			if d, err = c.createDevice(ctx); err != nil {
				return nil, err
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dev == nil {
		c.dev = d
	}
	return c.dev, nil
}

// DefaultDevice returns the stored device a Client uses when its Config
// names none (Config.Device zero, NewDevice false): the first linked one,
// else the first paired but unconfirmed one (the client logs in with it to
// learn whether the server linked it), else the first unpaired one, else
// nil (the client then creates one). Tools that show or remove "the"
// session use it to pick the same device the client would.
func DefaultDevice(ctx context.Context, st store.Store) (*store.Device, error) {
	devs, err := st.Devices(ctx)
	if err != nil {
		return nil, err
	}
	var unconfirmed, unpaired *store.Device
	for _, d := range devs {
		switch {
		case d.Linked():
			return d, nil
		case d.Paired():
			if unconfirmed == nil {
				unconfirmed = d
			}
		case unpaired == nil:
			unpaired = d
		}
	}
	if unconfirmed != nil {
		return unconfirmed, nil
	}
	return unpaired, nil
}

// createDevice makes a new device and saves it before its first connect.
func (c *Client) createDevice(ctx context.Context) (*store.Device, error) {
	d, err := newDevice(c.cfg.Rand, c.now())
	if err != nil {
		return nil, err
	}
	if err := c.st.PutDevice(ctx, d); err != nil {
		return nil, fmt.Errorf("walink: saving new device: %w", err)
	}
	c.log.Info("created new device", "noise_pub", d.NoiseKey.Public.String())
	return d, nil
}

func newDevice(rand io.Reader, now time.Time) (*store.Device, error) {
	d := &store.Device{NextPreKeyID: 1, CreatedAt: now}
	var err error
	if d.NoiseKey, err = keys.NewKeyPair(rand); err != nil {
		return nil, fmt.Errorf("walink: new device: %w", err)
	}
	if d.IdentityKey, err = keys.NewKeyPair(rand); err != nil {
		return nil, fmt.Errorf("walink: new device: %w", err)
	}
	if d.SignedPreKey, err = keys.NewSignedPreKey(rand, d.IdentityKey.Private, 1); err != nil {
		return nil, fmt.Errorf("walink: new device: %w", err)
	}
	if d.RegistrationID, err = keys.NewRegistrationID(rand); err != nil {
		return nil, fmt.Errorf("walink: new device: %w", err)
	}
	if _, err = io.ReadFull(rand, d.AdvSecret[:]); err != nil {
		return nil, fmt.Errorf("walink: new device: reading randomness: %w", err)
	}
	return d, nil
}

// clearSession deletes the device from the store and forgets it, so the
// next Connect makes a fresh device and pairs anew.
func (c *Client) clearSession(ctx context.Context, d *store.Device) {
	if d == nil {
		return
	}
	if err := c.st.DeleteDevice(ctx, d.NoiseKey.Public); err != nil {
		c.log.Error("deleting logged-out device", "err", err)
	}
	c.mu.Lock()
	if c.dev == d || (c.dev != nil && c.dev.NoiseKey.Public.Equal(d.NoiseKey.Public)) {
		c.dev = nil
	}
	c.mu.Unlock()
}

// Connect loads or creates the device, dials WhatsApp and runs the
// handshake: the registration payload for a new device (pairing events
// follow), the login payload for a paired one (Connected follows). It
// returns once the first handshake succeeded or failed; ctx bounds only
// that. The connection then lives, reconnecting per Config.Reconnect,
// until Disconnect, Logout, Close or a terminal event.
func (c *Client) Connect(ctx context.Context) error {
	if c.cfgErr != nil {
		return c.cfgErr
	}
	c.mu.Lock()
	switch {
	case c.closed:
		c.mu.Unlock()
		return ErrClosed
	case c.run != nil:
		c.mu.Unlock()
		return ErrAlreadyConnected
	case c.loggingOut:
		c.mu.Unlock()
		return ErrLogoutInProgress
	}
	rctx, cancel := context.WithCancel(context.Background())
	r := &runner{ctx: rctx, cancel: cancel, done: make(chan struct{})}
	c.run = r
	c.lastEnd = nil
	c.mu.Unlock()

	first := make(chan error, 1)
	go c.runLoop(r, ctx, first)
	select {
	case err := <-first:
		if err != nil {
			<-r.done
		}
		return err
	case <-ctx.Done():
		c.stop(r)
		<-r.done
		return ctx.Err()
	}
}

// stop ends r's ctx and tells its live connection, if any, to close: the
// connection learns of it from the runner rather than by a hook of its
// own on the ctx, which would cost every idle connection a registration
// (and the ctx its children map) for its life.
func (c *Client) stop(r *runner) {
	r.cancel()
	r.mu.Lock()
	if r.attempt != nil {
		r.attempt()
	}
	r.mu.Unlock()
	c.mu.Lock()
	cn := c.cur
	c.mu.Unlock()
	if cn != nil && cn.ctx == r.ctx {
		cn.closeFromRunner()
	}
}

// Disconnect closes the connection and stops reconnecting. The session is
// kept; Connect resumes it. Idempotent.
func (c *Client) Disconnect() {
	c.mu.Lock()
	r := c.run
	c.mu.Unlock()
	if r != nil {
		c.stop(r)
		<-r.done
	}
}

// Close disconnects, delivers the events already queued and stops every
// goroutine of the client. It does not close the store. Idempotent; must
// not be called from an event handler.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	fresh := c.fresh
	c.mu.Unlock()
	c.Disconnect()
	var err error
	if !fresh.IsZero() && !c.device().Paired() {
		// A NewDevice record that never paired would pile up in a shared
		// store with every failed attempt.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if derr := c.st.DeleteDevice(ctx, fresh); derr != nil && !errors.Is(derr, store.ErrNotFound) {
			err = fmt.Errorf("walink: deleting the unpaired new device: %w", derr)
		}
		cancel()
	}
	c.ev.close()
	return err
}

// runLoop dials, runs a connection until it ends, and decides whether and
// when to dial again. first receives the first handshake's outcome.
func (c *Client) runLoop(r *runner, firstCtx context.Context, first chan<- error) {
	stopped := &StoppedError{Reason: "closed"} // why it returns; refined below
	defer func() {
		c.releaseGate()
		c.mu.Lock()
		if c.run == r {
			if r.ctx.Err() != nil && stopped.Event == nil && stopped.Err == nil {
				stopped = &StoppedError{Reason: "closed"} // Disconnect or Close
			}
			c.run = nil
			c.lastEnd = stopped
		}
		c.mu.Unlock()
		r.cancel()
		close(r.done)
	}()
	attempt := 0
	recovered := false // a 405 was answered with a fetch since the last connect
	for {
		var cn *conn
		tc, d, err := c.dialAside(r, firstCtx, first != nil)
		if err == nil {
			cn = c.newConn(r.ctx, tc, d)
		}
		if first != nil {
			first <- err
			first = nil
			// The caller's ctx bounded only this dial: do not keep it
			// (its timer, its Done channel) for the client's life.
			firstCtx = nil
			if err != nil {
				stopped = &StoppedError{Reason: "dial", Err: err}
				return
			}
		}
		if err != nil {
			if r.ctx.Err() != nil {
				return
			}
			c.log.Warn("reconnect failed", "attempt", attempt+1, "err", err)
			if !c.sleepBackoff(r.ctx, attempt, false) {
				return
			}
			attempt++
			continue
		}
		end := cn.serve()
		stopped = &StoppedError{Reason: end.String(), Event: cn.endEvent}
		if cn.everConn {
			attempt = 0
			recovered = false
		}
		c.log.Debug("connection ended", "reason", end.String())
		if end != engine.EndRestart && end != engine.EndOutdated {
			c.emit(Disconnected{})
		}
		switch end {
		case engine.EndRestart:
			continue
		case engine.EndOutdated:
			// Decided before Disconnected, so that a ClientOutdated
			// (giving up) precedes it, as the event docs promise.
			var again bool
			var gaveUp Event
			aside(func() { again, gaveUp = c.recoverOutdated(r.ctx, recovered) })
			if gaveUp != nil {
				stopped.Event = gaveUp
			}
			c.emit(Disconnected{})
			if !again {
				return
			}
			recovered = true
		case engine.EndNetwork, engine.EndRateLimited:
			if r.ctx.Err() != nil || c.cfg.Reconnect.Disabled || c.isLoggingOut() {
				return
			}
			if !c.sleepBackoff(r.ctx, attempt, end == engine.EndRateLimited) {
				return
			}
			attempt++
		default: // closed by us, logged out, replaced, outdated, banned, QR expired, fatal
			return
		}
	}
}

func (c *Client) isLoggingOut() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.loggingOut
}

func (c *Client) sleepBackoff(ctx context.Context, attempt int, rateLimited bool) bool {
	if c.cfg.Reconnect.Disabled {
		return false
	}
	p := c.cfg.Reconnect
	d := engine.Backoff{Min: p.MinDelay, Max: p.MaxDelay, Multiplier: p.Multiplier, Jitter: p.Jitter}.Delay(attempt, c.randFloat())
	if rateLimited && d < p.RateLimitDelay {
		d = p.RateLimitDelay
	}
	c.log.Info("reconnecting", "in", d, "attempt", attempt+1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// randFloat returns a uniform number in [0,1) from Config.Rand (0 if it
// fails: jitter is not worth an error).
func (c *Client) randFloat() float64 {
	var b [8]byte
	if _, err := io.ReadFull(c.cfg.Rand, b[:]); err != nil {
		return 0
	}
	return float64(binary.BigEndian.Uint64(b[:])>>11) / (1 << 53)
}

// mergeCtx returns a context done when either parent is done.
func mergeCtx(a, b context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(a)
	stop := context.AfterFunc(b, func() { cancel(context.Cause(b)) })
	return ctx, func() { stop(); cancel(nil) }
}

// dialAside runs dialAttempt on a goroutine of its own and waits for it.
// The runner's goroutine goes on to read the connection for its whole
// life, and a goroutine's stack grown by the dial (net/http, TLS, the
// Noise handshake, the store) would shrink back only partly: dialing on a
// short-lived goroutine leaves the long-lived reader with a small stack.
func (c *Client) dialAside(r *runner, firstCtx context.Context, isFirst bool) (tc *transport.Conn, d *store.Device, err error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r.mu.Lock()
	r.attempt = cancel
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.attempt = nil
		r.mu.Unlock()
	}()
	if r.ctx.Err() != nil { // stopped before attempt was set
		return nil, nil, fmt.Errorf("walink: dial: %w", r.ctx.Err())
	}
	aside(func() { tc, d, err = c.dialAttempt(ctx, firstCtx, isFirst) })
	return tc, d, err
}

// aside runs f on a fresh goroutine and waits for it to return (see
// dialAside). f must return once its own ctx ends.
func aside(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	<-done
}

// dialAttempt dials with ctx (the attempt's, see dialAside); the first
// attempt, made on behalf of Connect, also honours the caller's ctx.
func (c *Client) dialAttempt(ctx, firstCtx context.Context, isFirst bool) (*transport.Conn, *store.Device, error) {
	if !isFirst {
		return c.dial(ctx)
	}
	dctx, stop := mergeCtx(ctx, firstCtx)
	defer stop()
	return c.dial(dctx)
}

// dial opens a connection and runs the handshake with the payload the
// device calls for; it returns the device the handshake was made with.
func (c *Client) dial(ctx context.Context) (*transport.Conn, *store.Device, error) {
	d, err := c.ensureDevice(ctx)
	if err != nil {
		return nil, nil, err
	}
	d = c.applyPrefetched(ctx, d)
	vc := engine.ChooseVersion(c.pinned, c.builtIn, d, c.now())
	c.mu.Lock()
	c.ver.inUse = vc
	c.mu.Unlock()
	pc := c.pc
	pc.Version = vc.Version
	var payload []byte
	if d.Paired() {
		payload, err = engine.LoginPayload(d, pc)
	} else {
		payload, err = engine.RegistrationPayload(d, pc)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("walink: %w", err)
	}
	serverURL, root := c.cfg.ServerURL, c.cfg.ServerRoot
	if !c.serverSet && d.ServerURL != "" {
		serverURL, root = d.ServerURL, d.ServerRoot
	}
	if err := c.acquireGate(ctx); err != nil {
		return nil, nil, err
	}
	hs := c.chooseHandshake(d)
	tc, err := c.handshake(ctx, serverURL, root, d, payload, hs)
	v := engine.ClassifyHandshake(d.ServerChain, modeOf(tc), certOf(tc), err)
	if hs.Mode != noise.ModeIK && v.Result == engine.ResultResumeFailed {
		v = engine.HandshakeVerdict{Result: engine.ResultFailed} // not a resume: nothing to forget
	}
	d = c.afterHandshake(context.WithoutCancel(ctx), d, v, err)
	if v.RetryNow {
		// The resume's failure, not the server's: at once, with XX.
		tc, err = c.handshake(ctx, serverURL, root, d, payload, engine.HandshakeChoice{Mode: noise.ModeXX, Why: "resume failed"})
		v = engine.ClassifyHandshake(d.ServerChain, modeOf(tc), certOf(tc), err)
		d = c.afterHandshake(context.WithoutCancel(ctx), d, v, err)
	}
	if err != nil {
		c.releaseGate()
		return nil, nil, err
	}
	c.log.Debug("handshake done", "paired", d.Paired(), "mode", v.Result.String(), "why", hs.Why, "version", vc.Version.String())
	return tc, d, nil
}

// handshake dials and runs one Noise handshake, resuming to hs.Resume
// when hs says IK.
func (c *Client) handshake(ctx context.Context, serverURL string, root keys.PublicKey, d *store.Device, payload []byte, hs engine.HandshakeChoice) (*transport.Conn, error) {
	hctx, cancel := context.WithTimeout(ctx, c.cfg.HandshakeTimeout)
	defer cancel()
	opts := &transport.DialOptions{Proxy: c.cfg.Proxy}
	if c.cfg.Dial != nil {
		opts.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) { return c.cfg.Dial(ctx) }
	}
	nc, err := transport.Dial(hctx, serverURL, opts)
	if err != nil {
		return nil, fmt.Errorf("walink: dialing %s: %w", serverURL, err)
	}
	cc := transport.ClientConfig{
		NoiseKey: d.NoiseKey,
		RootKey:  root,
		Payload:  payload,
		Rand:     c.cfg.Rand,
		Now:      c.cfg.Now,
	}
	if hs.Mode == noise.ModeIK {
		cc.Resume = hs.Resume
	}
	tc, err := transport.Handshake(hctx, nc, cc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("walink: handshake: %w", err)
	}
	return tc, nil
}

func modeOf(tc *transport.Conn) noise.Mode {
	if tc == nil {
		return noise.ModeXX
	}
	return tc.Mode()
}

func certOf(tc *transport.Conn) *noise.CertInfo {
	if tc == nil {
		return nil
	}
	return tc.ServerCert()
}

// setCur publishes cn as the live connection (nil to clear) and wakes
// callers waiting in waitConn.
func (c *Client) setCur(cn *conn, clear bool) {
	c.mu.Lock()
	if clear {
		if c.cur == cn {
			c.cur = nil
		}
	} else {
		c.cur = cn
	}
	close(c.connWait)
	c.connWait = make(chan struct{})
	c.mu.Unlock()
}

// notifyConnState wakes waitConn callers after a state change of cur.
func (c *Client) notifyConnState() {
	c.mu.Lock()
	close(c.connWait)
	c.connWait = make(chan struct{})
	c.mu.Unlock()
}

// waitConn waits until ok(cur) holds, the client stops connecting, or ctx
// ends. ok runs with c.mu held (it reads cur's published state).
func (c *Client) waitConn(ctx context.Context, ok func(*conn) bool) (*conn, error) {
	for {
		c.mu.Lock()
		cn, r, wait, closed := c.cur, c.run, c.connWait, c.closed
		good := cn != nil && ok(cn)
		c.mu.Unlock()
		if closed {
			return nil, ErrClosed
		}
		if good {
			return cn, nil
		}
		if r == nil {
			return nil, ErrNotConnected
		}
		select {
		case <-wait:
		case <-r.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("walink: waiting for the connection: %w", ctx.Err())
		}
	}
}

// Logout unlinks the device: it tells WhatsApp (remove-companion-device,
// waiting for the answer up to Config.LogoutTimeout), disconnects, deletes
// the session from the store and emits LoggedOut{OnConnect: false,
// Reason: ReasonLoggedOut}. The next Connect pairs a new device.
func (c *Client) Logout(ctx context.Context) error {
	c.mu.Lock()
	d, cn, r := c.dev, c.cur, c.run
	switch {
	case c.closed:
		c.mu.Unlock()
		return ErrClosed
	case !d.Paired():
		c.mu.Unlock()
		return ErrNotLoggedIn
	case c.loggingOut:
		c.mu.Unlock()
		return ErrLogoutInProgress
	case cn == nil || !cn.connected:
		c.mu.Unlock()
		return ErrNotConnected
	}
	c.loggingOut = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.loggingOut = false
		c.mu.Unlock()
	}()
	// The session sends the request and, on its answer, deletes the
	// device and ends the connection; the wait is bounded by its
	// LogoutTimeout as well as by ctx.
	_, err := cn.call(ctx, func(id engine.CallID) engine.Input { return engine.LogoutCall{Call: id} }, nil)
	if err != nil {
		return fmt.Errorf("walink: logout: %w", c.apiErr(err, false))
	}
	if r != nil {
		c.stop(r)
		<-r.done
	}
	c.emit(LoggedOut{OnConnect: false, Reason: ReasonLoggedOut})
	return nil
}

// sessionConfig is what every connection's engine.Session is made with.
func (c *Client) sessionConfig() engine.SessionConfig {
	cfg := c.cfg
	sc := engine.SessionConfig{
		QRFirst: cfg.QRFirstTimeout, QRNext: cfg.QRNextTimeout,
		CodeLifetime: cfg.PairCodeTimeout, CodeFinishWait: cfg.PairCodeFinishTimeout, ConfirmWait: cfg.PairConfirmTimeout,
		KeepaliveMin: cfg.KeepaliveMin, KeepaliveMax: cfg.KeepaliveMax,
		KeepaliveTimeout: cfg.KeepaliveTimeout, KeepaliveGiveUp: cfg.KeepaliveGiveUp,
		IQTimeout: cfg.IQTimeout, LogoutTimeout: cfg.LogoutTimeout, PreKeyCount: cfg.PreKeyCount,
		ClientType: cfg.PlatformType.clientType(), PushName: cfg.PushName,
		Rand: cfg.Rand, IDs: &c.ids,
	}
	// A device paired against a server other than WhatsApp remembers it;
	// one that logs in to a server the Config names learns it anew.
	sc.RememberServer = c.serverSet
	if cfg.ServerURL != transport.DefaultURL {
		sc.ServerURL = cfg.ServerURL
	}
	if !cfg.ServerRoot.IsZero() && !cfg.ServerRoot.Equal(noise.WhatsAppRootKey) {
		sc.ServerRoot = cfg.ServerRoot
	}
	return sc
}

// event maps a session event to the public one.
func (c *Client) event(e engine.Event) Event {
	switch e := e.(type) {
	case engine.PairingQR:
		return PairingQRCode{Code: e.Code, Timeout: e.Timeout}
	case engine.PairingCode:
		c.notePairCode(e.Code, e.Expires)
		return PairingCode{Code: e.Code, Timeout: e.Timeout, Expires: e.Expires}
	case engine.PairingCodeRefresh:
		return PairingCodeRefresh{ForceManual: e.ForceManual}
	case engine.QRCodesExpired:
		return QRCodesExpired{}
	case engine.Paired:
		return PairSuccess{ID: e.ID, LID: e.LID, BusinessName: e.BusinessName, Platform: e.Platform}
	case engine.PairError:
		return PairError{ID: e.ID, LID: e.LID, BusinessName: e.BusinessName, Platform: e.Platform, Err: c.apiErr(e.Err, true)}
	case engine.Connected:
		return Connected{}
	case engine.LoggedOut:
		return LoggedOut{OnConnect: e.OnConnect, Reason: ConnectFailureReason(e.Reason)}
	case engine.Replaced:
		return StreamReplaced{}
	case engine.ClientOutdated:
		// Not reached from a connection (the runner answers the 405);
		// kept so that the mapping stays total.
		return ClientOutdated{Message: fmt.Sprintf("walink: WhatsApp refused client version %s as outdated", c.cfg.Version)}
	case engine.TemporaryBan:
		return TemporaryBan{Code: e.Code, Expire: e.Expire}
	case engine.ConnectFailure:
		return ConnectFailure{Reason: ConnectFailureReason(e.Reason), Message: e.Message}
	}
	if me, ok := e.(engine.ModeEvent); ok {
		for _, m := range c.modes {
			if m.name == me.Mode && m.event != nil {
				return m.event(c, me.Value)
			}
		}
	}
	panic(fmt.Sprintf("walink: unmapped session event %T", e))
}

// pairMode is a pairing mode the client plugs into every connection's
// session (engine.PairingMode): new makes its per-connection state, event
// maps its ModeEvents to public events. A mode's API method steps the
// session with callMode.
type pairMode struct {
	name  string
	new   func(c *Client, ctx context.Context) engine.PairingMode // ctx: done when the connection ends
	event func(c *Client, v any) Event
}

// callMode sends a call to the pairing mode named mode on the live
// connection once it is ready for pairing and waits for the mode's
// Reply; value builds the mode's input from the call's id.
func (c *Client) callMode(ctx context.Context, mode string, value func(engine.CallID) any) (string, error) {
	cn, err := c.waitConn(ctx, func(cn *conn) bool { return cn.ready || cn.paired })
	if err != nil {
		return "", err
	}
	return cn.call(ctx, func(id engine.CallID) engine.Input {
		return engine.PairingModeInput{Mode: mode, Value: value(id)}
	}, nil)
}

// apiErr maps a session error to the client's error vocabulary; pairCode
// says an IQ error refused a pair-code stage.
func (c *Client) apiErr(err error, pairCode bool) error {
	var ie *engine.IQErrorInfo
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errConnClosed):
		return err // the driver's own, already prefixed
	case errors.Is(err, engine.ErrAlreadyPaired):
		return ErrAlreadyPaired
	case errors.Is(err, engine.ErrCodeOutstanding):
		return ErrCodeAlreadyOutstanding
	case errors.Is(err, engine.ErrModeHolding):
		return fmt.Errorf("walink: a passkey step holds the pairing: %w", ErrPasskeyInProgress)
	case errors.Is(err, engine.ErrMissingPairingRef):
		return ErrMissingPairingRef
	case errors.Is(err, engine.ErrNotConnected):
		return ErrNotConnected
	case errors.Is(err, engine.ErrLogoutInProgress):
		return ErrLogoutInProgress
	case errors.Is(err, engine.ErrCodeCancelled):
		return fmt.Errorf("walink: pair code cancelled: %w", context.Canceled)
	case errors.Is(err, engine.ErrTimeout):
		return fmt.Errorf("walink: no reply from the server in time: %w", context.DeadlineExceeded)
	case errors.As(err, &ie) && pairCode:
		return &PairCodeRejectedError{Code: ie.Code, Text: ie.Text, Throttled: ie.Code == 400 || ie.Code == 429, Backoff: ie.Backoff}
	case errors.As(err, &ie):
		return &IQError{Code: ie.Code, Text: ie.Text}
	}
	return fmt.Errorf("walink: %w", err)
}
