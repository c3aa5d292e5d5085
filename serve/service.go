package serve

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/walinkdev/walink"
	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/store"
	"github.com/walinkdev/walink/store/postgres"
)

// Config configures a Service. Zero values mean the documented defaults.
type Config struct {
	// Store is the library's store, shared by every session (required).
	Store store.Store
	// DB holds the service's own tables (required): OpenSQLite on the
	// store's file, or OpenPostgres on the store's database.
	DB *DB
	// Client is the template of every session's walink.Config (server,
	// timeouts, reconnect policy). Device, NewDevice and Logger are set
	// per session.
	Client walink.Config
	// APIKeys are the accepted API keys as hashes (see HashAPIKey and
	// ParseAPIKeys). Empty refuses every authenticated request.
	APIKeys []KeyHash
	// Webhook, when URL is set, receives the events of every session
	// (besides each session's own webhook). Its Secret signs them.
	Webhook WebhookConfig
	// StartConcurrency bounds the logins the service starts at once (on
	// start-up and for API starts): each start holds a slot until its
	// login's outcome (walink.Client.WaitReady). Unless Client.DialGate is
	// set, it is also the limit of walink.LimitDials given to every
	// session's client, so the reconnects the library makes by itself
	// (after an outage, a 515 restart) are bounded across all sessions
	// too. Default 8.
	StartConcurrency int
	// StartJitter: each reconnect on start-up first waits a random time in
	// [0, StartJitter), so that a restart does not knock on WhatsApp with
	// every session in the same instant. Default 200ms.
	StartJitter time.Duration
	// EventHistory is how many events per session are kept for SSE
	// resume (Last-Event-ID). Default 256.
	EventHistory int
	// Owner decides whether this process may hold a session's connection.
	// Default: this process owns every session (one replica).
	Owner Owner
	// Passkey carries out the passkey step; nil answers its routes with a
	// 501 problem.
	Passkey Passkey
	// Cluster, when set, makes this service one replica among several on
	// one PostgreSQL database (see Cluster); Owner is then the lease
	// manager. Default: a single replica.
	Cluster *Cluster
	// Sim, set by `walink serve --sim`, plays the virtual phone for the
	// page's demo panel; nil disables the /sim routes (404).
	Sim Sim
	// MetricsOnOwnListener leaves /metrics off Handler (serve
	// MetricsHandler elsewhere).
	MetricsOnOwnListener bool
	// Webhook delivery: per-attempt timeout (default 10s), first and
	// largest retry delay (defaults 1s and 5m, doubled per attempt, full
	// jitter) and how long an event is retried before it is dropped
	// (default 24h).
	WebhookTimeout, WebhookMinBackoff, WebhookMaxBackoff, WebhookMaxAge time.Duration
	// HTTPClient posts webhooks; default a client with WebhookTimeout.
	HTTPClient *http.Client
	// Logger receives service logs (never keys or secrets). Default: none.
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Owner hands out the right to hold a session's connection. The default
// grants everything at once; a lease manager (several replicas on one
// database) implements it with leases.
type Owner interface {
	// Acquire blocks until this process may connect session id, or ctx
	// ends.
	Acquire(ctx context.Context, id string) (Lease, error)
}

// Lease is the right to hold one session's connection.
type Lease interface {
	// Lost is closed when the right ends without Release (lease expired
	// or taken over); the service then stops the connection at once. A
	// lease that cannot be lost returns nil (no goroutine watches it).
	Lost() <-chan struct{}
	// Release gives the right back (the connection is already closed).
	Release()
}

type localOwner struct{}
type localLease struct{}

func (localOwner) Acquire(context.Context, string) (Lease, error) { return localLease{}, nil }
func (localLease) Lost() <-chan struct{}                          { return nil }
func (localLease) Release()                                       {}

// Passkey carries out the passkey step of linking (the phone asks the
// companion to prove the account's passkey). The service calls it for the
// /passkey routes; Classify lets the passkey events of the client set the
// passkey statuses.
type Passkey interface {
	// Options returns the WebAuthn request options (JSON) to hand to the
	// browser's navigator.credentials.get.
	Options(ctx context.Context, cli *walink.Client) (json.RawMessage, error)
	// Respond passes the browser's assertion (JSON) on to WhatsApp.
	Respond(ctx context.Context, cli *walink.Client, assertion json.RawMessage) error
	// Confirm confirms the link once the passkey was accepted.
	Confirm(ctx context.Context, cli *walink.Client) error
	// Classify maps a passkey event of the client to an event name, its
	// fields and the status it sets; ok=false for other events.
	Classify(ev walink.Event) (name string, data map[string]any, st Status, ok bool)
}

// Sim plays the virtual phone of the demo.
type Sim interface {
	ScanQR(ctx context.Context, phone, qr string) error
	EnterCode(ctx context.Context, phone, code string) error
}

// Service runs many sessions (one linked account each) in one process and
// serves the API, the page, SSE, webhooks and metrics.
type Service struct {
	cfg   Config
	log   *slog.Logger
	db    *DB
	met   *metrics
	hub   *hub
	tail  *eventTail // with a cluster: the SSE streams' shared reads
	auth  *auth
	start chan struct{} // semaphore: handshakes started by the service

	mu       sync.Mutex
	sessions map[string]*session
	closed   bool

	writeMu sync.Mutex // one state write at a time: seq order is publish order

	logoutWait time.Duration          // how long DELETE tries to log out (20s; tests shorten it)
	commitHook atomic.Pointer[func()] // tests: runs in writeTx before the commit

	ctx    context.Context // lives until Shutdown
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the service starts
	ready  atomic.Bool
	outbox *outbox

	cl         *cluster // nil: a single replica
	cmet       *clusterMetrics
	listenerUp atomic.Bool
	acqCtx     context.Context // ends when Shutdown starts: no lease is taken after
	acqCancel  context.CancelFunc
}

// session is one account slot. Fields under mu; gen counts clients so
// events of a replaced client are ignored.
type session struct {
	id string

	mu        sync.Mutex
	rec       record
	cli       *walink.Client
	gen       uint64
	lease     Lease
	qr        string
	qrExp     time.Time
	code      string
	codeExp   time.Time
	passkey   *PasskeyView // shown while the status is passkey_confirm
	linkStart time.Time
	method    string // how the current link attempt goes: "qr" or "code"
	connected bool   // has been connected with this client (reconnect metric)
	// acquiring, set while this replica waits for the session's lease
	// (Config.Cluster), cancels the wait.
	acquiring context.CancelFunc
}

func (s *Service) now() time.Time { return s.cfg.Now() }

// New loads the sessions from cfg.DB; Start connects them.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.DB == nil {
		return nil, errors.New("serve: Config.Store and Config.DB are required")
	}
	if cfg.StartConcurrency <= 0 {
		cfg.StartConcurrency = 8
	}
	if cfg.StartJitter <= 0 {
		cfg.StartJitter = 200 * time.Millisecond
	}
	if cfg.EventHistory <= 0 {
		cfg.EventHistory = 256
	}
	if cfg.Client.DialGate == nil {
		cfg.Client.DialGate = walink.LimitDials(cfg.StartConcurrency)
	}
	if cfg.Owner == nil {
		cfg.Owner = localOwner{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	setDur := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	setDur(&cfg.WebhookTimeout, 10*time.Second)
	setDur(&cfg.WebhookMinBackoff, time.Second)
	setDur(&cfg.WebhookMaxBackoff, 5*time.Minute)
	setDur(&cfg.WebhookMaxAge, 24*time.Hour)
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: cfg.WebhookTimeout}
	}
	sctx, cancel := context.WithCancel(context.Background())
	s := &Service{cfg: cfg, log: cfg.Logger, db: cfg.DB, hub: newHub(), start: make(chan struct{}, cfg.StartConcurrency),
		sessions: map[string]*session{}, ctx: sctx, cancel: cancel, logoutWait: 20 * time.Second}
	s.met = newMetrics(s)
	s.cmet = newClusterMetrics(s.met.reg, cfg.Owner)
	a, err := newAuth(cfg.APIKeys)
	if err != nil {
		cancel()
		return nil, err
	}
	s.auth = a
	s.acqCtx, s.acqCancel = context.WithCancel(sctx)
	if cfg.Cluster != nil {
		if s.cl, err = newCluster(ctx, s, *cfg.Cluster); err != nil {
			cancel()
			return nil, err
		}
		s.tail = newEventTail(s.db)
	}
	recs, err := s.db.loadSessions(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	for _, r := range recs {
		s.sessions[r.ID] = &session{id: r.ID, rec: *r}
	}
	s.outbox = newOutbox(s)
	return s, nil
}

// Start reconnects every session that was running and linked when the
// service last stopped (bounded by StartConcurrency, jittered), starts the
// webhook sender, and marks the service ready. It returns at once.
func (s *Service) Start() {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.outbox.run(s.ctx)
	}()
	if s.cl != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.listen(s.ctx)
		}()
	}
	var resume []*session
	s.mu.Lock()
	for _, ss := range s.sessions {
		resume = append(resume, ss)
	}
	s.mu.Unlock()
	sort.Slice(resume, func(i, j int) bool { return resume[i].rec.Created.Before(resume[j].rec.Created) })
	for _, ss := range resume {
		ss.mu.Lock()
		want := ss.rec.WantRunning
		ss.mu.Unlock()
		if want {
			// A linked session logs in again. A link in progress cannot be
			// resumed (its QR or code died with the connection), so it
			// starts over: a new device, status starting then scan_qr
			// with a fresh QR, as if the user had pressed start; a pair
			// code must be asked for again. Unwatched, it ends as failed
			// (qr_codes_expired) when its QR codes run out.
			s.startSession(ss, true)
		}
	}
	s.ready.Store(true)
}

// Ready reports whether the sessions are loaded and the store answers.
func (s *Service) Ready(ctx context.Context) error {
	if !s.ready.Load() {
		return errors.New("serve: starting")
	}
	if err := s.db.Ping(ctx); err != nil {
		return fmt.Errorf("serve: database: %w", err)
	}
	if h, ok := s.cfg.Owner.(interface{ Healthy() error }); ok {
		if err := h.Healthy(); err != nil {
			return fmt.Errorf("serve: leases: %w", err)
		}
	}
	if s.cl != nil && !s.listenerUp.Load() {
		return errors.New("serve: event listener not connected")
	}
	return nil
}

// Shutdown ends every SSE stream, closes every connection (without
// logging out), then delivers what the outbox holds until ctx ends. The
// HTTP server should stop accepting first (http.Server.Shutdown after the
// streams ended: call CloseStreams, then the server's Shutdown, then this).
func (s *Service) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	// No lease is taken from now on: the sessions released below go to
	// the other replicas.
	s.acqCancel()
	all := make([]*session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		all = append(all, ss)
	}
	s.mu.Unlock()
	s.ready.Store(false)
	s.hub.close()
	if d, ok := s.cfg.Owner.(interface{ Drain(context.Context) error }); ok {
		// Hand the sessions over: Lost closes on every lease, the
		// watchers close the connections and release, and the other
		// replicas take them at their next poll. What is left when ctx
		// ends is closed below all the same.
		if err := d.Drain(ctx); err != nil {
			s.log.Warn("serve: draining leases", "err", err)
		}
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for _, ss := range all {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			s.detach(ss)
		}()
	}
	wg.Wait()
	// Flush: the sender keeps running until the outbox is empty or ctx ends.
	err := s.outbox.flush(ctx)
	s.cancel()
	s.wg.Wait()
	return err
}

// CloseStreams ends every SSE stream (an http.Server's Shutdown waits for
// them otherwise).
func (s *Service) CloseStreams() { s.hub.close() }

// detach closes ss's client without changing what the session wants: used
// on shutdown so that the next start reconnects it.
func (s *Service) detach(ss *session) {
	ss.mu.Lock()
	cli, lease := ss.cli, ss.lease
	ss.cli, ss.lease = nil, nil
	ss.gen++
	if ss.acquiring != nil {
		ss.acquiring()
		ss.acquiring = nil
	}
	ss.mu.Unlock()
	if cli != nil {
		cli.Close()
	}
	if lease != nil {
		lease.Release()
	}
}

// newID returns a session id: "s_" and 16 hex digits.
func newID() string {
	var b [8]byte
	rand.Read(b[:])
	return "s_" + hex.EncodeToString(b[:])
}

func newSecret() string {
	var b [24]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// setStatus moves r to st (recording the transition) and returns the
// "status" event, or nothing when st and reason are unchanged.
func (s *Service) setStatus(r *record, st Status, reason string) []StoredEvent {
	if r.Status == st && r.Reason == reason {
		return nil
	}
	now := s.now()
	r.Status, r.Reason = st, reason
	r.Transitions = append(r.Transitions, Transition{Status: st, Reason: reason, At: now.UTC()})
	if len(r.Transitions) > maxTransitions {
		r.Transitions = r.Transitions[len(r.Transitions)-maxTransitions:]
	}
	data := map[string]any{"status": string(st)}
	if reason != "" {
		data["reason"] = reason
	}
	return []StoredEvent{{Name: "status", Data: data}}
}

// apply changes ss's record with fn and writes the new row, the events fn
// returns and their webhook outbox rows in one transaction, then
// publishes the events. gen, when not 0, must still be ss's client
// generation (events of a closed client are dropped). On a write error
// nothing changes.
func (s *Service) apply(ss *session, gen uint64, fn func(r *record) []StoredEvent) error {
	return s.applyFenced(ss, gen, nil, fn)
}

// applyFenced is apply checking fence (nil: the fence of ss's lease, if
// any) in the transaction.
func (s *Service) applyFenced(ss *session, gen uint64, fence *postgres.Fence, fn func(r *record) []StoredEvent) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	ss.mu.Lock()
	if gen != 0 && ss.gen != gen {
		ss.mu.Unlock()
		return nil
	}
	r := ss.rec
	r.Transitions = append([]Transition(nil), ss.rec.Transitions...)
	evs := fn(&r)
	r.Updated = s.now()
	if fence == nil {
		fence = leaseFence(ss.lease)
	}
	err := s.writeTx(func(ctx context.Context, tx *sql.Tx) error {
		// Under a fenced lease the record, its events and their outbox
		// rows are written only while the lease is still ours.
		if err := s.db.checkFence(ctx, tx, fence, "session"); err != nil {
			return err
		}
		if err := s.db.updateSession(ctx, tx, &r); err != nil {
			return err
		}
		return s.insertEvents(ctx, tx, &r, evs)
	})
	if err == nil {
		ss.rec = r
	}
	ss.mu.Unlock()
	if err != nil {
		if errors.Is(err, store.ErrFenced) {
			s.log.Warn("serve: session write refused: lease lost", "session", ss.id, "err", err)
		} else {
			s.log.Error("serve: writing session state", "session", ss.id, "err", err)
		}
		return err
	}
	s.published(evs)
	return nil
}

// writeTx runs fn in a transaction, timing it for the store metric.
func (s *Service) writeTx(fn func(ctx context.Context, tx *sql.Tx) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t0 := time.Now()
	defer func() { s.met.storeLatency.WithLabelValues("write").Observe(time.Since(t0).Seconds()) }()
	tx, err := s.db.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(ctx, tx); err != nil {
		return err
	}
	if h := s.commitHook.Load(); h != nil {
		(*h)()
	}
	return tx.Commit()
}

// insertEvents stores evs (filling Seq, Session, At), their outbox rows
// for the session's and the global webhook, and prunes the history.
func (s *Service) insertEvents(ctx context.Context, tx *sql.Tx, r *record, evs []StoredEvent) error {
	if len(evs) > 0 && s.cl != nil {
		// Replicas take event ids and commit them in one order: the lock
		// is taken before the first id and held until the commit, so no
		// id commits below one a reader has seen (an SSE stream resuming
		// with Last-Event-ID misses nothing). One process needs no lock:
		// writeMu orders its writes, and SQLite has one writer anyway.
		// It is the transaction's last lock, which keeps it free of
		// deadlocks: what follows only inserts rows and deletes event
		// rows, which other transactions also touch only under it.
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, s.cl.eventLock); err != nil {
			return fmt.Errorf("serve: event order lock: %w", err)
		}
	}
	now := s.now()
	for i := range evs {
		e := &evs[i]
		e.Session, e.At = r.ID, now.UTC()
		if e.Data == nil {
			e.Data = map[string]any{}
		}
		if err := s.db.insertEvent(ctx, tx, e); err != nil {
			return err
		}
		for _, wh := range []WebhookConfig{r.Webhook, s.cfg.Webhook} {
			if wh.URL == "" || !wantsEvent(wh.Events, e.Name) {
				continue
			}
			if err := s.db.insertOutbox(ctx, tx, e.Seq, wh.URL, wh.Secret, jsonText(e.payload()), now); err != nil {
				return err
			}
		}
	}
	if len(evs) > 0 {
		if err := s.notifyTx(ctx, tx, evs); err != nil {
			return err
		}
		return s.db.pruneEvents(ctx, tx, r.ID, s.cfg.EventHistory)
	}
	return nil
}

func (s *Service) published(evs []StoredEvent) {
	for _, e := range evs {
		s.hub.publish(e)
	}
	if len(evs) > 0 {
		s.outbox.kick()
	}
}

func wantsEvent(filter []string, name string) bool {
	if len(filter) == 0 {
		return true
	}
	for _, f := range filter {
		if f == name || f == "*" {
			return true
		}
	}
	return false
}

// EventNames are the events the service reports (SSE and webhooks): the
// names of `walink link --json`, plus status and the session's lifecycle.
var EventNames = []string{"status", "session_created", "session_deleted",
	"pairing_qr_code", "pairing_code", "pairing_code_refresh", "qr_codes_expired",
	"pair_success", "pair_error", "connected", "disconnected", "logged_out",
	"stream_replaced", "client_outdated", "temporary_ban", "connect_failure",
	"qr_scanned_without_multidevice", "passkey_required", "passkey_confirm", "pair_passkey_error"}

func secs(d time.Duration) int { return int(d.Round(time.Second) / time.Second) }

// onEvent turns a client event into the session's new status and the
// events to report. It runs on the client's event goroutine, in order.
func (s *Service) onEvent(ss *session, gen uint64, cli *walink.Client, ev walink.Event) {
	var closeCli bool
	s.apply(ss, gen, func(r *record) []StoredEvent {
		now := s.now()
		one := func(name string, data map[string]any) []StoredEvent {
			return []StoredEvent{{Name: name, Data: data}}
		}
		switch ev := ev.(type) {
		case walink.PairingQRCode:
			if ss.qr == "" && ss.method == "" {
				ss.method = "qr"
				s.met.pairStarted.WithLabelValues("qr").Inc()
			}
			ss.qr, ss.qrExp = ev.Code, now.Add(ev.Timeout)
			return append(one("pairing_qr_code", map[string]any{"code": ev.Code, "timeout_s": secs(ev.Timeout)}),
				s.setStatus(r, StatusScanQR, "")...)
		case walink.PairingCode:
			ss.qr = ""
			ss.code, ss.codeExp = ev.Code, ev.Expires
			return append(one("pairing_code", map[string]any{"code": ev.Code, "timeout_s": secs(ev.Timeout)}),
				s.setStatus(r, StatusPairCode, "")...)
		case walink.PairingCodeRefresh:
			return one("pairing_code_refresh", map[string]any{"force_manual": ev.ForceManual})
		case walink.QRCodesExpired:
			ss.qr = ""
			s.met.pairFailed.WithLabelValues(orQR(ss.method), "qr_codes_expired").Inc()
			return append(one("qr_codes_expired", map[string]any{}), s.setStatus(r, StatusFailed, "qr_codes_expired")...)
		case walink.PairSuccess:
			ss.qr, ss.code = "", ""
			r.Device, r.Platform = ev.ID.String(), ev.Platform
			s.met.pairLinked.WithLabelValues(orQR(ss.method)).Inc()
			if !ss.linkStart.IsZero() {
				s.met.linkDuration.Observe(now.Sub(ss.linkStart).Seconds())
			}
			return append(one("pair_success", map[string]any{"id": ev.ID.String(), "lid": ev.LID.String(), "business_name": ev.BusinessName, "platform": ev.Platform}),
				s.setStatus(r, StatusStarting, "paired")...)
		case walink.PairError:
			ss.qr, ss.code = "", ""
			msg := errText(ev.Err)
			s.met.pairFailed.WithLabelValues(orQR(ss.method), "pair_error").Inc()
			return append(one("pair_error", map[string]any{"id": ev.ID.String(), "lid": ev.LID.String(), "business_name": ev.BusinessName, "platform": ev.Platform, "error": msg}),
				s.setStatus(r, StatusFailed, "pair_error: "+msg)...)
		case walink.Connected:
			if ss.connected && r.Status != StatusConnected {
				s.met.reconnects.Inc()
			}
			ss.connected = true
			if info, ok := cli.Device(); ok {
				r.Device = info.ID.String()
				if info.Platform != "" {
					r.Platform = info.Platform
				}
			}
			return append(one("connected", map[string]any{}), s.setStatus(r, StatusConnected, "")...)
		case walink.Disconnected:
			if r.Status == StatusFailed {
				// The event that failed the session (client outdated, ban,
				// QR codes expired, ...) comes before the client's last
				// Disconnected, after which it does not reconnect: keep
				// the failure, which says why.
				return one("disconnected", map[string]any{})
			}
			return append(one("disconnected", map[string]any{}), s.setStatus(r, StatusDisconnected, "connection lost; reconnecting")...)
		case walink.LoggedOut:
			r.Device, r.Platform, r.WantRunning = "", "", false
			ss.qr, ss.code = "", ""
			closeCli = true
			return append(one("logged_out", map[string]any{"on_connect": ev.OnConnect, "reason": fmt.Sprint(ev.Reason)}),
				s.setStatus(r, StatusLoggedOut, fmt.Sprint(ev.Reason))...)
		case walink.StreamReplaced:
			return append(one("stream_replaced", map[string]any{}), s.setStatus(r, StatusDisconnected, "replaced by another connection of this device")...)
		case walink.ClientOutdated:
			return append(one("client_outdated", map[string]any{"message": ev.Message}), s.setStatus(r, StatusFailed, "client_outdated")...)
		case walink.TemporaryBan:
			return append(one("temporary_ban", map[string]any{"code": ev.Code, "expire_s": secs(ev.Expire)}), s.setStatus(r, StatusFailed, "temporary_ban")...)
		case walink.ConnectFailure:
			return append(one("connect_failure", map[string]any{"reason": fmt.Sprint(ev.Reason), "message": ev.Message}),
				s.setStatus(r, StatusFailed, "connect_failure: "+fmt.Sprint(ev.Reason))...)
		case walink.QRScannedWithoutMultidevice:
			return one("qr_scanned_without_multidevice", map[string]any{})
		}
		if s.cfg.Passkey != nil {
			if name, data, st, ok := s.cfg.Passkey.Classify(ev); ok {
				ss.passkey = notePasskey(ss.passkey, ev)
				return append(one(name, data), s.setStatus(r, st, "")...)
			}
		}
		return nil
	})
	if closeCli {
		// Logged out: this client is done. Close must not run on the
		// event goroutine (it waits for it), so it runs on its own.
		ss.mu.Lock()
		if ss.gen == gen && ss.cli == cli {
			ss.cli = nil
			ss.gen++
		}
		lease := ss.lease
		ss.lease = nil
		ss.mu.Unlock()
		s.goClose(cli, lease)
	}
}

func orQR(m string) string {
	if m == "" {
		return "qr"
	}
	return m
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// goClose closes cli (and releases lease) on a goroutine of the service.
func (s *Service) goClose(cli *walink.Client, lease Lease) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if cli != nil {
			cli.Close()
		}
		if lease != nil {
			lease.Release()
		}
	}()
}

// startSession gives ss a new client and connects it in the background.
// resume marks a reconnect on start-up (jittered). It does nothing when a
// client already runs.
func (s *Service) startSession(ss *session, resume bool) error {
	if s.cl != nil {
		return s.startClustered(ss, resume)
	}
	ss.mu.Lock()
	if ss.cli != nil {
		ss.mu.Unlock()
		return nil
	}
	ss.gen++
	gen := ss.gen
	cli, lst, err := s.newClientLocked(ss, gen)
	if err != nil {
		ss.mu.Unlock()
		return err
	}
	ss.cli = cli
	ss.mu.Unlock()
	if err := s.apply(ss, gen, func(r *record) []StoredEvent {
		r.WantRunning = true
		return s.setStatus(r, StatusStarting, "")
	}); err != nil {
		s.stopSession(ss, false, "")
		return err
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.connect(ss, gen, cli, lst, resume)
	}()
	return nil
}

// newClientLocked makes ss's client for generation gen (ss.mu held).
func (s *Service) newClientLocked(ss *session, gen uint64) (*walink.Client, *leaseStore, error) {
	cfg := s.cfg.Client
	cfg.Logger = s.log.With("session", ss.id)
	cfg.NewDevice, cfg.Device = false, jid.JID{}
	if ss.rec.Device != "" {
		d, err := jid.Parse(ss.rec.Device)
		if err != nil {
			return nil, nil, fmt.Errorf("serve: session %s: stored device: %w", ss.id, err)
		}
		cfg.Device = d
	} else {
		cfg.NewDevice = true
		ss.linkStart = s.now()
	}
	ss.method, ss.qr, ss.code, ss.connected = "", "", "", false
	// The client writes through a view bound to its lease once acquired
	// (fenced under serve/lease).
	lst := newLeaseStore(s.cfg.Store)
	cli := walink.NewClient(lst, lst.gated(cfg))
	cli.AddEventHandler(func(ev walink.Event) { s.onEvent(ss, gen, cli, ev) })
	return cli, lst, nil
}

// connect runs the first handshake of cli, holding a start slot; it
// retries a failed first connect of a linked device with jittered
// backoff (a restart with WhatsApp unreachable must not strand sessions).
func (s *Service) connect(ss *session, gen uint64, cli *walink.Client, lst *leaseStore, resume bool) {
	lease, err := s.cfg.Owner.Acquire(s.ctx, ss.id)
	if err != nil {
		return // shutting down
	}
	ss.mu.Lock()
	if ss.gen != gen {
		ss.mu.Unlock()
		lease.Release()
		return
	}
	if err := lst.bind(lease); err != nil {
		ss.mu.Unlock()
		lease.Release()
		s.log.Error("serve: session lease", "session", ss.id, "err", err)
		return
	}
	ss.lease = lease
	ss.mu.Unlock()
	s.watchLease(ss, gen, lease)
	s.dial(ss, gen, cli, resume)
}

// watchLease stops generation gen of ss when its lease is lost.
func (s *Service) watchLease(ss *session, gen uint64, lease Lease) {
	if lost := lease.Lost(); lost != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			select {
			case <-lost:
				s.detachGen(ss, gen)
			case <-s.ctx.Done():
			}
		}()
	}
}

// dial runs the first handshake of cli (the lease is held).
func (s *Service) dial(ss *session, gen uint64, cli *walink.Client, resume bool) {
	current := func() bool {
		ss.mu.Lock()
		defer ss.mu.Unlock()
		return ss.gen == gen
	}
	var err error
	backoff := time.Second
	for attempt := 0; ; attempt++ {
		if resume || attempt > 0 {
			wait := time.Duration(mrand.Int64N(int64(s.cfg.StartJitter)))
			if attempt > 0 {
				wait += backoff/2 + time.Duration(mrand.Int64N(int64(backoff)))
				backoff = min(backoff*2, 2*time.Minute)
			}
			select {
			case <-time.After(wait):
			case <-s.ctx.Done():
				return
			}
		}
		select {
		case s.start <- struct{}{}:
		case <-s.ctx.Done():
			return
		}
		if !current() {
			<-s.start
			return
		}
		t0 := time.Now()
		err = cli.Connect(s.ctx)
		if err == nil {
			// Hold the slot until the login is answered: connected, QR
			// codes shown, or refused (the events report which). The
			// bound only guards against a login that never settles,
			// e.g. a client reconnecting through a long outage.
			wctx, cancel := context.WithTimeout(s.ctx, loginWaitMax)
			if werr := cli.WaitReady(wctx); werr != nil && wctx.Err() == nil {
				s.log.Debug("login ended", "session", ss.id, "err", werr)
			}
			cancel()
		}
		<-s.start
		if err == nil {
			s.met.handshake.Observe(time.Since(t0).Seconds())
			return
		}
		if !current() || errors.Is(err, walink.ErrClosed) || s.ctx.Err() != nil {
			return
		}
		ss.mu.Lock()
		linked := ss.rec.Device != ""
		ss.mu.Unlock()
		s.apply(ss, gen, func(r *record) []StoredEvent {
			return s.setStatus(r, StatusFailed, "connect: "+err.Error())
		})
		if !linked || errors.Is(err, walink.ErrInvalidConfig) || errors.Is(err, store.ErrNotFound) {
			return // a new link is started again by the user, not in a loop
		}
	}
}

// loginWaitMax bounds how long a start slot waits for the login's
// outcome after the handshake; WaitReady normally answers within one
// round trip.
const loginWaitMax = 2 * time.Minute

// detachGen stops ss's connection if it still runs client gen (the lease
// was lost): the session keeps wanting to run, for its next owner.
func (s *Service) detachGen(ss *session, gen uint64) {
	ss.mu.Lock()
	if ss.gen != gen {
		ss.mu.Unlock()
		return
	}
	cli, lease := ss.cli, ss.lease
	ss.cli, ss.lease = nil, nil
	ss.gen++
	ss.mu.Unlock()
	if cli != nil {
		cli.Close()
	}
	s.log.Info("serve: lease lost; connection closed", "session", ss.id)
	// The status is written under the lost lease's fence before it is
	// released: a lease given up (balance, drain) still holds, so the
	// write lands before the next owner's; one taken over refuses it, and
	// the next owner's record stands.
	f := leaseFence(lease)
	err := s.applyFenced(ss, 0, f, func(r *record) []StoredEvent { return s.setStatus(r, StatusDisconnected, "ownership lost") })
	if err != nil && f == nil {
		s.log.Error("serve: writing session state", "session", ss.id, "err", err)
	}
	if lease != nil {
		lease.Release()
	}
	if s.cl != nil {
		// Another replica holds the session now (or will). Wait for the
		// lease again, to take over if that replica goes.
		s.cmet.leaseStops.Inc()
		s.startSession(ss, true)
	}
}

// stopSession closes ss's client (no logout). want records whether the
// session should run after a restart; reason, when set, is the status
// reason of the resulting disconnected state.
func (s *Service) stopSession(ss *session, want bool, reason string) error {
	if s.cl != nil && !want {
		// Replicas: others learn the session is stopped before its
		// lease is free (see letGo).
		s.letGo(ss)
	} else {
		s.detach(ss)
	}
	return s.apply(ss, 0, func(r *record) []StoredEvent {
		r.WantRunning = want
		ss.qr, ss.code = "", ""
		if reason == "" {
			return nil
		}
		if r.Status == StatusLoggedOut || (r.Status == StatusFailed && r.Device == "") {
			return nil // keep why it ended
		}
		return s.setStatus(r, StatusDisconnected, reason)
	})
}

func (s *Service) get(id string) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[id]
}
