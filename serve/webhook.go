package serve

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Sign returns the X-Walink-Signature value of body: "sha256=" and the hex
// HMAC-SHA256 of the body under the webhook's secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// VerifySignature checks an X-Walink-Signature header in constant time.
func VerifySignature(secret string, body []byte, header string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(header))
}

// outbox delivers the rows of serve_outbox: each at least once (a row is
// deleted only after a 2xx), retried with exponential backoff and full
// jitter until WebhookMaxAge. At most perURL deliveries to one URL and
// workers in all run at once, so a slow or failing endpoint holds two
// workers at most and never delays the sessions (rows are written with the
// state change; sending is separate).
type outbox struct {
	s     *Service
	wake  chan struct{}
	idle  chan struct{} // signalled whenever a pass finds nothing due and nothing in flight
	mu    sync.Mutex
	busy  map[int64]bool
	byURL map[string]int
	wg    sync.WaitGroup
}

const (
	outboxWorkers = 16
	outboxPerURL  = 2
	outboxBatch   = 200
)

func newOutbox(s *Service) *outbox {
	return &outbox{s: s, wake: make(chan struct{}, 1), idle: make(chan struct{}, 1), busy: map[int64]bool{}, byURL: map[string]int{}}
}

func (o *outbox) kick() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// run sends due rows until ctx ends, then waits for deliveries in flight.
func (o *outbox) run(ctx context.Context) {
	defer o.wg.Wait()
	sem := make(chan struct{}, outboxWorkers)
	for {
		started := o.pass(ctx, sem)
		wait := time.Second
		if started == 0 {
			o.mu.Lock()
			inflight := len(o.busy)
			o.mu.Unlock()
			if next, ok, err := o.s.db.nextOutboxDue(ctx); err == nil {
				if !ok && inflight == 0 {
					select {
					case o.idle <- struct{}{}:
					default:
					}
				}
				if ok {
					if d := time.Until(next); d < wait {
						wait = max(d, 10*time.Millisecond)
					}
				}
			}
		} else {
			wait = 10 * time.Millisecond
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-o.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

func (o *outbox) pass(ctx context.Context, sem chan struct{}) int {
	t0 := time.Now()
	var rows []outboxRow
	var err error
	if o.s.cl != nil {
		// Replicas share the outbox: each row is claimed by one of them.
		rows, err = o.s.db.claimOutbox(ctx, o.s.now(), o.s.cfg.WebhookTimeout+30*time.Second, min(outboxBatch, cap(sem)-len(sem)))
	} else {
		rows, err = o.s.db.dueOutbox(ctx, o.s.now(), outboxBatch)
	}
	o.s.met.storeLatency.WithLabelValues("outbox_due").Observe(time.Since(t0).Seconds())
	if err != nil {
		if ctx.Err() == nil {
			o.s.log.Warn("serve: reading the webhook outbox", "err", err)
		}
		return 0
	}
	n := 0
	var unclaim []int64 // claimed but not sent now: back to the others
	defer func() {
		if len(unclaim) > 0 {
			o.s.db.unclaimOutbox(ctx, unclaim, o.s.now())
		}
	}()
	for i, row := range rows {
		o.mu.Lock()
		if busy := o.busy[row.ID]; busy || o.byURL[row.URL] >= outboxPerURL {
			o.mu.Unlock()
			if !busy {
				unclaim = append(unclaim, row.ID)
			}
			continue
		}
		select {
		case sem <- struct{}{}:
		default:
			o.mu.Unlock()
			for _, r := range rows[i:] {
				unclaim = append(unclaim, r.ID)
			}
			return n
		}
		o.busy[row.ID] = true
		o.byURL[row.URL]++
		o.mu.Unlock()
		n++
		o.wg.Add(1)
		go func() {
			defer o.wg.Done()
			defer func() { <-sem }()
			o.deliver(ctx, row)
			o.mu.Lock()
			delete(o.busy, row.ID)
			o.byURL[row.URL]--
			if o.byURL[row.URL] == 0 {
				delete(o.byURL, row.URL)
			}
			o.mu.Unlock()
			o.kick()
		}()
	}
	return n
}

func (o *outbox) deliver(ctx context.Context, row outboxRow) {
	s := o.s
	err := o.post(ctx, row)
	dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err == nil {
		s.met.webhooks.WithLabelValues("delivered").Inc()
		if derr := s.db.outboxDone(dctx, row.ID); derr != nil {
			s.log.Warn("serve: webhook delivered but not marked (it will be sent again)", "event", row.EventSeq, "err", derr)
		}
		return
	}
	attempts := row.Attempts + 1
	now := s.now()
	if now.Sub(row.Created) >= s.cfg.WebhookMaxAge {
		s.met.webhooks.WithLabelValues("dropped").Inc()
		s.log.Error("serve: webhook dropped after retrying", "event", row.EventSeq, "url", redactURL(row.URL), "attempts", attempts, "err", err)
		s.db.outboxDone(dctx, row.ID)
		return
	}
	s.met.webhooks.WithLabelValues("failed").Inc()
	// Exponential backoff with full jitter: a crowd of failed rows spreads
	// out instead of coming back together.
	ceil := s.cfg.WebhookMinBackoff << min(attempts-1, 30)
	if ceil <= 0 || ceil > s.cfg.WebhookMaxBackoff {
		ceil = s.cfg.WebhookMaxBackoff
	}
	delay := ceil/2 + time.Duration(mrand.Int64N(int64(ceil/2)+1))
	s.log.Info("serve: webhook failed, retrying", "event", row.EventSeq, "url", redactURL(row.URL), "attempt", attempts, "in", delay, "err", err)
	if uerr := s.db.outboxRetry(dctx, row.ID, attempts, now.Add(delay), truncate(err.Error(), 500)); uerr != nil {
		s.log.Warn("serve: recording a webhook retry", "err", uerr)
	}
}

func (o *outbox) post(ctx context.Context, row outboxRow) error {
	body := []byte(row.Body)
	rctx, cancel := context.WithTimeout(ctx, o.s.cfg.WebhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, row.URL, strings.NewReader(row.Body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "walink-serve")
	req.Header.Set("X-Walink-Event-Id", "evt_"+strconv.FormatInt(row.EventSeq, 10))
	req.Header.Set("X-Walink-Signature", Sign(row.Secret, body))
	resp, err := o.s.cfg.HTTPClient.Do(req)
	if err != nil {
		// *url.Error repeats the URL, which may hold a token: keep the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			return ue.Err
		}
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// flush waits until the outbox is empty (nothing due later either) or ctx
// ends; the sender keeps running meanwhile.
func (o *outbox) flush(ctx context.Context) error {
	for {
		qctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		n, err := o.s.db.outboxLen(qctx)
		cancel()
		if err != nil {
			return fmt.Errorf("serve: flushing the outbox: %w", err)
		}
		if n == 0 {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("serve: flushing the outbox: %d deliveries left for the next start: %w", n, ctx.Err())
		}
		o.kick()
		select {
		case <-ctx.Done():
		case <-o.idle:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// redactURL drops the userinfo and query of a webhook URL for logs: they
// can hold tokens.
func redactURL(raw string) string {
	if i := strings.Index(raw, "?"); i >= 0 {
		raw = raw[:i] + "?…"
	}
	if i := strings.Index(raw, "@"); i >= 0 {
		if j := strings.Index(raw, "://"); j >= 0 && j < i {
			raw = raw[:j+3] + "…@" + raw[i+1:]
		}
	}
	return raw
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
