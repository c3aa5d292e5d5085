package serve

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestReplicasResumeMissesNothing: replica A's event write takes its id
// first but commits last (held before commit), while replica B writes
// another event. A stream on B that resumes (Last-Event-ID) from the last
// event it saw must still get both: no event may commit below an id a
// reader has already been given.
func TestReplicasResumeMissesNothing(t *testing.T) {
	leases := &testLeases{allow: func(string, string) bool { return false }} // nothing connects
	rs := newReplicas(t, 2, leases, nil)
	a, b := rs[0], rs[1]

	create := func(e *env) string {
		return e.must(201, "POST", "/v1/sessions", map[string]any{"start": false})["id"].(string)
	}
	isCreated := func(id string) func(sseEvent) bool {
		return func(ev sseEvent) bool { return ev.Name == "session_created" && ev.Data["session_id"] == id }
	}
	// A starting point to resume from.
	marker := create(b)
	s1 := b.stream("/v1/events", "0")
	last := s1.next(t, 5*time.Second, isCreated(marker)).ID

	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	hook := func() {
		once.Do(func() {
			close(entered)
			<-release
		})
	}
	a.svc.commitHook.Store(&hook)
	post := func(e *env, ids chan<- string) {
		req, _ := http.NewRequest("POST", e.http.URL+"/v1/sessions", bytes.NewReader([]byte(`{"start":false}`)))
		req.Header.Set("Authorization", "Bearer "+testKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			ids <- ""
			return
		}
		defer resp.Body.Close()
		var v struct{ ID string }
		if resp.StatusCode != 201 {
			t.Errorf("create: %d", resp.StatusCode)
		}
		json.NewDecoder(resp.Body).Decode(&v)
		ids <- v.ID
	}
	idA, idB := make(chan string, 1), make(chan string, 1)
	go post(a, idA)
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("A's write did not reach its commit")
	}
	go post(b, idB)

	// Whatever the stream shows while A's write is held is what a client
	// would have seen before dropping its connection.
	got := map[string]bool{}
	deadline := time.After(time.Second)
wait:
	for {
		select {
		case ev, ok := <-s1.events:
			if !ok {
				t.Fatal("stream ended")
			}
			if ev.Name == "session_created" {
				last = ev.ID
				got[ev.Data["session_id"].(string)] = true
				t.Logf("seen while A's write is held: id %s", ev.ID)
			}
		case <-deadline:
			break wait
		}
	}
	s1.close()
	close(release)
	ida, idb := <-idA, <-idB
	if ida == "" || idb == "" {
		t.Fatal("a create failed")
	}
	s2 := b.stream("/v1/events", last)
	timeout := time.After(10 * time.Second)
	for !got[ida] || !got[idb] {
		select {
		case ev, ok := <-s2.events:
			if !ok {
				t.Fatal("stream ended")
			}
			if ev.Name == "session_created" {
				got[ev.Data["session_id"].(string)] = true
			}
		case <-timeout:
			n, _ := strconv.ParseInt(last, 10, 64)
			t.Fatalf("resumed after id %d: got the creation of A's session %v, of B's %v; an event was committed below an id already delivered", n, got[ida], got[idb])
		}
	}
}

// TestReplicaStreamsShareReads: 20 streams on one replica, sessions
// created through both replicas at once. Every stream gets every
// creation once and in id order, and the replica reads the table for
// them about once per event, not once per event per stream.
func TestReplicaStreamsShareReads(t *testing.T) {
	leases := &testLeases{allow: func(string, string) bool { return false }} // nothing connects
	rs := newReplicas(t, 2, leases, nil)
	const nStreams, nCreates = 20, 30
	streams := make([]*stream, nStreams)
	for i := range streams {
		streams[i] = rs[1].stream("/v1/events", "")
	}
	var wg sync.WaitGroup
	ids := make(chan string, nCreates)
	for i := range nCreates {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids <- rs[i%2].must(201, "POST", "/v1/sessions", map[string]any{"start": false})["id"].(string)
		}()
	}
	wg.Wait()
	close(ids)
	want := map[string]bool{}
	for id := range ids {
		want[id] = true
	}
	for i, s := range streams {
		got := map[string]bool{}
		prev := int64(-1)
		timeout := time.After(10 * time.Second)
		for len(got) < nCreates {
			select {
			case ev, ok := <-s.events:
				if !ok {
					t.Fatalf("stream %d ended", i)
				}
				n, _ := strconv.ParseInt(ev.ID, 10, 64)
				if n <= prev {
					t.Fatalf("stream %d: id %d after %d", i, n, prev)
				}
				prev = n
				if ev.Name != "session_created" {
					continue
				}
				id := ev.Data["session_id"].(string)
				if !want[id] || got[id] {
					t.Fatalf("stream %d: creation of %s unexpected or repeated", i, id)
				}
				got[id] = true
			case <-timeout:
				t.Fatalf("stream %d: %d of %d creations", i, len(got), nCreates)
			}
		}
	}
	if r := rs[1].svc.tail.reads.Load(); r > 2*nCreates {
		t.Errorf("%d table reads for %d events on %d streams", r, nCreates, nStreams)
	}
	t.Logf("%d table reads for %d events on %d streams", rs[1].svc.tail.reads.Load(), nCreates, nStreams)
}

// TestReplicaStreamBehindTail: with the shared copy cut to a few events,
// streams that fall behind it (a slow one resuming from the start, a
// session's stream whose last event is old) read the table themselves and
// still get every event once, in order.
func TestReplicaStreamBehindTail(t *testing.T) {
	leases := &testLeases{allow: func(string, string) bool { return false }} // nothing connects
	rs := newReplicas(t, 2, leases, nil)
	rs[1].svc.tail.mu.Lock()
	rs[1].svc.tail.keep = 2
	rs[1].svc.tail.mu.Unlock()
	create := func(i int) string {
		return rs[i%2].must(201, "POST", "/v1/sessions", map[string]any{"start": false})["id"].(string)
	}
	first := create(0)
	all := rs[1].stream("/v1/events", "")
	one := rs[1].stream("/v1/sessions/"+first+"/events", "")
	const n = 24
	var ids []string
	for i := range n {
		ids = append(ids, create(i))
	}
	// first's stream is announced its next event long after its last.
	rs[0].must(204, "DELETE", "/v1/sessions/"+first, nil)
	prev := int64(-1)
	for _, want := range ids {
		for {
			ev := all.next(t, 10*time.Second, func(sseEvent) bool { return true })
			id, _ := strconv.ParseInt(ev.ID, 10, 64)
			if id <= prev {
				t.Fatalf("id %d after %d", id, prev)
			}
			prev = id
			if ev.Name == "session_created" {
				if got := ev.Data["session_id"]; got != want {
					t.Fatalf("creation of %v, want %s", got, want)
				}
				break
			}
		}
	}
	if ev := one.next(t, 10*time.Second, func(sseEvent) bool { return true }); ev.Name != "session_deleted" || ev.Data["session_id"] != first {
		t.Fatalf("session stream got %+v", ev)
	}
	if r := rs[1].svc.tail.reads.Load(); r == 0 {
		t.Error("no read through the shared copy")
	}
}
