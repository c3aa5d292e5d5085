package walink

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestDispatcherOrderAndClose: events reach every handler in emission
// order even when a handler is slow; emit never blocks; close delivers
// what is queued and stops the goroutine.
func TestDispatcherOrderAndClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := &dispatcher{}
		var a, b []int
		d.add(func(e Event) {
			time.Sleep(time.Second) // slow handler: the bubble's clock makes this instant
			a = append(a, int(e.(TemporaryBan).Code))
		})
		d.add(func(e Event) { b = append(b, int(e.(TemporaryBan).Code)) })
		start := time.Now()
		for i := range 100 {
			d.emit(TemporaryBan{Code: i})
		}
		if time.Since(start) != 0 {
			t.Fatal("emit waited for a handler")
		}
		d.close()
		if len(a) != 100 || len(b) != 100 {
			t.Fatalf("delivered %d and %d of 100", len(a), len(b))
		}
		for i := range a {
			if a[i] != i || b[i] != i {
				t.Fatalf("out of order at %d: %d %d", i, a[i], b[i])
			}
		}
		d.emit(TemporaryBan{Code: 1}) // after close: dropped, no panic
	})
}

// TestDispatcherIdleExits: the goroutine exits once the queue is drained
// and a later emit starts a new one, keeping the order, including events
// a handler emits itself.
func TestDispatcherIdleExits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := &dispatcher{}
		var got []int
		// The first event holds the handler until all of the first batch
		// is queued, so what an event emits lands behind a known queue.
		release := make(chan struct{})
		d.add(func(e Event) {
			code := int(e.(TemporaryBan).Code)
			if code == 0 {
				<-release
			}
			got = append(got, code)
			if code%10 == 0 && code < 100 {
				d.emit(TemporaryBan{Code: code + 100}) // queued behind the rest
			}
		})
		idle := func() {
			t.Helper()
			synctest.Wait()
			d.wg.Wait() // would deadlock the bubble if run were still alive
			d.mu.Lock()
			defer d.mu.Unlock()
			if d.running || d.queue != nil {
				t.Fatalf("not idle: running %v, queue %v", d.running, d.queue)
			}
		}
		idle() // none before the first event
		for i := range 20 {
			d.emit(TemporaryBan{Code: i})
		}
		close(release)
		idle()
		d.emit(TemporaryBan{Code: 20})
		idle()
		d.close()
		want := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 100, 110, 20, 120}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("delivered %v, want %v", got, want)
		}
	})
}

// TestDispatcherConcurrentEmit: with emitters racing the goroutine's exit
// and restart, handlers still run one at a time, each emitter's events
// arrive in its order, and close waits for all of them.
func TestDispatcherConcurrentEmit(t *testing.T) {
	const emitters, each = 4, 2000
	d := &dispatcher{}
	var busy atomic.Int32
	last := make([]int, emitters) // only the handler touches it
	for i := range last {
		last[i] = -1
	}
	delivered := 0
	d.add(func(e Event) {
		if busy.Add(1) != 1 {
			t.Error("two handlers ran at once")
		}
		b := e.(TemporaryBan)
		if b.Code != last[b.Expire]+1 {
			t.Errorf("emitter %d: %d after %d", b.Expire, b.Code, last[b.Expire])
		}
		last[b.Expire] = b.Code
		delivered++
		busy.Add(-1)
	})
	var wg sync.WaitGroup
	for g := range emitters {
		wg.Go(func() {
			for i := range each {
				d.emit(TemporaryBan{Code: i, Expire: time.Duration(g)})
				if i%7 == 0 {
					runtime.Gosched() // let the queue drain now and then
				}
			}
		})
	}
	wg.Wait()
	d.close()
	if delivered != emitters*each {
		t.Fatalf("delivered %d of %d", delivered, emitters*each)
	}
}
