package serve

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
)

// eventTail is one replica's shared copy of the newest stored events, for
// its SSE streams. With several replicas a stream learns of an event only
// as a hint (see stream) and must read the table after the last id it
// sent; with many open streams, one read per stream per event made every
// write cost a query per stream. Instead the streams of a replica read
// through this tail: the first stream that needs events beyond what it
// holds reads the table once for all of them (the others wait for that
// read and take their events from the copy).
//
// Invariant: evs holds every event with floor < seq <= head, in seq
// order. It holds because ids commit in id order across replicas
// (insertEvents): a read started after the commit of id n was announced
// sees every id up to n, and no id at or below what a read returned
// commits later.
type eventTail struct {
	db   *DB
	keep int // tailKeep; tests shorten it

	mu      sync.Mutex
	started bool
	floor   int64
	head    int64
	evs     []StoredEvent
	want    int64         // highest id announced to a waiting stream
	reading chan struct{} // closed when the read in flight ends; nil when none is

	reads atomic.Int64 // table reads, for tests
}

// tailKeep (to twice as many) bounds the copy; a stream further behind
// reads the table itself.
const tailKeep = 1024

func newEventTail(d *DB) *eventTail { return &eventTail{db: d, keep: tailKeep} }

// since returns the events of session ("" = all) with last < seq, up to at
// least high (an id announced to the caller, so committed). ok is false
// when last is below what the copy holds: the caller reads the table.
func (t *eventTail) since(ctx context.Context, session string, last, high int64) (evs []StoredEvent, ok bool, err error) {
	t.mu.Lock()
	if !t.started {
		// Empty and consistent: nothing is claimed below last.
		t.started, t.floor, t.head = true, last, last
	}
	t.want = max(t.want, high)
	for t.head < high {
		if t.reading != nil {
			// Someone else's read may have started before high was
			// announced: wait for it, then look again.
			ch := t.reading
			t.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				return nil, false, ctx.Err()
			}
			t.mu.Lock()
			continue
		}
		if err := t.read(ctx); err != nil {
			t.mu.Unlock()
			return nil, false, err
		}
	}
	defer t.mu.Unlock()
	if last < t.floor {
		return nil, false, nil
	}
	i := sort.Search(len(t.evs), func(i int) bool { return t.evs[i].Seq > last })
	for _, e := range t.evs[i:] {
		if session == "" || e.Session == session {
			evs = append(evs, e)
		}
	}
	return evs, true, nil
}

// read reads the table after head, for every stream waiting; t.mu is held
// on entry and on return, and released while the query runs.
func (t *eventTail) read(ctx context.Context) error {
	ch := make(chan struct{})
	t.reading = ch
	from, want := t.head, t.want
	t.mu.Unlock()
	t.reads.Add(1)
	var got []StoredEvent
	var err error
	for {
		var page []StoredEvent
		page, err = t.db.eventsAfter(ctx, "", from, 500)
		if err != nil {
			break
		}
		got = append(got, page...)
		if len(page) < 500 {
			break
		}
		from = page[len(page)-1].Seq
	}
	t.mu.Lock()
	t.reading = nil
	close(ch)
	if err != nil {
		return err
	}
	for _, e := range got {
		if e.Seq > t.head {
			t.evs = append(t.evs, e)
			t.head = e.Seq
		}
	}
	// Every id up to want was committed before this read began (its
	// announcement had arrived), so the read saw all of them, even where
	// it returned nothing (a gap, or events already pruned).
	t.head = max(t.head, want)
	if len(t.evs) > 2*t.keep { // amortized: one copy per keep events
		n := len(t.evs) - t.keep
		t.floor = t.evs[n-1].Seq
		t.evs = append([]StoredEvent(nil), t.evs[n:]...)
	}
	return nil
}
