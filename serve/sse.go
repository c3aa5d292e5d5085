package serve

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// ssePing is the interval of comment lines that keep idle streams (and
// the proxies in front of them) open.
const ssePing = 15 * time.Second

func (s *Service) handleSessionEvents(w http.ResponseWriter, r *http.Request) {
	if ss := s.session(w, r); ss != nil {
		s.stream(w, r, ss.id)
	}
}

func (s *Service) handleAllEvents(w http.ResponseWriter, r *http.Request) { s.stream(w, r, "") }

// stream serves Server-Sent Events of one session ("" = all): each event
// with its id (the global seq); a client that reconnects with
// Last-Event-ID (or ?last_event_id=) first gets the stored events after
// it, then the live ones, without gaps or repeats: it subscribes before
// reading the history and skips live events already sent.
//
// With several replicas the hub learns of events in no fixed order (this
// replica's own at once, the others' through LISTEN/NOTIFY), so there a
// live event only says that there is something to read: the stream reads
// the table after the last id it sent, through the replica's eventTail
// (one read for all its streams). Ids commit in id order across
// replicas (insertEvents), so what a read returns is never followed by a
// smaller id committing later, and Last-Event-ID resumes without gaps.
func (s *Service) stream(w http.ResponseWriter, r *http.Request, session string) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeProblem(w, r, http.StatusInternalServerError, "internal", "streaming unsupported")
		return
	}
	last := int64(-1)
	lastID := r.Header.Get("Last-Event-ID")
	if lastID == "" {
		lastID = r.URL.Query().Get("last_event_id")
	}
	if lastID != "" {
		v, err := strconv.ParseInt(lastID, 10, 64)
		if err != nil || v < 0 {
			writeProblem(w, r, http.StatusBadRequest, "bad-request", "Last-Event-ID must be an event id (a number)")
			return
		}
		last = v
	}
	sub := s.hub.subscribe(session)
	defer s.hub.unsubscribe(sub)
	ordered := s.cl != nil
	if ordered && last < 0 {
		// From now on (read after subscribing, so that nothing committed
		// after this read goes unannounced).
		if err := s.db.db.QueryRowContext(r.Context(), `SELECT coalesce(max(seq), 0) FROM serve_events`).Scan(&last); err != nil {
			s.log.Warn("serve: starting an event stream", "err", err)
			writeProblem(w, r, http.StatusServiceUnavailable, "unavailable", "reading the events failed")
			return
		}
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "retry: 2000\n\n")
	fl.Flush()
	resumed := last
	fromHistory := map[int64]bool{}
	send := func(e StoredEvent) bool {
		b, _ := json.Marshal(e.payload())
		if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", e.Seq, e.Name, b); err != nil {
			return false
		}
		last = e.Seq
		return true
	}
	// history sends the stored events after last.
	history := func() bool {
		for {
			evs, err := s.db.eventsAfter(r.Context(), session, last, 500)
			if err != nil {
				return false
			}
			for _, e := range evs {
				if !send(e) {
					return false
				}
				if !ordered { // ordered: last alone says what was sent
					fromHistory[e.Seq] = true
				}
			}
			fl.Flush()
			if len(evs) < 500 {
				return true
			}
		}
	}
	if last >= 0 && !history() {
		return
	}
	ping := time.NewTicker(ssePing)
	defer ping.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-sub.gone:
			// Dropped (too slow) or shutting down: the client resumes
			// with Last-Event-ID.
			return
		case <-ping.C:
			if _, err := fmt.Fprintf(w, ": ping\n\n"); err != nil {
				return
			}
			fl.Flush()
		case e := <-sub.ch:
			if ordered {
				// Take every event already queued, then read once.
				high := e.Seq
				for drained := false; !drained; {
					select {
					case q := <-sub.ch:
						high = max(high, q.Seq)
					default:
						drained = true
					}
				}
				if high <= last {
					continue
				}
				// Through the replica's shared copy of the table's tail:
				// one read of the table for all its streams.
				evs, ok, err := s.tail.since(r.Context(), session, last, high)
				if err != nil {
					return
				}
				if !ok { // behind the copy: read the table
					if !history() {
						return
					}
					continue
				}
				for _, e := range evs {
					if !send(e) {
						return
					}
				}
				fl.Flush()
				continue
			}
			if e.Seq <= resumed || fromHistory[e.Seq] {
				continue
			}
			if !send(e) {
				return
			}
			fl.Flush()
		}
	}
}
