package watest

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"slices"
	"testing"
	"testing/iotest"

	"google.golang.org/protobuf/proto"

	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/transport"
	"github.com/walinkdev/walink/waproto"
)

// rest returns what br holds and what is left in its source.
func rest(br *bufio.Reader) []byte {
	b, _ := io.ReadAll(br)
	return b
}

// checkQuickRequest: quickRequest accepts only what http.ReadRequest
// accepts, with the same fields AcceptConn reads and the same bytes left
// behind the head; when it declines it consumes nothing.
func checkQuickRequest(t *testing.T, in []byte, src io.Reader) {
	br := bufio.NewReaderSize(src, 4096)
	q := quickRequest(br)
	// quickScan, the server's path, reads the same and gives
	// AcceptUpgrade the fields AcceptConn reads of the request.
	qh, qok := quickScan(bufio.NewReaderSize(bytes.NewReader(in), 4096))
	if qok != (q != nil) {
		t.Fatalf("quickScan ok %v, quickRequest %v: %q", qok, q != nil, in)
	}
	if qok {
		want := transport.UpgradeRequest{
			Method: q.Method, Host: q.Host, Upgrade: q.Header.Get("Upgrade"), Version: q.Header.Get("Sec-WebSocket-Version"),
			Key: q.Header.Get("Sec-WebSocket-Key"), Origin: q.Header.Get("Origin"),
		}
		if got := qh.upgrade(); got != want {
			t.Fatalf("upgrade fields %+v, request's %+v (input %q)", got, want, in)
		}
	}
	ref, refErr := http.ReadRequest(bufio.NewReaderSize(bytes.NewReader(in), 4096))
	if q == nil {
		// Declined: the fallback on the same reader reads as on a fresh one.
		r2, err := http.ReadRequest(br)
		if (err == nil) != (refErr == nil) {
			t.Fatalf("fallback after a decline: err %v, fresh reader: %v", err, refErr)
		}
		if err == nil && (r2.Method != ref.Method || r2.Host != ref.Host) {
			t.Fatalf("fallback after a decline read %q %q, fresh %q %q", r2.Method, r2.Host, ref.Method, ref.Host)
		}
		return
	}
	if refErr != nil {
		t.Fatalf("quick path accepted what ReadRequest refuses (%v): %q", refErr, in)
	}
	if q.Method != ref.Method || q.Host != ref.Host || q.Proto != ref.Proto || q.ProtoMajor != ref.ProtoMajor || q.ProtoMinor != ref.ProtoMinor || q.RequestURI != ref.RequestURI {
		t.Fatalf("request line/host: quick %q %q %q %q, ReadRequest %q %q %q %q", q.Method, q.RequestURI, q.Proto, q.Host, ref.Method, ref.RequestURI, ref.Proto, ref.Host)
	}
	for _, h := range quickHeaders {
		if got, want := q.Header.Values(h.key), ref.Header.Values(h.key); !slices.Equal(got, want) {
			t.Fatalf("%s: quick %q, ReadRequest %q (input %q)", h.key, got, want, in)
		}
	}
	for k, v := range q.Header {
		if !slices.Equal(v, ref.Header[k]) {
			t.Fatalf("header %s: quick %q, ReadRequest %q", k, v, ref.Header[k])
		}
	}
	// The bytes behind the head.
	rbr := bufio.NewReaderSize(bytes.NewReader(in), 4096)
	if _, err := http.ReadRequest(rbr); err != nil {
		t.Fatal(err)
	}
	if got, want := rest(br), rest(rbr); !bytes.Equal(got, want) {
		t.Fatalf("left behind the head: quick %q, ReadRequest %q", got, want)
	}
}

func FuzzQuickRequest(f *testing.F) {
	f.Add([]byte(upgradeHead + "Origin: https://web.whatsapp.com\r\n\r\n\x57\x41\x06\x03"))
	f.Add([]byte("GET /ws/chat HTTP/1.1\r\nhost: 127.0.0.1:5\r\nupgrade:websocket\r\nSEC-WEBSOCKET-KEY: \t k \r\nUser-Agent: x\r\n\r\n"))
	f.Add([]byte("GET /ws/chat HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"))
	f.Add([]byte("GET /ws/chat HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n"))
	f.Add([]byte("GET /ws/chat HTTP/1.1\nHost: a\n\n"))
	f.Add([]byte("GET /ws/chat HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"))
	f.Add([]byte("GET /ws/chat HTTP/1.1\r\nX : y\r\n\r\n"))
	f.Add([]byte("GET /ws/chat HTTP/1.1\r\n\r\n"))
	f.Add([]byte("GET /ws/chat?x=1 HTTP/1.1\r\n\r\n"))
	f.Add([]byte("GET /ws/chat HTTP/1.0\r\nUpgrade: \xff\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		checkQuickRequest(t, in, bytes.NewReader(in))
		checkQuickRequest(t, in, iotest.OneByteReader(bytes.NewReader(in)))
	})
}

// FuzzQuickRegistration: decodePayload's quick reader, when it reads a
// payload at all, reads what proto.Unmarshal reads, and accepts only what
// it accepts.
func FuzzQuickRegistration(f *testing.F) {
	c := newCompanion(f)
	f.Add(c.registrationPayload())
	f.Add(loginPayloadFor(c))
	f.Add([]byte{})
	f.Add([]byte{0x08, 0x01, 0x08, 0x02})
	f.Add([]byte{0x9a, 0x01, 0x02, 0x0a, 0x00, 0x9a, 0x01, 0x00})
	f.Add([]byte{0x2a, 0x04, 0x12, 0x02, 0x08, 0x02})
	// appVersion twice: proto.Unmarshal merges the two.
	f.Add([]byte{0x2a, 0x08, 0x12, 0x02, 0x08, 0x02, 0x12, 0x02, 0x10, 0x03})
	f.Fuzz(func(t *testing.T, b []byte) {
		var q clientPayload
		ok := quickPayload(b, &q)
		var m waproto.ClientPayload
		err := proto.Unmarshal(b, &m)
		if !ok {
			return
		}
		if err != nil {
			t.Fatalf("quick reader accepted what proto.Unmarshal refuses (%v): %x", err, b)
		}
		want := payloadOf(&m)
		if q.hasUsername != want.hasUsername || q.username != want.username || q.device != want.device || q.appVersion != want.appVersion {
			t.Fatalf("quick %+v, proto %+v", q, want)
		}
		if q.hasPairing != want.hasPairing {
			t.Fatalf("pairing data: quick %v, proto %v", q.hasPairing, want.hasPairing)
		}
		if q.hasPairing {
			a, w := q.pairing, want.pairing
			for i, pair := range [][2][]byte{{a.eRegid, w.eRegid}, {a.eKeytype, w.eKeytype}, {a.eIdent, w.eIdent}, {a.eSkeyID, w.eSkeyID}, {a.eSkeyVal, w.eSkeyVal}, {a.eSkeySig, w.eSkeySig}, {a.deviceProps, w.deviceProps}} {
				if !bytes.Equal(pair[0], pair[1]) {
					t.Fatalf("pairing field %d: quick %x, proto %x", i, pair[0], pair[1])
				}
			}
		}
	})
}

// loginPayloadFor is c's login payload as device 3 of a made-up number.
func loginPayloadFor(c *companion) []byte {
	c.id = jid.NewAD("15551234567", 3, jid.DefaultUserServer)
	return c.loginPayload()
}

// TestQuickPaths: real clients' requests and payloads take the quick
// paths (else the fuzz tests above would pass with them never taken).
func TestQuickPaths(t *testing.T) {
	c := newCompanion(t)
	for _, b := range [][]byte{c.registrationPayload(), loginPayloadFor(c)} {
		var p clientPayload
		if !quickPayload(b, &p) {
			t.Errorf("payload %x left to proto.Unmarshal", b)
		}
	}
	br := bufio.NewReader(bytes.NewReader([]byte(upgradeHead + "Origin: https://web.whatsapp.com\r\nUser-Agent: x\r\n\r\nrest")))
	r := quickRequest(br)
	if r == nil || r.Host != "x" || r.Header.Get("Sec-WebSocket-Key") != "dGhlIHNhbXBsZSBub25jZQ==" {
		t.Fatalf("upgrade request: %+v", r)
	}
	if got := rest(br); string(got) != "rest" {
		t.Fatalf("behind the head: %q", got)
	}
}

// BenchmarkUpgradeRequest: a client's upgrade head read by quickRequest
// and by http.ReadRequest.
func BenchmarkUpgradeRequest(b *testing.B) {
	head := []byte("GET /ws/chat HTTP/1.1\r\nHost: 127.0.0.1:5222\r\nUser-Agent: walink\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: https://web.whatsapp.com\r\n\r\n")
	rd := bytes.NewReader(head)
	br := bufio.NewReaderSize(rd, 4096)
	for _, impl := range []string{"quick", "net-http"} {
		b.Run("impl="+impl, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rd.Reset(head)
				br.Reset(rd)
				if impl == "quick" {
					if quickRequest(br) == nil {
						b.Fatal("declined")
					}
				} else if _, err := http.ReadRequest(br); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecodePayload: a registration payload read by quickPayload and
// by proto.Unmarshal.
func BenchmarkDecodePayload(b *testing.B) {
	payload := newCompanion(b).registrationPayload()
	b.Run("impl=quick", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var p clientPayload
			if !quickPayload(payload, &p) {
				b.Fatal("declined")
			}
		}
	})
	b.Run("impl=proto", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var m waproto.ClientPayload
			if err := proto.Unmarshal(payload, &m); err != nil {
				b.Fatal(err)
			}
			_ = payloadOf(&m)
		}
	})
}
