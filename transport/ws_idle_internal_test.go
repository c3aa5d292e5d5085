package transport

import (
	"io"
	"net"
	"testing"
	"time"
)

// waitReadyIdle gives up without consuming anything when nothing arrives
// in time (the timeout does not stick), and a header whose first byte
// arrived before the deadline is read whole however late the rest comes.
func TestWSWaitReadyIdle(t *testing.T) {
	cc, sc := net.Pipe()
	defer sc.Close()
	c := newWSConn(cc, cc)
	defer cc.Close()
	const d = 10 * time.Millisecond

	if _, idle, err := c.waitReadyIdle(d); !idle || err != nil {
		t.Fatalf("nothing sent: idle %v, %v", idle, err)
	}
	frame := serverFrame(true, opBinary, []byte("hello"))
	go func() {
		sc.Write(frame[:1])
		time.Sleep(5 * d)
		sc.Write(frame[1:])
	}()
	n, idle, err := c.waitReadyIdle(d)
	if idle || err != nil || n != 5 {
		t.Fatalf("split header: n %d, idle %v, %v", n, idle, err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("payload %q, %v", buf, err)
	}

	// A 126-length header split after its first 2 bytes, and a ping
	// answered in between.
	big := serverFrame(true, opBinary, make([]byte, 300))
	ping := serverFrame(true, opPing, []byte("p"))
	go func() {
		sc.Write(ping)
		io.ReadFull(sc, make([]byte, 2+4+1)) // the pong
		sc.Write(big[:2])
		time.Sleep(5 * d)
		sc.Write(big[2:])
	}()
	if n, idle, err = c.waitReadyIdle(d); idle || err != nil || n != 300 {
		t.Fatalf("extended length: n %d, idle %v, %v", n, idle, err)
	}
	if _, err := io.ReadFull(c, make([]byte, 300)); err != nil {
		t.Fatal(err)
	}

	// A payload that comes after the idle deadline is read on (the
	// deadline is waitReadyIdle's, not the reader's).
	slow := serverFrame(true, opBinary, []byte("late payload"))
	go func() {
		sc.Write(slow[:2])
		time.Sleep(5 * d)
		sc.Write(slow[2:])
	}()
	if n, idle, err = c.waitReadyIdle(d); idle || err != nil || n != len("late payload") {
		t.Fatalf("slow payload: n %d, idle %v, %v", n, idle, err)
	}
	lp := make([]byte, n)
	if _, err := io.ReadFull(c, lp); err != nil || string(lp) != "late payload" {
		t.Fatalf("slow payload %q, %v", lp, err)
	}

	// The stream ending between frames is io.EOF; inside a header, an
	// unexpected EOF.
	go func() { sc.Write(frame[:1]); sc.Close() }()
	if _, _, err := c.waitReadyIdle(d); err != io.ErrUnexpectedEOF {
		t.Fatalf("cut header: %v", err)
	}
	cc2, sc2 := net.Pipe()
	c2 := newWSConn(cc2, cc2)
	sc2.Close()
	if _, _, err := c2.waitReadyIdle(d); err != io.EOF {
		t.Fatalf("end between frames: %v", err)
	}
}
