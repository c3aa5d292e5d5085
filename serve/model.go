package serve

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Status is a session's one current state.
type Status string

const (
	StatusStarting        Status = "starting"         // connecting (or reconnecting after a restart)
	StatusScanQR          Status = "scan_qr"          // a QR code is waiting to be scanned
	StatusPairCode        Status = "pair_code"        // a pair code is waiting to be typed on the phone
	StatusPasskeyRequired Status = "passkey_required" // the phone asks for the account's passkey
	StatusPasskeyConfirm  Status = "passkey_confirm"  // the passkey was checked; confirm on the phone
	StatusConnected       Status = "connected"        // linked and online
	StatusDisconnected    Status = "disconnected"     // not connected (stopped, or waiting to reconnect)
	StatusLoggedOut       Status = "logged_out"       // unlinked; start links a new device
	StatusFailed          Status = "failed"           // linking or connecting failed; Reason says why
)

// Statuses lists every status, in the order the API documents them.
var Statuses = []Status{StatusStarting, StatusScanQR, StatusPairCode, StatusPasskeyRequired,
	StatusPasskeyConfirm, StatusConnected, StatusDisconnected, StatusLoggedOut, StatusFailed}

// maxTransitions is how many recent transitions a session keeps.
const maxTransitions = 8

// Transition is one status change.
type Transition struct {
	Status Status    `json:"status"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

// PasskeyView is the passkey step in a session object while its status is
// passkey_confirm: the code the phone shows too, so a page reloaded after
// the passkey_confirm event still shows it. It lives in memory only, like
// the QR and the pair code: the step dies with the connection.
type PasskeyView struct {
	Code          string `json:"code"` // "XXXX-XXXX"
	SkipHandoffUX bool   `json:"skip_handoff_ux"`
}

// WebhookConfig is a session's webhook: events (by name; empty = all) are
// POSTed to URL, signed with Secret.
type WebhookConfig struct {
	URL    string   `json:"url"`
	Events []string `json:"events,omitempty"`
	Secret string   `json:"-"`
}

// record is a session's persisted row.
type record struct {
	ID          string
	Name        string
	Webhook     WebhookConfig
	Device      string // device JID once linked, "" before
	Status      Status
	Reason      string
	Transitions []Transition
	WantRunning bool
	Platform    string // the phone's platform once linked, "" before
	Created     time.Time
	Updated     time.Time
}

func ms(t time.Time) int64     { return t.UnixMilli() }
func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }
func jsonText(v any) string    { b, _ := json.Marshal(v); return string(b) }
func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

var errNoSession = errors.New("serve: no such session")

const sessionCols = `id, name, webhook_url, webhook_events, webhook_secret, device_jid, status, reason, transitions, want_running, created_ms, updated_ms, platform`

func scanRecord(sc interface{ Scan(...any) error }) (*record, error) {
	var r record
	var evs, trs string
	var want int
	var c, u int64
	if err := sc.Scan(&r.ID, &r.Name, &r.Webhook.URL, &evs, &r.Webhook.Secret, &r.Device, &r.Status, &r.Reason, &trs, &want, &c, &u, &r.Platform); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(evs), &r.Webhook.Events); err != nil {
		return nil, fmt.Errorf("serve: session %s: webhook events: %w", r.ID, err)
	}
	if err := json.Unmarshal([]byte(trs), &r.Transitions); err != nil {
		return nil, fmt.Errorf("serve: session %s: transitions: %w", r.ID, err)
	}
	r.WantRunning = want != 0
	r.Created, r.Updated = fromMS(c), fromMS(u)
	return &r, nil
}

func (d *DB) loadSessions(ctx context.Context) ([]*record, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT `+sessionCols+` FROM serve_sessions ORDER BY created_ms, id`)
	if err != nil {
		return nil, fmt.Errorf("serve: loading sessions: %w", err)
	}
	defer rows.Close()
	var out []*record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, fmt.Errorf("serve: loading sessions: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (d *DB) insertSession(ctx context.Context, tx *sql.Tx, r *record) error {
	_, err := tx.ExecContext(ctx, d.q(`INSERT INTO serve_sessions (`+sessionCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`),
		r.ID, r.Name, r.Webhook.URL, jsonText(nonNil(r.Webhook.Events)), r.Webhook.Secret, r.Device, string(r.Status), r.Reason,
		jsonText(r.Transitions), boolInt(r.WantRunning), ms(r.Created), ms(r.Updated), r.Platform)
	return err
}

func (d *DB) updateSession(ctx context.Context, tx *sql.Tx, r *record) error {
	res, err := tx.ExecContext(ctx, d.q(`UPDATE serve_sessions SET name=?, device_jid=?, status=?, reason=?, transitions=?, want_running=?, updated_ms=?, platform=? WHERE id=?`),
		r.Name, r.Device, string(r.Status), r.Reason, jsonText(r.Transitions), boolInt(r.WantRunning), ms(r.Updated), r.Platform, r.ID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errNoSession
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// StoredEvent is one event of the history: what SSE streams and webhooks
// carry. Seq orders all events of the service; it is the SSE id and, as
// "evt_<seq>", the webhook event id.
type StoredEvent struct {
	Seq     int64
	Session string
	At      time.Time
	Name    string
	Data    map[string]any
}

// payload is the JSON every consumer sees.
func (e StoredEvent) payload() map[string]any {
	m := map[string]any{}
	for k, v := range e.Data {
		m[k] = v
	}
	m["event"] = e.Name
	m["event_id"] = fmt.Sprintf("evt_%d", e.Seq)
	m["session_id"] = e.Session
	m["at"] = e.At.UTC().Format(time.RFC3339Nano)
	return m
}

func (d *DB) insertEvent(ctx context.Context, tx *sql.Tx, e *StoredEvent) error {
	return tx.QueryRowContext(ctx, d.q(`INSERT INTO serve_events (session_id, at_ms, name, data) VALUES (?,?,?,?) RETURNING seq`),
		e.Session, ms(e.At), e.Name, jsonText(e.Data)).Scan(&e.Seq)
}

// pruneEvents keeps the newest keep events of a session.
func (d *DB) pruneEvents(ctx context.Context, tx *sql.Tx, session string, keep int) error {
	_, err := tx.ExecContext(ctx, d.q(`DELETE FROM serve_events WHERE session_id=? AND seq <= (
		SELECT seq FROM serve_events WHERE session_id=? ORDER BY seq DESC LIMIT 1 OFFSET ?)`), session, session, keep)
	return err
}

// eventsAfter returns up to limit events with seq > after, of one session
// ("" = all), oldest first.
func (d *DB) eventsAfter(ctx context.Context, session string, after int64, limit int) ([]StoredEvent, error) {
	var rows *sql.Rows
	var err error
	if session == "" {
		rows, err = d.db.QueryContext(ctx, d.q(`SELECT seq, session_id, at_ms, name, data FROM serve_events WHERE seq > ? ORDER BY seq LIMIT ?`), after, limit)
	} else {
		rows, err = d.db.QueryContext(ctx, d.q(`SELECT seq, session_id, at_ms, name, data FROM serve_events WHERE session_id=? AND seq > ? ORDER BY seq LIMIT ?`), session, after, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("serve: reading events: %w", err)
	}
	return scanEvents(rows)
}

// outboxRow is one webhook delivery to make.
type outboxRow struct {
	ID       int64
	EventSeq int64
	URL      string
	Secret   string
	Body     string
	Attempts int
	Created  time.Time
}

func (d *DB) insertOutbox(ctx context.Context, tx *sql.Tx, seq int64, url, secret, body string, now time.Time) error {
	_, err := tx.ExecContext(ctx, d.q(`INSERT INTO serve_outbox (event_seq, url, secret, body, next_ms, created_ms) VALUES (?,?,?,?,?,?)`),
		seq, url, secret, body, ms(now), ms(now))
	return err
}

// dueOutbox returns up to limit deliveries due at now, skipping ids in busy.
func (d *DB) dueOutbox(ctx context.Context, now time.Time, limit int) ([]outboxRow, error) {
	rows, err := d.db.QueryContext(ctx, d.q(`SELECT id, event_seq, url, secret, body, attempts, created_ms FROM serve_outbox WHERE next_ms <= ? ORDER BY next_ms, id LIMIT ?`), ms(now), limit)
	if err != nil {
		return nil, err
	}
	return scanOutbox(rows)
}

// scanOutbox reads outbox rows selected (or returned) as id, event_seq,
// url, secret, body, attempts, created_ms.
func scanOutbox(rows *sql.Rows) ([]outboxRow, error) {
	defer rows.Close()
	var out []outboxRow
	for rows.Next() {
		var o outboxRow
		var c int64
		if err := rows.Scan(&o.ID, &o.EventSeq, &o.URL, &o.Secret, &o.Body, &o.Attempts, &c); err != nil {
			return nil, err
		}
		o.Created = fromMS(c)
		out = append(out, o)
	}
	return out, rows.Err()
}

func (d *DB) outboxLen(ctx context.Context) (int, error) {
	var n int
	err := d.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM serve_outbox`).Scan(&n)
	return n, err
}

func (d *DB) nextOutboxDue(ctx context.Context) (time.Time, bool, error) {
	var v sql.NullInt64
	if err := d.db.QueryRowContext(ctx, `SELECT MIN(next_ms) FROM serve_outbox`).Scan(&v); err != nil {
		return time.Time{}, false, err
	}
	return fromMS(v.Int64), v.Valid, nil
}

func (d *DB) outboxDone(ctx context.Context, id int64) error {
	_, err := d.db.ExecContext(ctx, d.q(`DELETE FROM serve_outbox WHERE id=?`), id)
	return err
}

func (d *DB) outboxRetry(ctx context.Context, id int64, attempts int, next time.Time, lastErr string) error {
	_, err := d.db.ExecContext(ctx, d.q(`UPDATE serve_outbox SET attempts=?, next_ms=?, last_error=? WHERE id=?`), attempts, ms(next), lastErr, id)
	return err
}
