package walink

import (
	"testing"
	"testing/synctest"
	"time"
)

// TestDispatcherOrderAndClose: events reach every handler in emission
// order even when a handler is slow; emit never blocks; close delivers
// what is queued and stops the goroutine.
func TestDispatcherOrderAndClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := newDispatcher()
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
