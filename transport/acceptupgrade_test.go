package transport_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/walinkdev/walink/transport"
)

// serverAnswer runs accept on the server end of a pipe and returns what
// it wrote and its error; the server end is closed after accept returns.
func serverAnswer(t *testing.T, accept func(net.Conn) (net.Conn, error)) ([]byte, error) {
	t.Helper()
	cli, srv := net.Pipe()
	defer cli.Close()
	errc := make(chan error, 1)
	go func() {
		_, err := accept(srv)
		srv.Close()
		errc <- err
	}()
	out, _ := io.ReadAll(cli)
	return out, <-errc
}

// TestAcceptUpgradeMatchesAcceptConn: AcceptUpgrade, given a request's
// fields, accepts, refuses and answers exactly as AcceptConn does given
// the request.
func TestAcceptUpgradeMatchesAcceptConn(t *testing.T) {
	const key = "dGhlIHNhbXBsZSBub25jZQ=="
	good := "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key + "\r\nOrigin: https://web.whatsapp.com\r\n"
	for _, tc := range []struct{ name, method, header string }{
		{"good", "GET", good},
		{"lenient", "GET", "Upgrade: websocket\r\nSec-WebSocket-Key: " + key + "\r\n"},
		{"token list", "GET", "Upgrade: h2c, WebSocket\r\nSec-WebSocket-Key: " + key + "\r\n"},
		{"own origin", "GET", strings.Replace(good, "https://web.whatsapp.com", "http://127.0.0.1:5", 1)},
		{"origin case", "GET", strings.Replace(good, "https://web.whatsapp.com", "HTTPS://WEB.whatsapp.com", 1)},
		{"no upgrade", "GET", "Sec-WebSocket-Key: " + key + "\r\n"},
		{"version 8", "GET", strings.Replace(good, "Version: 13", "Version: 8", 1)},
		{"no key", "GET", "Upgrade: websocket\r\nConnection: Upgrade\r\n"},
		{"blank key", "GET", "Upgrade: websocket\r\nSec-WebSocket-Key:  \r\n"},
		{"foreign origin", "GET", strings.Replace(good, "web.whatsapp.com", "evil.example", 1)},
		{"bad origin", "GET", strings.Replace(good, "https://web.whatsapp.com", "%zz", 1)},
		{"post", "POST", good},
		{"head", "HEAD", good},
	} {
		t.Run(tc.name, func(t *testing.T) {
			head := tc.method + " /ws/chat HTTP/1.1\r\nHost: 127.0.0.1:5\r\n" + tc.header + "\r\n"
			req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head)))
			if err != nil {
				t.Fatal(err)
			}
			f := transport.UpgradeRequest{
				Method: req.Method, Host: req.Host, Upgrade: req.Header.Get("Upgrade"),
				Version: req.Header.Get("Sec-WebSocket-Version"), Key: req.Header.Get("Sec-WebSocket-Key"), Origin: req.Header.Get("Origin"),
			}
			want, wantErr := serverAnswer(t, func(c net.Conn) (net.Conn, error) { return transport.AcceptConn(c, req, nil) })
			got, gotErr := serverAnswer(t, func(c net.Conn) (net.Conn, error) { return transport.AcceptUpgrade(c, f, nil) })
			if (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) {
				t.Fatalf("AcceptUpgrade: %v, AcceptConn: %v", gotErr, wantErr)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("AcceptUpgrade answered %q, AcceptConn %q", got, want)
			}
			if len(want) == 0 {
				t.Fatal("no answer")
			}
		})
	}
}
