package serve

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Events across replicas. The replica that writes an event also sends, in
// the same transaction, NOTIFY <channel> '<seq> <replica>' (PostgreSQL
// delivers it on commit, never for a rolled-back write). Every replica
// LISTENs on a dedicated connection, reads the events it is told about
// from the table (the payload stays small; the table is the source of
// truth) and publishes them to its SSE subscribers; events of sessions it
// does not hold also refresh its copy of their row. A notification can be
// missed (the connection drops, the database restarts), so after every
// (re)connect and every CatchUpEvery the listener reads the table for
// events after the last one it saw, looking back catchUpWindow sequence
// numbers (ids commit in id order across replicas, see insertEvents; the
// look-back is a margin). The hub drops the duplicates this produces.

// catchUpWindow is how far below the highest sequence number seen a
// catch-up read starts.
const catchUpWindow = 512

// notifyTx queues the notification of evs in tx (sent on commit).
func (s *Service) notifyTx(ctx context.Context, tx *sql.Tx, evs []StoredEvent) error {
	if s.cl == nil {
		return nil
	}
	for _, e := range evs {
		if _, err := tx.ExecContext(ctx, `SELECT pg_notify($1, $2)`, s.cl.channel, strconv.FormatInt(e.Seq, 10)+" "+s.cl.cfg.ReplicaID); err != nil {
			return fmt.Errorf("serve: notify: %w", err)
		}
	}
	return nil
}

// listen runs the LISTEN connection until ctx ends, reconnecting with
// jittered backoff.
func (s *Service) listen(ctx context.Context) {
	high := s.highSeq(ctx)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.listenOnce(ctx, &high)
		if ctx.Err() != nil {
			return
		}
		s.listenerUp.Store(false)
		s.log.Warn("serve: event listener lost its connection; reconnecting", "err", err)
		d := backoff/2 + time.Duration(mrand.Int64N(int64(backoff)))
		backoff = min(backoff*2, 5*time.Second)
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
	}
}

func (s *Service) highSeq(ctx context.Context) int64 {
	var v sql.NullInt64
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s.db.db.QueryRowContext(qctx, `SELECT MAX(seq) FROM serve_events`).Scan(&v)
	return v.Int64
}

func (s *Service) listenOnce(ctx context.Context, high *int64) error {
	c := s.cl
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := pgx.Connect(cctx, c.cfg.DSN)
	cancel()
	if err != nil {
		return errors.New("connecting failed") // pgx errors can echo the DSN
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{c.channel}.Sanitize()); err != nil {
		return err
	}
	s.listenerUp.Store(true)
	// What was committed while nobody listened.
	if err := s.catchUp(ctx, high); err != nil {
		return err
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, c.cfg.CatchUpEvery)
		n, err := conn.WaitForNotification(wctx)
		timedOut := wctx.Err() != nil && ctx.Err() == nil
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil && !timedOut {
			return err
		}
		if timedOut {
			// Quiet: check the connection is alive (a silent partition
			// would otherwise leave us waiting forever) and read what a
			// lost notification would have told.
			pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
			_, perr := conn.Exec(pctx, "SELECT 1")
			pcancel()
			if perr != nil {
				return perr
			}
			if err := s.catchUp(ctx, high); err != nil {
				return err
			}
			continue
		}
		// Take every notification already received, then read them in
		// one query.
		var seqs []int64
		add := func(payload string) {
			seqStr, _, _ := strings.Cut(payload, " ")
			if v, err := strconv.ParseInt(seqStr, 10, 64); err == nil {
				seqs = append(seqs, v)
			}
		}
		add(n.Payload)
		for len(seqs) < 1000 {
			dctx, dcancel := context.WithTimeout(ctx, time.Millisecond)
			m, err := conn.WaitForNotification(dctx)
			dcancel()
			if err != nil || m == nil {
				if conn.IsClosed() {
					return errors.New("connection closed")
				}
				break
			}
			add(m.Payload)
		}
		rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
		evs, err := s.db.eventsBySeq(rctx, seqs)
		rcancel()
		if err != nil {
			// The notifications are gone; the catch-up read finds them.
			s.log.Warn("serve: reading notified events", "err", err)
			if err := s.catchUp(ctx, high); err != nil {
				return err
			}
			continue
		}
		for _, e := range evs {
			*high = max(*high, e.Seq)
			s.remoteEvent(e)
		}
	}
}

// catchUp reads the events after *high - catchUpWindow and handles those
// not seen yet.
func (s *Service) catchUp(ctx context.Context, high *int64) error {
	from := max(*high-catchUpWindow, 0)
	for {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		evs, err := s.db.eventsAfter(rctx, "", from, 500)
		cancel()
		if err != nil {
			return err
		}
		for _, e := range evs {
			*high = max(*high, e.Seq)
			from = e.Seq
			s.remoteEvent(e)
		}
		if len(evs) < 500 {
			return nil
		}
	}
}

// remoteEvent publishes an event read from the table (once: the hub
// drops what it published already) and brings this replica's copy of the
// session up to date.
func (s *Service) remoteEvent(e StoredEvent) {
	if !s.hub.publish(e) {
		return
	}
	s.cmet.remoteEvents.Inc()
	s.syncSession(e)
}

// syncSession refreshes this replica's copy of e's session after an event
// it did not publish itself: the row from the table, the QR or pair code
// from the event (only the holder has them otherwise), and whether this
// replica should compete for its lease.
func (s *Service) syncSession(e StoredEvent) {
	ss := s.get(e.Session)
	if e.Name == "session_deleted" {
		if ss != nil {
			s.detach(ss)
			s.mu.Lock()
			delete(s.sessions, e.Session)
			s.mu.Unlock()
		}
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	rec, err := s.db.loadSession(ctx, e.Session)
	cancel()
	if err != nil || rec == nil {
		return
	}
	if ss == nil {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return
		}
		if ss = s.sessions[e.Session]; ss == nil {
			ss = &session{id: e.Session, rec: *rec}
			s.sessions[e.Session] = ss
		}
		s.mu.Unlock()
	}
	ss.mu.Lock()
	held := ss.cli != nil
	if held {
		// The holder's own state is the truth; only what another replica
		// may change (a stop, forwarded or not) is taken from the row.
		wantStop := !rec.WantRunning && ss.rec.WantRunning
		ss.mu.Unlock()
		if wantStop {
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.stopSession(ss, false, "stopped")
			}()
		}
		return
	}
	ss.rec = *rec
	switch e.Name {
	case "pairing_qr_code":
		code, _ := e.Data["code"].(string)
		t, _ := e.Data["timeout_s"].(float64)
		ss.qr, ss.qrExp = code, e.At.Add(time.Duration(t)*time.Second)
	case "pairing_code":
		code, _ := e.Data["code"].(string)
		t, _ := e.Data["timeout_s"].(float64)
		ss.qr, ss.code, ss.codeExp = "", code, e.At.Add(time.Duration(t)*time.Second)
	case "pair_success", "pair_error", "qr_codes_expired", "logged_out":
		ss.qr, ss.code = "", ""
	}
	contending := ss.acquiring != nil
	ss.mu.Unlock()
	switch {
	case rec.WantRunning && !contending:
		s.startSession(ss, true)
	case !rec.WantRunning && contending:
		s.detach(ss)
	}
}
