package serve

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Cluster makes a Service one replica among several on one PostgreSQL
// database (Config.Cluster). Every replica serves the whole API and the
// page: events reach every replica's SSE streams through LISTEN/NOTIFY,
// webhooks are sent once by whichever replica claims the outbox row, and
// a request that needs a session's live connection is forwarded to the
// replica that holds it (Locator). Config.Owner must hand out leases
// (a serve/lease Manager, which is also the Locator).
type Cluster struct {
	// ReplicaID names this replica (required; unique among replicas).
	ReplicaID string
	// AdvertiseURL is where the other replicas reach this one's API
	// (required), e.g. http://10.0.0.5:8080.
	AdvertiseURL string
	// DSN opens the dedicated LISTEN connection (required; the service's
	// database, reached directly: a transaction-pooling proxy does not
	// carry LISTEN).
	DSN string
	// Locator tells which replica holds a session (the lease manager).
	// Without it no request is forwarded.
	Locator Locator
	// ForwardTimeout bounds a forwarded request. Default 35s (the
	// longest action, a pair code, waits up to 30s for WhatsApp).
	ForwardTimeout time.Duration
	// CatchUpEvery is how often the listener reads the events table for
	// events whose notification it missed. Default 10s.
	CatchUpEvery time.Duration
}

// Locator tells which replica holds a session's connection.
type Locator interface {
	// Owner returns the replica holding session id's lease and its
	// advertise URL; ok is false when no live replica holds it.
	Owner(ctx context.Context, sessionID string) (replicaID, advertiseURL string, ok bool, err error)
}

// cluster is the running state of Config.Cluster.
type cluster struct {
	cfg     Cluster
	secret  []byte // shared by the replicas (serve_cluster): signs forwarded requests and page cookies
	channel string // NOTIFY channel of this schema
	// eventLock keys the advisory lock that orders event ids across
	// replicas (insertEvents), per schema as the channel is.
	eventLock int64
	proxy     *http.Client
}

const (
	internalHeader = "X-Walink-Internal"  // "<unix seconds>.<hex hmac>" on forwarded requests
	forwardedBy    = "X-Walink-Forwarded" // the replica that forwarded the request
	internalSkew   = 2 * time.Minute
)

// ErrClusterConfig: Config.Cluster lacks a required field, or the
// database is not PostgreSQL.
var ErrClusterConfig = errors.New("serve: bad cluster configuration")

func newCluster(ctx context.Context, s *Service, c Cluster) (*cluster, error) {
	if c.ReplicaID == "" || c.AdvertiseURL == "" || c.DSN == "" {
		return nil, fmt.Errorf("%w: ReplicaID, AdvertiseURL and DSN are required", ErrClusterConfig)
	}
	if _, local := s.cfg.Owner.(localOwner); local {
		// Every replica would connect every session.
		return nil, fmt.Errorf("%w: replicas need an Owner handing out leases (serve/lease)", ErrClusterConfig)
	}
	if s.db.dialect != Postgres {
		return nil, fmt.Errorf("%w: replicas share a PostgreSQL database", ErrClusterConfig)
	}
	if u, err := url.Parse(c.AdvertiseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: AdvertiseURL must be an absolute http(s) URL", ErrClusterConfig)
	}
	if c.ForwardTimeout <= 0 {
		c.ForwardTimeout = 35 * time.Second
	}
	if c.CatchUpEvery <= 0 {
		c.CatchUpEvery = 10 * time.Second
	}
	cl := &cluster{cfg: c, proxy: &http.Client{Timeout: c.ForwardTimeout}}
	var err error
	if cl.secret, err = s.db.clusterSecret(ctx); err != nil {
		return nil, err
	}
	var schema string
	if err := s.db.db.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return nil, fmt.Errorf("serve: cluster: %w", err)
	}
	// Channels are per database, tables per schema: one channel per
	// schema keeps deployments (and tests) sharing a database apart.
	h := sha256.Sum256([]byte(schema))
	cl.channel = "walink_serve_" + hex.EncodeToString(h[:8])
	cl.eventLock = int64(binary.BigEndian.Uint64(h[8:16]))
	// The page's cookies are signed with a key every replica knows, so a
	// load balancer may send a signed-in browser to any of them.
	m := hmac.New(sha256.New, cl.secret)
	m.Write([]byte("cookie key"))
	s.auth.cookieKey = m.Sum(nil)
	return cl, nil
}

// clusterSecret returns the replicas' shared secret, made by the first
// replica that asks. Whoever can read the database can forge forwarded
// requests, but could take over every session anyway.
func (d *DB) clusterSecret(ctx context.Context) ([]byte, error) {
	// Replicas starting together race on CREATE TABLE IF NOT EXISTS (it
	// can fail on the catalog's unique index): the loser tries again.
	var err error
	for range 3 {
		if _, err = d.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS serve_cluster (k TEXT PRIMARY KEY, v TEXT NOT NULL)`); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		return nil, fmt.Errorf("serve: cluster secret: %w", err)
	}
	if _, err := d.db.ExecContext(ctx, `INSERT INTO serve_cluster (k, v) VALUES ('secret', $1) ON CONFLICT (k) DO NOTHING`, newSecret()); err != nil {
		return nil, fmt.Errorf("serve: cluster secret: %w", err)
	}
	var v string
	if err := d.db.QueryRowContext(ctx, `SELECT v FROM serve_cluster WHERE k='secret'`).Scan(&v); err != nil {
		return nil, fmt.Errorf("serve: cluster secret: %w", err)
	}
	return []byte(v), nil
}

// internalMAC authenticates a forwarded request: method, path and query,
// the time and the body's hash, under the shared secret.
func (c *cluster) internalMAC(method, uri string, ts int64, body []byte) string {
	bh := sha256.Sum256(body)
	m := hmac.New(sha256.New, c.secret)
	fmt.Fprintf(m, "%s\n%s\n%d\n%x", method, uri, ts, bh)
	return hex.EncodeToString(m.Sum(nil))
}

// verifyInternal accepts a request forwarded by another replica. It reads
// (and restores) the body to check its hash.
func (c *cluster) verifyInternal(r *http.Request, now time.Time) bool {
	v := r.Header.Get(internalHeader)
	if v == "" {
		return false
	}
	tsStr, mac, ok := strings.Cut(v, ".")
	ts, err := strconv.ParseInt(tsStr, 10, 64)
	if !ok || err != nil {
		return false
	}
	if d := now.Sub(time.Unix(ts, 0)); d > internalSkew || d < -internalSkew {
		return false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return hmac.Equal([]byte(mac), []byte(c.internalMAC(r.Method, r.URL.RequestURI(), ts, body)))
}

// ownerRoutes need the session's live client: on a replica that does not
// hold it they are forwarded to the one that does.
var ownerRoutes = map[string]bool{
	"DELETE /v1/sessions/{id}":                true,
	"POST /v1/sessions/{id}/logout":           true,
	"POST /v1/sessions/{id}/stop":             true,
	"POST /v1/sessions/{id}/start":            true,
	"GET /v1/sessions/{id}/qr":                true,
	"POST /v1/sessions/{id}/pair-code":        true,
	"GET /v1/sessions/{id}/passkey":           true,
	"POST /v1/sessions/{id}/passkey/response": true,
	"POST /v1/sessions/{id}/passkey/confirm":  true,
	"POST /v1/sessions/{id}/sim/scan":         true,
	"POST /v1/sessions/{id}/sim/enter-code":   true,
}

// forwardable wraps an owner route: when another live replica holds the
// session, the request goes there. A request that was already forwarded
// is answered here (no second hop: the lease moved in between, and the
// local answer is as good as any).
func (s *Service) forwardable(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c := s.cl
		if c == nil || c.cfg.Locator == nil || r.Header.Get(forwardedBy) != "" {
			h(w, r)
			return
		}
		id := r.PathValue("id")
		if ss := s.get(id); ss != nil {
			ss.mu.Lock()
			held := ss.cli != nil
			ss.mu.Unlock()
			if held {
				h(w, r)
				return
			}
		}
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		rid, adv, ok, err := c.cfg.Locator.Owner(ctx, id)
		cancel()
		if err != nil {
			s.log.Warn("serve: looking up a session's owner", "session", id, "err", err)
		}
		if err != nil || !ok || rid == c.cfg.ReplicaID {
			h(w, r)
			return
		}
		s.forward(w, r, rid, adv)
	}
}

// forward sends r to the replica at adv and copies its answer back.
func (s *Service) forward(w http.ResponseWriter, r *http.Request, rid, adv string) {
	c := s.cl
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeProblem(w, r, http.StatusRequestEntityTooLarge, "body-too-large", fmt.Sprintf("at most %d bytes", maxBody))
		return
	}
	target, err := url.Parse(adv)
	if err != nil {
		writeProblem(w, r, http.StatusBadGateway, "unavailable", "the session's replica has a bad advertise URL")
		return
	}
	uri := r.URL.RequestURI()
	ctx, cancel := context.WithTimeout(r.Context(), c.cfg.ForwardTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, r.Method, strings.TrimSuffix(target.String(), "/")+uri, bytes.NewReader(body))
	if err != nil {
		writeProblem(w, r, http.StatusBadGateway, "unavailable", "forwarding failed")
		return
	}
	for _, k := range []string{"Content-Type", "Accept"} {
		if v := r.Header.Get(k); v != "" {
			req.Header.Set(k, v)
		}
	}
	// The caller was authenticated here; the owner trusts the shared
	// secret instead of the caller's key or cookie (never passed on).
	ts := s.now().Unix()
	req.Header.Set(internalHeader, strconv.FormatInt(ts, 10)+"."+c.internalMAC(r.Method, uri, ts, body))
	req.Header.Set(forwardedBy, c.cfg.ReplicaID)
	s.cmet.forwarded.WithLabelValues("sent").Inc()
	resp, err := c.proxy.Do(req)
	if err != nil {
		s.cmet.forwarded.WithLabelValues("failed").Inc()
		s.log.Warn("serve: forwarding to the session's replica", "session", r.PathValue("id"), "replica", rid, "err", errCause(err))
		writeProblem(w, r, http.StatusBadGateway, "unavailable", "the replica holding the session ("+rid+") did not answer; retry")
		return
	}
	defer resp.Body.Close()
	for _, k := range []string{"Content-Type", "Cache-Control", "Expires", "Location", "Retry-After", "Allow"} {
		if v := resp.Header.Get(k); v != "" {
			w.Header().Set(k, v)
		}
	}
	w.Header().Set("X-Walink-Replica", rid)
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

func errCause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// claimOutbox returns up to limit deliveries due at now and claims them
// until now+hold: FOR UPDATE SKIP LOCKED lets replicas claim at once
// without waiting on (or taking) each other's rows, and the moved next_ms
// keeps a row claimed after the transaction, while it is being sent. A
// replica that dies mid-delivery leaves the row to be claimed again when
// the hold ends (delivery stays at least once, deduplicated by event id).
func (d *DB) claimOutbox(ctx context.Context, now time.Time, hold time.Duration, limit int) ([]outboxRow, error) {
	rows, err := d.db.QueryContext(ctx, `UPDATE serve_outbox SET next_ms = $1
		WHERE id IN (SELECT id FROM serve_outbox WHERE next_ms <= $2 ORDER BY next_ms, id LIMIT $3 FOR UPDATE SKIP LOCKED)
		RETURNING id, event_seq, url, secret, body, attempts, created_ms`, ms(now.Add(hold)), ms(now), limit)
	if err != nil {
		return nil, err
	}
	return scanOutbox(rows)
}

// loadSession reads one session's row (nil when it does not exist).
func (d *DB) loadSession(ctx context.Context, id string) (*record, error) {
	r, err := scanRecord(d.db.QueryRowContext(ctx, d.q(`SELECT `+sessionCols+` FROM serve_sessions WHERE id=?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return r, err
}

// eventsBySeq reads the events with the given sequence numbers.
func (d *DB) eventsBySeq(ctx context.Context, seqs []int64) ([]StoredEvent, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT seq, session_id, at_ms, name, data FROM serve_events WHERE seq = ANY($1) ORDER BY seq`, seqs)
	if err != nil {
		return nil, fmt.Errorf("serve: reading events: %w", err)
	}
	return scanEvents(rows)
}

func scanEvents(rows *sql.Rows) ([]StoredEvent, error) {
	defer rows.Close()
	var out []StoredEvent
	for rows.Next() {
		var e StoredEvent
		var at int64
		var data string
		if err := rows.Scan(&e.Seq, &e.Session, &at, &e.Name, &data); err != nil {
			return nil, fmt.Errorf("serve: reading events: %w", err)
		}
		e.At = fromMS(at)
		if err := json.Unmarshal([]byte(data), &e.Data); err != nil {
			return nil, fmt.Errorf("serve: event %d: %w", e.Seq, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// startClustered makes ss wanted running and has this replica compete for
// its lease; the replica that gets it connects the session (a new session
// is thus placed on a live replica, whichever acquires first). Recording
// that the session should run is a control write any replica may make
// while nobody holds the session.
func (s *Service) startClustered(ss *session, resume bool) error {
	ss.mu.Lock()
	if ss.cli != nil || ss.acquiring != nil {
		ss.mu.Unlock()
		return nil
	}
	want := ss.rec.WantRunning
	ss.gen++
	gen := ss.gen
	ctx, cancel := context.WithCancel(s.acqCtx)
	ss.acquiring = cancel
	ss.mu.Unlock()
	if !want {
		// The event tells the other replicas to compete too.
		if err := s.apply(ss, 0, func(r *record) []StoredEvent {
			r.WantRunning = true
			return s.setStatus(r, StatusStarting, "")
		}); err != nil {
			s.detach(ss)
			return err
		}
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.contend(ctx, cancel, ss, gen, resume)
	}()
	return nil
}

// contend waits for ss's lease, then connects it.
func (s *Service) contend(ctx context.Context, cancel context.CancelFunc, ss *session, gen uint64, resume bool) {
	lease, err := s.cfg.Owner.Acquire(ctx, ss.id)
	cancel()
	if err != nil {
		ss.mu.Lock()
		if ss.gen == gen {
			ss.acquiring = nil
		}
		ss.mu.Unlock()
		return
	}
	// The row may have changed while another replica held the session:
	// read it again now that nobody else can write it.
	rctx, rcancel := context.WithTimeout(s.ctx, 10*time.Second)
	rec, err := s.db.loadSession(rctx, ss.id)
	rcancel()
	ss.mu.Lock()
	if ss.gen != gen || err != nil || rec == nil || !rec.WantRunning {
		retry := ss.gen == gen && err != nil
		if ss.gen == gen {
			ss.acquiring = nil
		}
		ss.mu.Unlock()
		lease.Release()
		if retry {
			s.log.Warn("serve: reading a session after taking its lease; trying again", "session", ss.id, "err", err)
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				select {
				case <-time.After(time.Second):
					s.startSession(ss, true)
				case <-s.acqCtx.Done():
				}
			}()
		}
		return
	}
	ss.acquiring = nil
	ss.rec = *rec
	cli, lst, err := s.newClientLocked(ss, gen)
	if err == nil {
		err = lst.bind(lease)
	}
	if err != nil {
		ss.mu.Unlock()
		lease.Release()
		s.log.Error("serve: session cannot start", "session", ss.id, "err", err)
		return
	}
	ss.cli, ss.lease = cli, lease
	ss.mu.Unlock()
	s.watchLease(ss, gen, lease)
	// A failed write here (database down, or the lease already lost and
	// the write fenced) does not stop the login: the lease decides.
	s.apply(ss, gen, func(r *record) []StoredEvent {
		r.WantRunning = true
		return s.setStatus(r, StatusStarting, "")
	})
	s.dial(ss, gen, cli, resume)
}

// letGo, on a replica, records that ss should not run before closing its
// connection and giving its lease back, so that no other replica takes the
// lease only to find the session stopped.
func (s *Service) letGo(ss *session) {
	if s.cl != nil {
		s.apply(ss, 0, func(r *record) []StoredEvent {
			r.WantRunning = false
			return nil
		})
	}
	s.detach(ss)
}

// clusterMetrics count the replica's cluster work (the lease manager's own
// metrics — leases held, acquired, lost, fenced writes — are registered
// from the Owner when it is a prometheus.Collector).
type clusterMetrics struct {
	forwarded    *prometheus.CounterVec
	remoteEvents prometheus.Counter
	leaseStops   prometheus.Counter
}

func newClusterMetrics(reg *prometheus.Registry, owner Owner) *clusterMetrics {
	m := &clusterMetrics{
		forwarded: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "walink_cluster_forwarded_requests_total",
			Help: "Requests forwarded to the replica holding their session, by result (sent, failed)."}, []string{"result"}),
		remoteEvents: prometheus.NewCounter(prometheus.CounterOpts{Name: "walink_cluster_remote_events_total",
			Help: "Events written by other replicas and published here (LISTEN/NOTIFY or catch-up)."}),
		leaseStops: prometheus.NewCounter(prometheus.CounterOpts{Name: "walink_cluster_lease_lost_stops_total",
			Help: "Connections this replica closed because their lease was lost."}),
	}
	reg.MustRegister(m.forwarded, m.remoteEvents, m.leaseStops)
	if c, ok := owner.(prometheus.Collector); ok {
		reg.MustRegister(c)
	}
	return m
}

// unclaimOutbox makes claimed rows due again at now.
func (d *DB) unclaimOutbox(ctx context.Context, ids []int64, now time.Time) error {
	_, err := d.db.ExecContext(ctx, `UPDATE serve_outbox SET next_ms = $1 WHERE id = ANY($2)`, ms(now), ids)
	return err
}

// loadRemote reads a session this replica does not know yet from the
// table and adds it (nil when it does not exist).
func (s *Service) loadRemote(ctx context.Context, id string) *session {
	if !strings.HasPrefix(id, "s_") || len(id) > 64 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	rec, err := s.db.loadSession(ctx, id)
	cancel()
	if err != nil || rec == nil {
		return nil
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	ss, known := s.sessions[id]
	if !known {
		ss = &session{id: id, rec: *rec}
		s.sessions[id] = ss
	}
	s.mu.Unlock()
	if !known && rec.WantRunning {
		s.startSession(ss, true) // compete for it, to take over if its holder goes
	}
	return ss
}
