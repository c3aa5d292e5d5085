package transport

import (
	"context"
	"crypto/rand"
	"net"
	"testing"
	"time"
	"unsafe"

	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/noise"
)

// TestServerStateAndParkAllocs: over Accept's WebSocket, ServerHandshake
// puts the Conn, its decoder and its cipher in the WebSocket's allocation
// (serverState), and parking the connection again (after the first time,
// which looks up the socket's RawConn) allocates nothing.
func TestServerStateAndParkAllocs(t *testing.T) {
	kp := func() keys.KeyPair {
		k, err := keys.NewKeyPair(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	root, server, client, inter := kp(), kp(), kp(), kp()
	now := time.Now()
	chain, err := noise.NewCertChain(rand.Reader, root.Private, inter, server.Public, noise.CertOptions{
		IntermediateSerial: 7, LeafSerial: 1, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cerr := make(chan error, 1)
	var cc net.Conn
	go func() {
		var err error
		if cc, err = net.Dial("tcp", ln.Addr().String()); err != nil {
			cerr <- err
			return
		}
		_, err = Handshake(ctx, newWSConn(cc, cc), ClientConfig{NoiseKey: client, RootKey: root.Public, Payload: []byte("payload")})
		cerr <- err
	}()
	raw, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	ws := newWSServerConn(raw, nil)
	st := ws.rest
	c, hello, err := ServerHandshake(ctx, ws, ServerConfig{Static: server, CertChain: chain})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-cerr; err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	if string(hello.Payload) != "payload" {
		t.Fatalf("payload %q", hello.Payload)
	}
	if st == nil || ws != &st.ws || c != &st.conn || c.dec != &st.dec || c.cipher != &st.cipher || ws.rest != nil {
		t.Fatal("the server Conn's state is not in the WebSocket's allocation")
	}
	if raceEnabled {
		return // sync.Pool drops items at random under the race detector
	}
	p, err := NewPoller()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	resume := func() {}
	park := func() {
		if !c.Park(p, resume) {
			t.Fatal("Park = false")
		}
		// A read deadline takes the parking back; then none is set.
		if ws.unpark(false, true) == nil {
			t.Fatal("the parking was not taken back")
		}
		ws.unpark(false, false)
	}
	park()
	if a := testing.AllocsPerRun(100, park); a != 0 {
		t.Errorf("%v allocations per Park, want 0", a)
	}
}

// TestServerStateSize: a server connection's state stays in the 704-byte
// size class (on 64-bit systems), what its four objects took before they
// were one: a field more must come out of something else, or it costs
// every connected device 64 bytes.
func TestServerStateSize(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("sizes of a 64-bit system")
	}
	if n := unsafe.Sizeof(serverState{}); n > 704 {
		t.Errorf("serverState is %d bytes, want at most 704", n)
	}
}
