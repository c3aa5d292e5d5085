package transport

import (
	"syscall"
	"testing"
	"time"
)

func socketpair(t *testing.T) (a, b int) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	return fds[0], fds[1]
}

// signal returns a resume function that reports on ch.
func signal(ch chan string, name string) func() { return func() { ch <- name } }

func expect(t *testing.T, ch chan string, want string) {
	t.Helper()
	select {
	case got := <-ch:
		if got != want {
			t.Fatalf("resumed %q, want %q", got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%q not resumed", want)
	}
}

func expectNone(t *testing.T, ch chan string) {
	t.Helper()
	select {
	case got := <-ch:
		t.Fatalf("%q resumed", got)
	case <-time.After(50 * time.Millisecond):
	}
}

// TestPollerSlots: no goroutine runs before the first parking, a taken parking cannot be taken or fire again, a
// descriptor number reused after close is registered afresh in the same
// slot under a new generation, a stale reference to the old parking does
// not touch the new one, a socket readable already when parked fires at
// once, and Close resumes what is parked and refuses new parkings.
func TestPollerSlots(t *testing.T) {
	p, err := NewPoller()
	if err != nil {
		t.Fatal(err)
	}
	if p.started {
		// A goroutine in a system call would keep a testing/synctest
		// bubble (a server over net.Pipe) from ever being idle.
		t.Error("the poller's goroutine started before anything parked")
	}
	ch := make(chan string, 10)

	a0, a1 := socketpair(t)
	refA, err := p.add(uintptr(a0), signal(ch, "a"))
	if err != nil {
		t.Fatal(err)
	}
	if fn := refA.take(); fn == nil {
		t.Fatal("take of a parked socket = nil")
	}
	if fn := refA.take(); fn != nil {
		t.Fatal("second take of one parking returned its resume again")
	}
	syscall.Write(a1, []byte("x")) // unregistered: must not fire
	expectNone(t, ch)
	syscall.Close(a0)
	syscall.Close(a1)

	b0, b1 := socketpair(t) // most likely a0's and a1's numbers again
	refB, err := p.add(uintptr(b0), signal(ch, "b"))
	if err != nil {
		t.Fatalf("add of a reused descriptor number: %v", err)
	}
	if refB.slot != refA.slot || refB.gen == refA.gen {
		t.Errorf("slot reuse: a = %+v, b = %+v", refA, refB)
	}
	if fn := refA.take(); fn != nil {
		t.Fatal("stale reference took the new parking")
	}
	syscall.Write(b1, []byte("x"))
	expect(t, ch, "b")
	if fn := refB.take(); fn != nil {
		t.Fatal("take after the parking fired returned its resume again")
	}

	// Readable before it is parked: fires at once (level-triggered add).
	if _, err := p.add(uintptr(b0), signal(ch, "b again")); err != nil {
		t.Fatal(err)
	}
	expect(t, ch, "b again")

	// Fires once: data still unread, a second event would be a bug.
	expectNone(t, ch)

	c0, c1 := socketpair(t)
	if _, err := p.add(uintptr(c0), signal(ch, "c")); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	expect(t, ch, "c")
	if _, err := p.add(uintptr(c0), signal(ch, "late")); err == nil {
		t.Error("add after Close succeeded")
	}
	for _, fd := range []int{b0, b1, c0, c1} {
		syscall.Close(fd)
	}
}
