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
