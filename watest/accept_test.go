package watest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/noise"
)

func startForAccept(t *testing.T) *Server {
	t.Helper()
	s, err := Start(context.Background(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func rawDial(t *testing.T, s *Server) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(s.ControlURL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

const upgradeHead = "GET /ws/chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"

// TestAcceptRefusals: the upgrade path read without net/http's server
// refuses what Accept refuses, with the same statuses, and answers a
// request it cannot parse with 400.
func TestAcceptRefusals(t *testing.T) {
	s := startForAccept(t)
	for head, want := range map[string]int{
		upgradeHead + "Origin: https://evil.example\r\n\r\n":                                            http.StatusForbidden,
		strings.Replace(upgradeHead, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "", 1) + "\r\n": http.StatusBadRequest,
		strings.Replace(upgradeHead, "Version: 13", "Version: 8", 1) + "\r\n":                           http.StatusUpgradeRequired,
		strings.Replace(upgradeHead, "Upgrade: websocket\r\n", "", 1) + "\r\n":                          http.StatusUpgradeRequired,
		"GET /ws/chat HTTP/1.1\r\nHost x\r\n\r\n":                                                       http.StatusBadRequest,
	} {
		c, br := rawDial(t, s)
		io.WriteString(c, head)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Errorf("%q: %v", head, err)
			continue
		}
		if resp.StatusCode != want {
			t.Errorf("%q: status %d, want %d", head, resp.StatusCode, want)
		}
	}
	// The 101 answers the key as RFC 6455 §1.3 computes it.
	c, br := rawDial(t, s)
	io.WriteString(c, upgradeHead+"Origin: https://web.whatsapp.com\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
}

// TestAcceptFirstMessageWithRequest: a client that sends its intro and
// message 1 in the same segment as its upgrade request is answered with
// message 2 (the bytes behind the request head are kept), and the control
// API answers on the same port, also on a connection that asked for
// something else first.
func TestAcceptFirstMessageWithRequest(t *testing.T) {
	s := startForAccept(t)
	kp, _ := keys.NewKeyPair(rand.Reader)
	in, err := noise.NewInitiator(noise.InitiatorConfig{Static: kp, Rand: rand.Reader, InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	msg1, err := in.ClientHello()
	if err != nil {
		t.Fatal(err)
	}
	wire, _ := noise.AppendIntro(nil, noise.HeaderV3, nil)
	wire, _ = noise.AppendFrame(wire, msg1)
	// One masked binary frame (key 0: the payload goes as it is).
	frame := append([]byte{0x82, 0x80 | byte(len(wire)), 0, 0, 0, 0}, wire...)
	if len(wire) > 125 {
		t.Fatalf("hello of %d bytes", len(wire))
	}
	c, br := rawDial(t, s)
	io.WriteString(c, upgradeHead+"\r\n"+string(frame))
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	var h [4]byte
	if _, err := io.ReadFull(br, h[:2]); err != nil || h[0] != 0x82 {
		t.Fatalf("server hello frame header % x, %v", h[:2], err)
	}
	n := int(h[1] & 0x7F)
	if n == 126 {
		io.ReadFull(br, h[2:4])
		n = int(binary.BigEndian.Uint16(h[2:4]))
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(br, body); err != nil {
		t.Fatal(err)
	}
	dec := noise.NewDecoder(noise.DecoderConfig{})
	dec.Fill(strings.NewReader(string(body)))
	msg2, err := dec.Next()
	if err != nil || msg2 == nil {
		t.Fatalf("server hello frame: %v", err)
	}
	if _, _, err := in.ReadServerHello(msg2); err != nil {
		t.Fatalf("server hello: %v", err)
	}

	// Control API, then a WebSocket upgrade, on one kept-alive connection:
	// net/http's server serves both (the first request was not an upgrade).
	c, br = rawDial(t, s)
	io.WriteString(c, "GET /config HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err = http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /config: %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	io.WriteString(c, upgradeHead+"\r\n")
	resp, err = http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade after GET /config: %v %v", resp, err)
	}
}

// TestCloseWithSilentConnection: Close does not wait for a connection that
// never sent its request head.
func TestCloseWithSilentConnection(t *testing.T) {
	s, err := Start(context.Background(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", strings.TrimPrefix(s.ControlURL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /ws/") // not even the request line
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	s.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("the silent connection is still open")
	}
}

// TestCloseDuringHandshake: Close ends handshakes in progress at once (the
// handshake watches no context: the socket, still pending, is closed),
// both one waiting for the client's hello and one waiting for its finish,
// and leaves no goroutine behind.
func TestCloseDuringHandshake(t *testing.T) {
	before := runtime.NumGoroutine()
	s, err := Start(context.Background(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// A client that upgrades and sends nothing more.
	c1, br1 := rawDial(t, s)
	io.WriteString(c1, upgradeHead+"\r\n")
	if resp, err := http.ReadResponse(br1, nil); err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	// A client that sends its hello, reads the server's, and stalls.
	kp, _ := keys.NewKeyPair(rand.Reader)
	in, err := noise.NewInitiator(noise.InitiatorConfig{Static: kp, Rand: rand.Reader, InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	msg1, err := in.ClientHello()
	if err != nil {
		t.Fatal(err)
	}
	wire, _ := noise.AppendIntro(nil, noise.HeaderV3, nil)
	wire, _ = noise.AppendFrame(wire, msg1)
	c2, br2 := rawDial(t, s)
	io.WriteString(c2, upgradeHead+"\r\n"+string(append([]byte{0x82, 0x80 | byte(len(wire)), 0, 0, 0, 0}, wire...)))
	if resp, err := http.ReadResponse(br2, nil); err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	if _, err := br2.Peek(1); err != nil { // the server hello's frame: the server waits for the finish
		t.Fatal(err)
	}
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v with two handshakes in progress", d)
	}
	for i, br := range []*bufio.Reader{br1, br2} {
		if _, err := io.Copy(io.Discard, br); err != nil && !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "reset") {
			t.Errorf("connection %d: %v", i+1, err)
		}
	}
	checkGoroutines(t, before)
}
