package transport

import (
	"bufio"
	"context"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// captureRequest listens, takes one connection, and returns the bytes of
// the request it read (up to the blank line); the dial's answer is EOF.
func captureRequest(t *testing.T) (addr string, got <-chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan string, 1)
	go func() {
		defer ln.Close()
		c, err := ln.Accept()
		if err != nil {
			ch <- ""
			return
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(c)
		var sb strings.Builder
		for {
			line, err := br.ReadString('\n')
			sb.WriteString(line)
			if err != nil || line == "\r\n" {
				break
			}
		}
		ch <- sb.String()
	}()
	return ln.Addr().String(), ch
}

var hostLine = regexp.MustCompile(`Host: 127\.0\.0\.1:\d+\r\n`)

var wsKeyLine = regexp.MustCompile(`Sec-Websocket-Key: [A-Za-z0-9+/=]+\r\n`)

// TestDialDirectRequestAsNetHTTP: the direct path writes byte for byte the
// upgrade request net/http's Transport writes (the real server has always
// been sent that one), with and without headers of the caller's.
func TestDialDirectRequestAsNetHTTP(t *testing.T) {
	headers := []http.Header{
		nil,
		{"X-Test": {"1", " two "}, "User-Agent": {"walink-test"}, "Accept-Language": {"en"}},
		{"User-Agent": {""}, "Accept-Encoding": {"identity"}, "Upgrade": {"h2c"}, "Origin": {"https://evil.example"}},
		{"x-lower": {"a"}, "Host": {"elsewhere.example"}, "Range": {"bytes=0-1"}},
	}
	for _, h := range headers {
		var reqs [2]string
		for i, direct := range []bool{false, true} {
			addr, got := captureRequest(t)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			wsURL := "ws://" + addr + "/ws/chat?x=1"
			u, _ := url.Parse("http://" + addr + "/ws/chat?x=1")
			opts := &DialOptions{Header: h}
			var err error
			if direct {
				_, err = dialDirect(ctx, u, "a2V5a2V5a2V5a2V5a2V5a2==", opts)
			} else {
				_, err = dialHTTP(ctx, wsURL, u, "a2V5a2V5a2V5a2V5a2V5a2==", nil, opts)
			}
			cancel()
			if err == nil {
				t.Fatal("dial to a server that answers nothing succeeded")
			}
			reqs[i] = <-got
		}
		for i := range reqs {
			reqs[i] = hostLine.ReplaceAllString(reqs[i], "Host: 127.0.0.1:PORT\r\n")
		}
		if reqs[0] == "" || reqs[0] != reqs[1] {
			t.Errorf("headers %v:\nnet/http: %q\ndirect:   %q", h, reqs[0], reqs[1])
		}
	}
	// Through Dial, the key is a fresh one of 16 random bytes.
	addr, got := captureRequest(t)
	Dial(context.Background(), "ws://"+addr+"/ws/chat", nil)
	req := <-got
	m := wsKeyLine.FindString(req)
	if k, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(strings.TrimPrefix(m, "Sec-Websocket-Key: "), "\r\n")); err != nil || len(k) != 16 {
		t.Errorf("key line %q in %q", m, req)
	}
}

// TestDialDirectInvalidHeader: what net/http refuses to send, the direct
// path refuses too, without connecting.
func TestDialDirectInvalidHeader(t *testing.T) {
	for _, h := range []http.Header{{"X-Bad": {"a\r\nInjected: 1"}}, {"Bad Name": {"1"}}, {"User-Agent": {"a\nb"}}} {
		_, err := Dial(context.Background(), "ws://127.0.0.1:1/ws/chat", &DialOptions{Header: h})
		if err == nil || !strings.Contains(err.Error(), "invalid header field") {
			t.Errorf("header %q: %v", h, err)
		}
	}
}

// upgradeServer accepts connections and answers each with what answer
// returns for the request's key (written in one write, then the
// connection is read until the client closes it; an answer ending in
// "<EOF>" is written without that mark and the connection closed, one
// ending in "<BYE>" is answered, once the client sends anything, with a
// close frame).
func upgradeServer(t *testing.T, answer func(key string) string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				a := answer(req.Header.Get("Sec-WebSocket-Key"))
				if a, ok := strings.CutSuffix(a, "<EOF>"); ok {
					io.WriteString(c, a)
					return
				}
				if a, ok := strings.CutSuffix(a, "<BYE>"); ok {
					io.WriteString(c, a)
					var b [1]byte
					c.Read(b[:])
					c.Write(serverFrame(true, opClose, []byte{0x03, 0xE8}))
					return
				}
				if a != "" {
					io.WriteString(c, a)
				}
				io.Copy(io.Discard, c)
			}()
		}
	}()
	return "ws://" + ln.Addr().String() + "/ws/chat"
}

func acceptFor(key string) string {
	sum := sha1.Sum([]byte(key + websocketGUID))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// TestDialDirectAnswers: refusals are ErrUpgrade with the status, an
// informational answer before the 101 is skipped as net/http skips it, a
// 101 and the first frames in one segment are read in order, and the
// stream is the socket itself, not net/http's.
func TestDialDirectAnswers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	upgraded := func(key string) string {
		return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + acceptFor(key) + "\r\n\r\n"
	}
	refusals := map[string]func(string) string{
		"http status 403": func(string) string {
			return "HTTP/1.1 403 Forbidden\r\nContent-Length: 5\r\n\r\nnope\n"
		},
		"wrong Sec-WebSocket-Accept": func(string) string {
			return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: d3Jvbmc=\r\n\r\n"
		},
		"Upgrade header": func(key string) string {
			return "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + acceptFor(key) + "\r\n\r\n"
		},
		"too many 1xx": func(key string) string {
			return strings.Repeat("HTTP/1.1 103 Early Hints\r\n\r\n", 5) + upgraded(key)
		},
	}
	for want, answer := range refusals {
		_, err := Dial(ctx, upgradeServer(t, answer), nil)
		if !errors.Is(err, ErrUpgrade) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", want, err)
		}
	}
	_, err := Dial(ctx, upgradeServer(t, func(string) string { return "HTTP/1.1 101 Switching<EOF>" }), nil)
	if err == nil {
		t.Error("a truncated answer was accepted")
	}

	url := upgradeServer(t, func(key string) string {
		return "HTTP/1.1 100 Continue\r\n\r\n" + upgraded(key) +
			string(serverFrame(true, opBinary, []byte("early "))) +
			string(serverFrame(true, opBinary, []byte("bytes"))) +
			string(serverFrame(true, opClose, []byte{0x03, 0xE8}))
	})
	nc, err := Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	ws := nc.(*wsConn)
	if pc, ok := ws.rw.(*prefixConn); !ok || pc.ReadWriteCloser != ws.raw {
		t.Errorf("stream %T over %T: want the socket behind the bytes read ahead", ws.rw, ws.raw)
	}
	got, err := io.ReadAll(nc)
	if err != nil || string(got) != "early bytes" {
		t.Fatalf("read %q, %v", got, err)
	}
	if pc := ws.rw.(*prefixConn); pc.pre != nil {
		t.Errorf("drained prefix still holds %d bytes of array", cap(pc.pre))
	}
	nc.Close()

	// A host name goes through the resolver (DialContext), an address
	// straight to the socket: the same connection either way.
	byName := strings.Replace(upgradeServer(t, func(key string) string { return upgraded(key) + "<BYE>" }), "127.0.0.1", "localhost", 1)
	nc, err = Dial(ctx, byName, nil)
	if err != nil {
		t.Fatal(err)
	}
	nc.Write([]byte("x"))
	nc.Close()

	nc, err = Dial(ctx, upgradeServer(t, func(key string) string { return upgraded(key) + "<BYE>" }), nil)
	if err != nil {
		t.Fatal(err)
	}
	if ws := nc.(*wsConn); ws.rw != io.ReadWriteCloser(ws.raw) {
		t.Errorf("stream %T, want the socket %T itself", ws.rw, ws.raw)
	}
	nc.Close()
}

// TestDialDirectContext: ctx's end aborts an upgrade in progress (the
// server never answers) and its deadline bounds it; the error is ctx's.
func TestDialDirectContext(t *testing.T) {
	url := upgradeServer(t, func(string) string { return "" })
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := Dial(ctx, url, nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("cancel took %v", d)
	}

	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = Dial(ctx, url, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("deadline: %v", err)
	}
	if d := time.Since(start); d > 6*time.Second {
		t.Errorf("deadline took %v", d)
	}

	// A finished dial keeps no deadline from ctx.
	ok := upgradeServer(t, func(key string) string {
		return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + acceptFor(key) + "\r\n\r\n<BYE>"
	})
	ctx, cancel = context.WithTimeout(context.Background(), 200*time.Millisecond)
	nc, err := Dial(ctx, ok, nil)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	time.Sleep(300 * time.Millisecond)
	nc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := nc.Write([]byte("still open")); err != nil {
		t.Errorf("write after ctx ended: %v", err)
	}
}

// TestDialDirectTLS: wss to a TLS server: the direct path runs the TLS
// handshake itself (offering http/1.1, naming the host) and upgrades over
// it; a proxy function that answers nil keeps the direct path, one that
// answers a URL takes net/http's.
func TestDialDirectTLS(t *testing.T) {
	var protos []string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		protos = append(protos, r.TLS.NegotiatedProtocol)
		nc, err := Accept(w, r)
		if err != nil {
			t.Error(err)
			return
		}
		nc.Write([]byte("hello"))
		nc.Close()
	}))
	srv.StartTLS()
	defer srv.Close()
	cfg := srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	wsURL := "wss" + strings.TrimPrefix(srv.URL, "https") + "/ws/chat"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	noProxy := func(*http.Request) (*url.URL, error) { return nil, nil }
	nc, err := Dial(ctx, wsURL, &DialOptions{TLSConfig: cfg, Proxy: noProxy})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := nc.(*wsConn).rw.(*tls.Conn); !ok {
		t.Errorf("stream %T, want the TLS connection", nc.(*wsConn).rw)
	}
	b := make([]byte, 5)
	if _, err := io.ReadFull(nc, b); err != nil || string(b) != "hello" {
		t.Errorf("read %q, %v", b, err)
	}
	nc.Close()
	if len(protos) != 1 || protos[0] != "http/1.1" {
		t.Errorf("negotiated %q", protos)
	}
	if cfg.ServerName != "" || cfg.NextProtos != nil {
		t.Error("the caller's TLS config was modified")
	}

	// A proxy answer: net/http's path, which fails here (no proxy there).
	dead := func(*http.Request) (*url.URL, error) { return &url.URL{Scheme: "http", Host: "127.0.0.1:1"}, nil }
	if _, err := Dial(ctx, wsURL, &DialOptions{TLSConfig: cfg, Proxy: dead}); err == nil {
		t.Error("dial through a dead proxy succeeded")
	}
	perr := errors.New("no proxy for you")
	failing := func(*http.Request) (*url.URL, error) { return nil, perr }
	if _, err := Dial(ctx, wsURL, &DialOptions{TLSConfig: cfg, Proxy: failing}); !errors.Is(err, perr) {
		t.Errorf("proxy error: %v", err)
	}
}
