package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/walinkdev/walink/serve"
	"github.com/walinkdev/walink/store/postgres"
)

// Errors of the package.
var (
	// ErrConfig reports an invalid Config (timing that breaks the safety
	// argument, a missing replica id or database).
	ErrConfig = errors.New("lease: invalid config")
	// ErrClosed is returned by Acquire once the Manager is closed.
	ErrClosed = errors.New("lease: manager closed")
	// ErrDraining is returned by Acquire on a draining Manager when its
	// context ends (a draining replica acquires nothing).
	ErrDraining = errors.New("lease: manager draining")
	// ErrLost is returned by Lease.Check once the lease no longer holds.
	ErrLost = errors.New("lease: lost")
	// ErrSchemaTooNew: the lease tables were written by a newer walink.
	ErrSchemaTooNew = errors.New("lease: lease tables are from a newer walink")
)

// Config configures a Manager. Zero values mean the documented defaults.
type Config struct {
	// Pool is the database (the one holding the store and the service's
	// tables). The Manager does not close it. Either Pool or DSN is
	// required.
	Pool *pgxpool.Pool
	// DSN opens a pool of the Manager's own (closed by Close) when Pool is
	// nil.
	DSN string
	// ReplicaID names this replica (required; unique among the replicas
	// running at once). It is the owner written in lease rows.
	ReplicaID string
	// AdvertiseURL is where other replicas reach this one (forwarding);
	// Owner and Replicas report it.
	AdvertiseURL string
	// TTL is how long a lease lives without renewal, by the database's
	// clock. Default 15s.
	TTL time.Duration
	// Renew is the heartbeat period renewing every held lease (one
	// statement). Default TTL/3.
	Renew time.Duration
	// StopMargin: a replica whose last successful renewal was sent more
	// than TTL-StopMargin ago (its own monotonic clock) gives up every
	// lease (Lost closes) before the database can let another replica
	// take them. It covers clock-rate drift between the replica and the
	// database, the time to close connections and scheduling delays.
	// Default TTL/5. Renew*2 + StopMargin must be below TTL, so that one
	// failed renewal never stops sessions.
	StopMargin time.Duration
	// Poll is how often sessions waiting in Acquire are tried (one
	// statement for all of them) and the balance is checked. Default
	// 500ms.
	Poll time.Duration
	// Slack is how many leases above ⌈N/R⌉ (N sessions, R live replicas)
	// a replica may hold. Default 1; negative means 0.
	Slack int
	// Shed bounds how many leases above its share a replica gives up per
	// Poll (so a joining replica gets its share gradually). Default 2.
	Shed int
	// WriteLog makes every fenced write append a row to serve_write_log
	// (session, owner, epoch, what) in its transaction: an audit for
	// tests. Default off.
	WriteLog bool
	// SessionTable, when set, names the table of the sessions, keyed by
	// an id column (serve_sessions for walink serve). A missing lease row
	// is then made only for a session in it, read FOR SHARE, so that a
	// replica still waiting for a session that was just deleted together
	// with its lease row (ForgetSQL) does not make the row again. Default:
	// a row is made for every session waited for.
	SessionTable string
	// Logger receives lease events (never secrets). Default: none.
	Logger *slog.Logger
}

func (c *Config) defaults() error {
	if c.ReplicaID == "" {
		return fmt.Errorf("%w: ReplicaID is required", ErrConfig)
	}
	if c.Pool == nil && c.DSN == "" {
		return fmt.Errorf("%w: Pool or DSN is required", ErrConfig)
	}
	if c.TTL == 0 {
		c.TTL = 15 * time.Second
	}
	if c.Renew == 0 {
		c.Renew = c.TTL / 3
	}
	if c.StopMargin == 0 {
		c.StopMargin = c.TTL / 5
	}
	if c.Poll == 0 {
		c.Poll = 500 * time.Millisecond
	}
	if c.Slack == 0 {
		c.Slack = 1
	} else if c.Slack < 0 {
		c.Slack = 0
	}
	if c.Shed <= 0 {
		c.Shed = 2
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.TTL < 10*time.Millisecond || c.Renew <= 0 || c.StopMargin <= 0 || c.Poll <= 0 {
		return fmt.Errorf("%w: TTL, Renew, StopMargin and Poll must be positive (TTL at least 10ms)", ErrConfig)
	}
	if c.SessionTable != "" && !identRE.MatchString(c.SessionTable) {
		return fmt.Errorf("%w: SessionTable %q is not a plain (optionally schema-qualified) table name", ErrConfig, c.SessionTable)
	}
	if 2*c.Renew+c.StopMargin >= c.TTL {
		return fmt.Errorf("%w: Renew*2 + StopMargin (%v) must be below TTL (%v)", ErrConfig, 2*c.Renew+c.StopMargin, c.TTL)
	}
	return nil
}

// Stats are the Manager's counters since New.
type Stats struct {
	Held          int   // leases held now
	Waiting       int   // sessions waiting in Acquire
	Acquired      int64 // leases acquired
	Lost          int64 // leases lost (expired, taken over, given up for balance or drain)
	Released      int64 // leases released
	Fenced        int64 // writes refused by a fence of this Manager's leases
	RenewFailures int64 // heartbeats that failed
	Replicas      int   // live replicas (not draining) at the last check
	Sessions      int   // sessions counted for the balance bound at the last check
	Limit         int   // the balance bound ⌈N/R⌉+Slack at the last check
}

// Manager hands out leases on sessions to this replica: it implements
// serve.Owner. See the package documentation for the protocol.
type Manager struct {
	cfg     Config
	pool    *pgxpool.Pool
	ownPool bool
	log     *slog.Logger
	fenceT  string // write log table or ""

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{} // wakes the acquire loop
	okCh   chan struct{} // wakes the watchdog after a renewal

	mu        sync.Mutex
	held      map[string]*Lease
	waiting   map[string][]*waiter
	releases  []relEntry // released, not yet written
	lastOK    time.Time  // send time (monotonic) of the last successful renewal
	renewErr  error      // last renewal error, nil after a success
	draining  bool
	closed    bool
	replicas  int
	sessions  int
	limit     int
	drainedCh chan struct{} // closed when draining and nothing is held

	acquired, lost, released, fenced, renewFails atomic.Int64

	// Test hooks (nil in production): renewHook runs before each renewal
	// (an error fails it; blocking pauses the loop); watchHook runs
	// before the watchdog acts (blocking pauses it).
	renewHook func() error
	watchHook func()
}

type waiter struct {
	id string
	ch chan *Lease // buffered 1
}

type relEntry struct {
	id    string
	epoch int64
	at    time.Time
}

// Lease is one session's lease held by this replica: it implements
// serve.Lease and serve.FencedLease.
type Lease struct {
	m     *Manager
	id    string
	epoch int64

	lost     chan struct{}
	lostOnce sync.Once
	reason   atomic.Value // string: why Lost closed

	// Under m.mu.
	extended time.Time // local send time of the last statement that extended the lease
	renewing bool      // in the renewal set (not lost, not released)
	shed     bool      // given up for balance or drain: Lost closed, still renewed until Release
	released bool
}

var _ serve.Owner = (*Manager)(nil)
var _ serve.FencedLease = (*Lease)(nil)
var _ serve.LeaseRows = (*Manager)(nil)

// identRE matches a table name, optionally schema-qualified, safe to put
// in a statement as it is.
var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$`)

// New checks cfg, creates the lease tables if needed, registers the
// replica and starts its loops (renewal, watchdog, acquisition). Close
// stops them.
func New(ctx context.Context, cfg Config) (*Manager, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	pool, own := cfg.Pool, false
	if pool == nil {
		pc, err := pgxpool.ParseConfig(cfg.DSN)
		if err != nil {
			// pgx's parse errors can echo the DSN, password included.
			return nil, fmt.Errorf("%w: cannot parse the connection string", ErrConfig)
		}
		if pool, err = pgxpool.NewWithConfig(ctx, pc); err != nil {
			return nil, fmt.Errorf("lease: open: %w", err)
		}
		own = true
	}
	if err := migrate(ctx, pool); err != nil {
		if own {
			pool.Close()
		}
		return nil, err
	}
	m := &Manager{cfg: cfg, pool: pool, ownPool: own, log: cfg.Logger,
		kick: make(chan struct{}, 1), okCh: make(chan struct{}, 1),
		held: map[string]*Lease{}, waiting: map[string][]*waiter{}}
	if cfg.WriteLog {
		m.fenceT = WriteLogTable
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	// The first heartbeat registers the replica before any lease is
	// taken, so the others count it at once.
	t0 := time.Now()
	if _, err := m.renewOnce(ctx, nil); err != nil {
		m.cancel()
		if own {
			pool.Close()
		}
		return nil, fmt.Errorf("lease: register replica: %w", err)
	}
	m.lastOK = t0
	m.wg.Add(3)
	go func() { defer m.wg.Done(); m.renewLoop() }()
	go func() { defer m.wg.Done(); m.watchdog() }()
	go func() { defer m.wg.Done(); m.acquireLoop() }()
	return m, nil
}

// ForgetSQL returns the statement that deletes session id's lease row
// (serve.LeaseRows): the service runs it in the transaction that deletes
// the session. A replica still holding the lease finds it lost at its
// next renewal; one still waiting for it makes no new row when
// Config.SessionTable is set.
func (m *Manager) ForgetSQL(id string) (string, []any) {
	return `DELETE FROM ` + LeaseTable + ` WHERE session_id = $1`, []any{id}
}

// ReplicaID returns the configured replica id.
func (m *Manager) ReplicaID() string { return m.cfg.ReplicaID }

// Config returns the configuration in use (defaults filled in).
func (m *Manager) Config() Config { return m.cfg }

// Acquire blocks until this replica holds session id's lease, or ctx ends
// (its error), or the Manager closes (ErrClosed). A draining Manager
// acquires nothing: Acquire waits for ctx. It implements serve.Owner.
func (m *Manager) Acquire(ctx context.Context, id string) (serve.Lease, error) {
	l, err := m.AcquireLease(ctx, id)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// AcquireLease is Acquire returning the concrete *Lease.
func (m *Manager) AcquireLease(ctx context.Context, id string) (*Lease, error) {
	if id == "" {
		return nil, fmt.Errorf("%w: empty session id", ErrConfig)
	}
	w := &waiter{id: id, ch: make(chan *Lease, 1)}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	m.waiting[id] = append(m.waiting[id], w)
	m.mu.Unlock()
	m.wake()
	select {
	case l := <-w.ch:
		return l, nil
	case <-ctx.Done():
	case <-m.ctx.Done():
	}
	m.mu.Lock()
	m.removeWaiter(w)
	m.mu.Unlock()
	select {
	case l := <-w.ch: // handed over just before we left: give it back
		l.Release()
	default:
	}
	if m.ctx.Err() != nil {
		return nil, ErrClosed
	}
	m.mu.Lock()
	draining := m.draining
	m.mu.Unlock()
	if draining {
		return nil, fmt.Errorf("%w: %w", ErrDraining, ctx.Err())
	}
	return nil, ctx.Err()
}

func (m *Manager) removeWaiter(w *waiter) {
	ws := m.waiting[w.id]
	for i, x := range ws {
		if x == w {
			ws = append(ws[:i:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(m.waiting, w.id)
	} else {
		m.waiting[w.id] = ws
	}
}

func (m *Manager) wake() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// ID returns the session id.
func (l *Lease) ID() string { return l.id }

// Epoch returns the lease's fencing epoch (larger at every acquisition).
func (l *Lease) Epoch() int64 { return l.epoch }

// Lost is closed when this replica must stop the session's connection at
// once: the lease expired or was taken over, renewals failed for
// TTL-StopMargin, or the Manager gave it up for balance or drain. Call
// Release once the connection is closed.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

// Reason says why Lost closed ("" while it is open).
func (l *Lease) Reason() string {
	r, _ := l.reason.Load().(string)
	return r
}

// Check reports, by this replica's own clock and without asking the
// database, whether the lease still holds: ErrLost once Lost is closed, the
// lease was released, or its self-stop deadline passed even if the
// watchdog has not run yet (right after the process was paused, every
// goroutine resumes at once). Call it right before doing what needs the
// lease and is not a fenced write, such as dialing WhatsApp.
func (l *Lease) Check() error {
	select {
	case <-l.lost:
		return fmt.Errorf("%w: %s", ErrLost, l.Reason())
	default:
	}
	m := l.m
	m.mu.Lock()
	renewing, ext := l.renewing, l.extended
	m.mu.Unlock()
	if !renewing {
		return fmt.Errorf("%w: released", ErrLost)
	}
	if !time.Now().Before(ext.Add(m.cfg.TTL - m.cfg.StopMargin)) {
		return fmt.Errorf("%w: renewal overdue", ErrLost)
	}
	return nil
}

// Fence is what writes made under this lease must check: the view of the
// store from (*postgres.Store).Fenced, and the service's own writes.
func (l *Lease) Fence() postgres.Fence {
	return postgres.Fence{Key: l.id, Owner: l.m.cfg.ReplicaID, Epoch: l.epoch,
		Table: LeaseTable, WriteLog: l.m.fenceT, Refused: l.m.countFenced}
}

func (m *Manager) countFenced() { m.fenced.Add(1) }

// Release gives the lease back (the connection is already closed); the
// row is freed in the background, so that another replica can take it at
// its next poll. It is safe to call more than once, and after Lost.
func (l *Lease) Release() {
	m := l.m
	m.mu.Lock()
	if l.released {
		m.mu.Unlock()
		return
	}
	l.released = true
	wasRenewing := l.renewing
	l.renewing = false
	if m.held[l.id] == l {
		delete(m.held, l.id)
	}
	// Even a lost lease is freed when its row still names it (a renewal
	// failure that nobody else noticed): the WHERE on owner and epoch
	// makes that harmless otherwise.
	m.releases = append(m.releases, relEntry{id: l.id, epoch: l.epoch, at: time.Now()})
	m.checkDrainedLocked()
	m.mu.Unlock()
	m.released.Add(1)
	if wasRenewing {
		l.loseWith("released")
	}
	m.wake()
}

// loseWith closes Lost once, recording why.
func (l *Lease) loseWith(reason string) bool {
	closed := false
	l.lostOnce.Do(func() {
		l.reason.Store(reason)
		close(l.lost)
		closed = true
	})
	return closed
}

// lose marks l lost (not renewed any more) under m.mu and closes Lost.
func (m *Manager) loseLocked(l *Lease, reason string) {
	l.renewing = false
	if m.held[l.id] == l {
		delete(m.held, l.id)
	}
	if l.loseWith(reason) {
		m.lost.Add(1)
		m.log.Warn("lease: lost", "session", l.id, "epoch", l.epoch, "reason", reason)
	}
	m.checkDrainedLocked()
}

// shedLocked closes Lost for balance or drain; the lease is still renewed
// until Release, so nobody else takes the session before its connection
// is closed.
func (m *Manager) shedLocked(l *Lease, reason string) {
	if l.shed {
		return
	}
	l.shed = true
	if l.loseWith(reason) {
		m.lost.Add(1)
		m.log.Info("lease: giving up", "session", l.id, "epoch", l.epoch, "reason", reason)
	}
}

func (m *Manager) checkDrainedLocked() {
	if m.draining && len(m.held) == 0 && m.drainedCh != nil {
		select {
		case <-m.drainedCh:
		default:
			close(m.drainedCh)
		}
	}
}

// renewLoop sends the heartbeat every Renew: the replica row and every
// held lease in one statement.
func (m *Manager) renewLoop() {
	t := time.NewTicker(m.cfg.Renew)
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
		}
		m.renewTick()
	}
}

func (m *Manager) renewTick() {
	m.mu.Lock()
	h := m.renewHook
	m.mu.Unlock()
	if h != nil {
		if err := h(); err != nil {
			m.renewFailed(err)
			return
		}
	}
	m.mu.Lock()
	var ls []*Lease
	for _, l := range m.held {
		if l.renewing {
			ls = append(ls, l)
		}
	}
	m.mu.Unlock()
	// The send time, taken before the request: the database computes the
	// new expiry after it, so the local deadline t0+TTL-StopMargin is
	// before the database's expiry whatever the request's latency.
	t0 := time.Now()
	// A slow renewal still helps as long as it lands before the
	// deadlines (a later tick is skipped meanwhile); past this bound a
	// fresh connection is more likely to get through.
	ctx, cancel := context.WithTimeout(m.ctx, m.cfg.TTL-m.cfg.StopMargin-m.cfg.Renew)
	got, err := m.renewOnce(ctx, ls)
	cancel()
	if err != nil {
		if m.ctx.Err() == nil {
			m.renewFailed(err)
		}
		return
	}
	m.mu.Lock()
	if t0.After(m.lastOK) {
		m.lastOK = t0
	}
	m.renewErr = nil
	for _, l := range ls {
		if got[l.id] && l.renewing && t0.After(l.extended) {
			l.extended = t0
		}
		if !got[l.id] && l.renewing {
			// The row no longer names us with this epoch: taken over
			// after an expiry, or gone.
			m.loseLocked(l, "lease taken over or expired")
		}
	}
	m.mu.Unlock()
	select {
	case m.okCh <- struct{}{}:
	default:
	}
}

func (m *Manager) renewFailed(err error) {
	m.renewFails.Add(1)
	m.mu.Lock()
	m.renewErr = err
	m.mu.Unlock()
	m.log.Warn("lease: renewal failed; leases kept until the stop margin", "err", err)
}

// renewOnce writes the heartbeat and renews ls; it returns the sessions
// whose rows it renewed.
func (m *Manager) renewOnce(ctx context.Context, ls []*Lease) (map[string]bool, error) {
	ids := make([]string, len(ls))
	epochs := make([]int64, len(ls))
	for i, l := range ls {
		ids[i], epochs[i] = l.id, l.epoch
	}
	m.mu.Lock()
	draining := m.draining
	m.mu.Unlock()
	rows, err := m.pool.Query(ctx, `WITH hb AS (
			INSERT INTO serve_replicas (id, advertise_url, draining, expires_at)
			VALUES ($1, $2, $3, now() + $4 * interval '1 microsecond')
			ON CONFLICT (id) DO UPDATE SET advertise_url = EXCLUDED.advertise_url,
				draining = EXCLUDED.draining, expires_at = EXCLUDED.expires_at
		)
		UPDATE serve_leases l SET expires_at = now() + $4 * interval '1 microsecond'
		FROM unnest($5::text[], $6::bigint[]) AS h (id, epoch)
		WHERE l.session_id = h.id AND l.epoch = h.epoch AND l.owner = $1
		RETURNING l.session_id`,
		m.cfg.ReplicaID, m.cfg.AdvertiseURL, draining, m.cfg.TTL.Microseconds(), ids, epochs)
	if err != nil {
		return nil, err
	}
	got := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		got[id] = true
	}
	rows.Close()
	return got, rows.Err()
}

// watchdog closes Lost on each held lease once TTL-StopMargin passed
// since the send time of the last statement that extended it (its
// acquisition or a renewal that returned it): from then on the database
// may consider it expired (after the margin), so the connection must be
// closed first.
func (m *Manager) watchdog() {
	budget := m.cfg.TTL - m.cfg.StopMargin
	t := time.NewTimer(budget)
	defer t.Stop()
	for {
		m.mu.Lock()
		now := time.Now()
		var next time.Time
		overdue := false
		for _, l := range m.held {
			if !l.renewing {
				continue
			}
			d := l.extended.Add(budget)
			if !now.Before(d) {
				overdue = true
			} else if next.IsZero() || d.Before(next) {
				next = d
			}
		}
		h := m.watchHook
		m.mu.Unlock()
		if overdue {
			if h != nil {
				h()
			}
			m.mu.Lock()
			// Re-read: a renewal may have landed while the hook ran.
			now, n := time.Now(), 0
			for _, l := range m.held {
				if l.renewing && !now.Before(l.extended.Add(budget)) {
					m.loseLocked(l, "renewal overdue")
					n++
				}
			}
			m.mu.Unlock()
			if n > 0 {
				m.log.Error("lease: not renewed for TTL-StopMargin; gave the leases up", "leases", n)
			}
			continue
		}
		wait := m.cfg.Renew // nothing held: a new lease's deadline is later
		if !next.IsZero() {
			wait = next.Sub(now)
		}
		t.Reset(wait)
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
		case <-m.okCh:
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
		}
	}
}

// acquireLoop tries the waiting sessions every Poll (or when woken),
// keeps the balance, and writes releases.
func (m *Manager) acquireLoop() {
	t := time.NewTicker(m.cfg.Poll)
	defer t.Stop()
	var lastLog time.Time
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
		case <-m.kick:
		}
		m.flushReleases(m.ctx)
		if err := m.acquireTick(m.ctx); err != nil && m.ctx.Err() == nil {
			// Every Poll during an outage: once per TTL is enough.
			if time.Since(lastLog) >= m.cfg.TTL {
				m.log.Warn("lease: acquiring", "err", err)
				lastLog = time.Now()
			}
		}
	}
}

// flushReleases frees the rows of released leases (one statement).
// Failed entries are retried until their lease would have expired anyway.
func (m *Manager) flushReleases(ctx context.Context) {
	m.mu.Lock()
	rel := m.releases
	m.releases = nil
	m.mu.Unlock()
	if len(rel) == 0 {
		return
	}
	ids := make([]string, len(rel))
	epochs := make([]int64, len(rel))
	for i, r := range rel {
		ids[i], epochs[i] = r.id, r.epoch
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.Renew)
	defer cancel()
	_, err := m.pool.Exec(ctx, `UPDATE serve_leases l SET owner = '', expires_at = now()
		FROM unnest($2::text[], $3::bigint[]) AS h (id, epoch)
		WHERE l.session_id = h.id AND l.epoch = h.epoch AND l.owner = $1`, m.cfg.ReplicaID, ids, epochs)
	if err == nil {
		return
	}
	m.log.Warn("lease: releasing", "err", err)
	var keep []relEntry
	for _, r := range rel {
		if time.Since(r.at) < m.cfg.TTL {
			keep = append(keep, r)
		}
	}
	m.mu.Lock()
	m.releases = append(keep, m.releases...)
	m.mu.Unlock()
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

func (m *Manager) acquireTick(ctx context.Context) error {
	m.mu.Lock()
	if m.draining || m.closed {
		m.mu.Unlock()
		return nil
	}
	var want []string
	known := len(m.held)
	for id := range m.waiting {
		if _, ok := m.held[id]; !ok {
			want = append(want, id)
			known++
		}
	}
	heldNow, shedding := 0, 0
	for _, l := range m.held {
		if l.shed {
			shedding++ // given up, not yet released
		} else {
			heldNow++
		}
	}
	m.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, m.cfg.Renew)
	defer cancel()
	var live, global, free int
	var missing []string // waited for here, no lease row yet
	if err := m.pool.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM serve_replicas WHERE expires_at > now() AND NOT draining),
			(SELECT count(*) FROM serve_leases WHERE owner <> '' AND expires_at > now()),
			(SELECT count(*) FROM serve_leases WHERE session_id = ANY($1::text[]) AND (owner = '' OR expires_at <= now())),
			array(SELECT w.id FROM unnest($1::text[]) AS w (id)
				WHERE NOT EXISTS (SELECT 1 FROM serve_leases l WHERE l.session_id = w.id))`,
		want).Scan(&live, &global, &free, &missing); err != nil {
		return err
	}
	free += len(missing)
	n := max(global, known, 1)
	r := max(live, 1)
	limit := ceilDiv(n, r) + m.cfg.Slack
	m.mu.Lock()
	m.replicas, m.sessions, m.limit = live, n, limit
	// Balance: above the bound, give up a few leases per tick; their
	// sessions wait here again and are taken by a replica with room. No
	// more is given up while one given up is not released yet or a
	// session this replica knows lies free, so at most Shed sessions are
	// between owners at once.
	if excess := heldNow - limit; excess > 0 && free == 0 && shedding == 0 {
		k := min(excess, m.cfg.Shed)
		for _, l := range m.held {
			if k == 0 {
				break
			}
			if !l.shed && l.renewing {
				m.shedLocked(l, "rebalance")
				k--
			}
		}
	}
	m.mu.Unlock()

	room := limit - heldNow
	if room <= 0 || len(want) == 0 {
		return nil
	}
	// Free rows for sessions that never had one.
	if len(missing) > 0 {
		q := `INSERT INTO serve_leases (session_id) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING`
		if m.cfg.SessionTable != "" {
			// FOR SHARE orders this with a deletion of the session: it
			// waits for one in flight and then skips the deleted row, or
			// the deletion waits for this insert and then sees its row.
			q = `INSERT INTO serve_leases (session_id)
				SELECT s.id FROM (SELECT id FROM ` + m.cfg.SessionTable + ` WHERE id = ANY($1::text[]) FOR SHARE) s
				ON CONFLICT DO NOTHING`
		}
		if _, err := m.pool.Exec(ctx, q, missing); err != nil {
			return err
		}
	}
	a0 := time.Now() // before the statement: as for renewals
	// One conditional UPDATE takes free or expired rows, by the
	// database's clock; SKIP LOCKED leaves rows another replica is taking
	// (or a fenced write is holding) for the next round.
	rows, err := m.pool.Query(ctx, `UPDATE serve_leases l SET owner = $1, epoch = nextval('serve_lease_epochs'),
			expires_at = now() + $2 * interval '1 microsecond', acquired_at = now()
		FROM (SELECT session_id FROM serve_leases
			WHERE session_id = ANY($3::text[]) AND (owner = '' OR expires_at <= now())
			LIMIT $4 FOR UPDATE SKIP LOCKED) c
		WHERE l.session_id = c.session_id
		RETURNING l.session_id, l.epoch`,
		m.cfg.ReplicaID, m.cfg.TTL.Microseconds(), want, room)
	if err != nil {
		return err
	}
	type got struct {
		id    string
		epoch int64
	}
	var gs []got
	for rows.Next() {
		var g got
		if err := rows.Scan(&g.id, &g.epoch); err != nil {
			rows.Close()
			return err
		}
		gs = append(gs, g)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		// The statement may have committed: the rows we cannot read
		// expire after TTL.
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, g := range gs {
		l := &Lease{m: m, id: g.id, epoch: g.epoch, lost: make(chan struct{}), renewing: true, extended: a0}
		m.acquired.Add(1)
		ws := m.waiting[g.id]
		if len(ws) == 0 || m.closed || m.draining {
			// The waiter left meanwhile: give it back at once.
			l.released, l.renewing = true, false
			m.releases = append(m.releases, relEntry{id: g.id, epoch: g.epoch, at: time.Now()})
			m.released.Add(1)
			l.loseWith("released")
			continue
		}
		m.held[g.id] = l
		w := ws[0]
		m.removeWaiter(w)
		w.ch <- l
		m.log.Debug("lease: acquired", "session", g.id, "epoch", g.epoch)
	}
	return nil
}

// Drain gives up every lease (Lost closes on each, with reason "drain";
// the service closes the connections and calls Release), stops acquiring,
// and marks the replica as draining so the others no longer count it. It
// waits until every lease is released or ctx ends; the released rows are
// written at once so other replicas take the sessions at their next poll.
func (m *Manager) Drain(ctx context.Context) error {
	m.mu.Lock()
	if !m.draining {
		m.draining = true
		m.drainedCh = make(chan struct{})
		for _, l := range m.held {
			if l.renewing {
				m.shedLocked(l, "drain")
			}
		}
		m.checkDrainedLocked()
	}
	done := m.drainedCh
	m.mu.Unlock()
	// Tell the others now rather than at the next heartbeat.
	hctx, cancel := context.WithTimeout(ctx, m.cfg.Renew)
	_, err := m.pool.Exec(hctx, `UPDATE serve_replicas SET draining = true WHERE id = $1`, m.cfg.ReplicaID)
	cancel()
	if err != nil {
		m.log.Warn("lease: marking the replica draining", "err", err)
	}
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	m.flushReleases(ctx)
	return nil
}

// Close stops the loops, frees every lease still held (their Lost close:
// callers should have closed the connections first, e.g. by Drain) and
// removes the replica row. Pending Acquires return ErrClosed.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	var ls []*Lease
	for _, l := range m.held {
		ls = append(ls, l)
	}
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
	for _, l := range ls {
		l.Release()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m.flushReleases(ctx)
	if _, err := m.pool.Exec(ctx, `DELETE FROM serve_replicas WHERE id = $1`, m.cfg.ReplicaID); err != nil {
		m.log.Warn("lease: removing the replica row", "err", err)
	}
	if m.ownPool {
		m.pool.Close()
	}
	return nil
}

// Healthy reports whether leases can be trusted (for /readyz): nil while
// renewals succeed; an error once one failed, or when draining or closed.
func (m *Manager) Healthy() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.closed:
		return ErrClosed
	case m.draining:
		return ErrDraining
	case m.renewErr != nil:
		return fmt.Errorf("lease: renewal failing (last success %v ago): %w", time.Since(m.lastOK).Round(time.Millisecond), m.renewErr)
	}
	if age := time.Since(m.lastOK); age > 2*m.cfg.Renew {
		return fmt.Errorf("lease: no renewal for %v", age.Round(time.Millisecond))
	}
	return nil
}

// Stats returns the counters.
func (m *Manager) Stats() Stats {
	m.mu.Lock()
	st := Stats{Held: len(m.held), Replicas: m.replicas, Sessions: m.sessions, Limit: m.limit}
	for _, ws := range m.waiting {
		st.Waiting += len(ws)
	}
	m.mu.Unlock()
	st.Acquired, st.Lost, st.Released = m.acquired.Load(), m.lost.Load(), m.released.Load()
	st.Fenced, st.RenewFailures = m.fenced.Load(), m.renewFails.Load()
	return st
}

// Held returns the sessions whose leases this replica holds.
func (m *Manager) Held() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]string, 0, len(m.held))
	for id := range m.held {
		ids = append(ids, id)
	}
	return ids
}

// Owner returns the replica holding session id's lease (unexpired, by the
// database's clock) and its advertised URL; ok=false when nobody holds it.
func (m *Manager) Owner(ctx context.Context, id string) (replicaID, advertiseURL string, ok bool, err error) {
	err = m.pool.QueryRow(ctx, `SELECT l.owner, coalesce(r.advertise_url, '')
		FROM serve_leases l LEFT JOIN serve_replicas r ON r.id = l.owner
		WHERE l.session_id = $1 AND l.owner <> '' AND l.expires_at > now()`, id).Scan(&replicaID, &advertiseURL)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, fmt.Errorf("lease: owner of %s: %w", id, err)
	}
	return replicaID, advertiseURL, true, nil
}

// Replica is one registered replica.
type Replica struct {
	ID           string
	AdvertiseURL string
	Draining     bool
	Live         bool // heartbeat not expired (by the database's clock)
	Leases       int  // unexpired leases it holds
}

// Replicas returns the registered replicas (live or not yet cleaned up),
// by id.
func (m *Manager) Replicas(ctx context.Context) ([]Replica, error) {
	rows, err := m.pool.Query(ctx, `SELECT r.id, r.advertise_url, r.draining, r.expires_at > now(),
			(SELECT count(*) FROM serve_leases l WHERE l.owner = r.id AND l.expires_at > now())
		FROM serve_replicas r ORDER BY r.id`)
	if err != nil {
		return nil, fmt.Errorf("lease: replicas: %w", err)
	}
	defer rows.Close()
	var rs []Replica
	for rows.Next() {
		var r Replica
		if err := rows.Scan(&r.ID, &r.AdvertiseURL, &r.Draining, &r.Live, &r.Leases); err != nil {
			return nil, fmt.Errorf("lease: replicas: %w", err)
		}
		rs = append(rs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("lease: replicas: %w", err)
	}
	return rs, nil
}
