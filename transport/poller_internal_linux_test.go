package transport

import (
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/noise"
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

// TestAwaitReadableReadAhead: a frame already read ahead with the last one
// (two small frames in one segment) is not waited for on the socket.
func TestAwaitReadableReadAhead(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	raw, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	ws := newWSServerConn(raw, nil)
	cipher, err := noise.NewCipher(make([]byte, 32), make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	c := newConn(ws, cipher, noise.NewDecoder(noise.DecoderConfig{}), keys.PublicKey{}, discard)
	defer c.Close()
	// 8 + 6 bytes: the first header read takes both frames.
	two := append(clientFrame(true, opBinary, []byte("ab"), 1), clientFrame(true, opBinary, nil, 2)...)
	two = append(two, clientFrame(true, opBinary, []byte("c"), 3)[:2]...) // and the start of a third
	if _, err := cc.Write(two); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	buf := make([]byte, 2)
	if n, err := ws.Read(buf); err != nil || string(buf[:n]) != "ab" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	done := make(chan struct{})
	go func() {
		c.AwaitReadable()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		raw.Close()
		<-done
		t.Fatal("AwaitReadable waited on the socket with a frame read ahead")
	}
	if p, err := NewPoller(); err == nil {
		if c.Park(p, func() {}) {
			t.Error("parked with a frame read ahead")
		}
		p.Close()
	}
	cc.Close() // the closing handshake ends at once
}
