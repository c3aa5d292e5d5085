package transport

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// Defaults.
const (
	DefaultURL = "wss://web.whatsapp.com/ws/chat"
	Origin     = "https://web.whatsapp.com"
	// ReadLimit bounds one WebSocket message: 16 MiB, as WhatsApp Web
	// clients set it, plus room for the connection intro so that a
	// maximal frame still fits.
	ReadLimit = 1<<24 + 64
)

// DialOptions configures Dial. The zero value (or nil) is fine.
type DialOptions struct {
	// Header is added to the upgrade request. Origin is always set to
	// the Origin constant.
	Header http.Header
	// Proxy returns the proxy for a request (http, https, socks5 or socks5h
	// URLs, as net/http understands them); nil means no proxy.
	Proxy func(*http.Request) (*url.URL, error)
	// TLSConfig is used for wss URLs; nil means the system defaults.
	TLSConfig *tls.Config
	// DialContext opens the underlying connection; nil means a TCP dial
	// (through Proxy). An in-memory pipe to a server's Handler goes here.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Dial opens a WebSocket and returns it as a byte stream (each Write is one
// binary message; Reads cross message boundaries). ctx bounds the dial
// only, not the connection's life.
//
// Without a proxy the upgrade is this package's own: the request net/http
// would write (same headers, same order) goes out in one write and the
// answer is read in place when it is a plain 101 (with http.ReadResponse
// otherwise, see readUpgrade), with no http.Transport and its
// goroutines, channels and 8 KiB of buffers per dial (~15 KiB and 70
// allocations of a local handshake's). Through a proxy, and for URLs it does not handle
// the same way (user info, non-ASCII or zoned hosts), it goes through
// net/http. Either way the framing after it is this package's own client
// side of RFC 6455, which holds no buffer while the connection is idle (see
// bench/NOTES.md for why not a library's).
func Dial(ctx context.Context, wsURL string, opts *DialOptions) (net.Conn, error) {
	if opts == nil {
		opts = &DialOptions{}
	}
	u, err := url.Parse(wsURL)
	if err != nil {
		return nil, fmt.Errorf("transport: dial: bad url: %w", err)
	}
	switch u.Scheme {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	case "http", "https":
	default:
		return nil, fmt.Errorf("transport: dial %s: unsupported scheme %q", redactURL(wsURL), u.Scheme)
	}
	var keyBytes [16]byte
	rand.Read(keyBytes[:])
	var keyBuf [24]byte
	base64.StdEncoding.Encode(keyBuf[:], keyBytes[:])
	key := string(keyBuf[:])

	proxy := opts.Proxy
	if proxy != nil {
		// Asked once, here, as net/http would ask it for this request: a
		// nil answer means a direct connection.
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return nil, fmt.Errorf("transport: dial %s: %w", redactURL(wsURL), err)
		}
		pu, err := proxy(req)
		if err != nil {
			return nil, fmt.Errorf("transport: dial %s: proxy: %w", redactURL(wsURL), err)
		}
		proxy = nil
		if pu != nil {
			proxy = http.ProxyURL(pu)
		}
	}
	if proxy != nil || !directURL(u) {
		return dialHTTP(ctx, wsURL, u, key, proxy, opts)
	}
	nc, err := dialDirect(ctx, u, key, opts)
	if err != nil {
		return nil, fmt.Errorf("transport: dial %s: %w", redactURL(wsURL), err)
	}
	return nc, nil
}

// ctxError reports a dial's error as ctx's when ctx ended, or when the
// deadline that fired was ctx's own (set on the socket, it may fire before
// ctx notices).
func ctxError(ctx context.Context, err error, ctxBound bool) error {
	cerr := ctx.Err()
	if cerr == nil && ctxBound && errors.Is(err, os.ErrDeadlineExceeded) {
		cerr = context.DeadlineExceeded
	}
	if cerr != nil && !errors.Is(err, cerr) {
		err = fmt.Errorf("%w (%w)", cerr, err)
	}
	return err
}

// directURL reports whether dialDirect sends for u what net/http would:
// net/http adds basic authentication for user info, converts non-ASCII
// hosts to punycode and drops IPv6 zones from the Host header.
func directURL(u *url.URL) bool {
	if u.User != nil || u.Host == "" || u.Opaque != "" {
		return false
	}
	for i := 0; i < len(u.Host); i++ {
		if c := u.Host[i]; c >= 0x80 || c == '%' || c <= ' ' {
			return false
		}
	}
	return true
}

// Upgrade limits of the direct path, as net/http's Transport has them.
const (
	tlsHandshakeTimeout    = 20 * time.Second
	maxResponseHeaderBytes = 10 << 20
	max1xxResponses        = 5
	defaultUserAgent       = "Go-http-client/1.1"
)

// directDialer's keep-alive is what KeepAlive: 30s gave (probes after 30 s
// idle, every 15 s) but with the probe count left to the system (9 on
// Linux, as Go set it): one setsockopt fewer per dial.
var directDialer = &net.Dialer{
	Timeout:         30 * time.Second,
	KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 30 * time.Second, Interval: 15 * time.Second, Count: -1},
}

// respReaders lends the buffered readers the upgrade answer is read with
// (*respReader); a connection keeps none (bytes read past the answer are
// copied out).
var respReaders = sync.Pool{New: func() any {
	r := &respReader{}
	r.br = bufio.NewReaderSize(&r.lr, 1024)
	return r
}}

// respReader is a buffered reader over a limitedReader, lent as one.
type respReader struct {
	lr limitedReader
	br *bufio.Reader
}

// getRespReader lends a respReader reading at most
// maxResponseHeaderBytes from r.
func getRespReader(r io.Reader) *respReader {
	rr := respReaders.Get().(*respReader)
	rr.lr = limitedReader{r: r, n: maxResponseHeaderBytes}
	rr.br.Reset(&rr.lr)
	return rr
}

func putRespReader(rr *respReader) {
	rr.lr = limitedReader{}
	rr.br.Reset(&rr.lr)
	respReaders.Put(rr)
}

// dialDirect connects to u's host, runs the TLS handshake for https, and
// upgrades with its own request. ctx's deadline is set on the socket and
// its end aborts the IO in progress.
func dialDirect(ctx context.Context, u *url.URL, key string, opts *DialOptions) (_ net.Conn, err error) {
	bp := getBuf(512)
	defer putBuf(bp)
	req, err := appendUpgradeRequest((*bp)[:0], u, key, opts.Header)
	if err != nil {
		return nil, err
	}
	*bp = req[:0]
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	deadline, hasDeadline := ctx.Deadline()
	raw, err := dialTCP(ctx, opts.DialContext, u.Hostname(), port)
	if err != nil {
		return nil, ctxError(ctx, err, hasDeadline)
	}
	var (
		ctxBound = hasDeadline // the socket's deadline is ctx's
		set      time.Time     // the socket's deadline
	)
	// ctx's end aborts the IO in progress. The watch is handed to the
	// Handshake that usually follows under the same ctx (wsConn.watch).
	watch := newCtxWatch(ctx, raw)
	// Each deadline is set only when it changes: one covers the TLS
	// handshake and the upgrade when ctx's is the sooner.
	setDeadline := func(d time.Time) {
		if d.Equal(set) {
			return
		}
		set = d
		if watch == nil {
			raw.SetDeadline(d)
		} else {
			watch.set(raw.SetDeadline, d) // not once ctx ended: the IO fails
		}
	}
	defer func() {
		if err != nil {
			if watch != nil {
				watch.stop()
			}
			err = ctxError(ctx, err, ctxBound)
			raw.Close()
		}
	}()
	var rw io.ReadWriteCloser = raw
	if u.Scheme == "https" {
		cfg := opts.TLSConfig.Clone()
		if cfg == nil {
			cfg = &tls.Config{}
		}
		// The upgrade needs HTTP/1.1.
		cfg.NextProtos = []string{"http/1.1"}
		if cfg.ServerName == "" {
			cfg.ServerName = u.Hostname()
		}
		d := time.Now().Add(tlsHandshakeTimeout)
		ctxBound = hasDeadline && deadline.Before(d)
		if ctxBound {
			d = deadline
		}
		setDeadline(d)
		tc := tls.Client(raw, cfg)
		if err := tc.Handshake(); err != nil {
			return nil, err
		}
		rw = tc
	}
	ctxBound = hasDeadline
	if hasDeadline {
		setDeadline(deadline)
	} else {
		setDeadline(time.Time{})
	}
	if _, err := rw.Write(req); err != nil {
		return nil, err
	}
	pre, err := readUpgrade(rw, key)
	if err != nil {
		return nil, err
	}
	if watch != nil && !watch.pause() {
		// ctx ended as the upgrade finished: its deadline may be set.
		return nil, ctx.Err()
	}
	setDeadline(time.Time{})
	if len(pre) > 0 {
		// The server's first frames came with its answer.
		rw = &prefixConn{prefixReader: prefixReader{pre: pre, r: rw}, ReadWriteCloser: rw}
	}
	ws := newWSConn(rw, raw)
	if watch != nil {
		ws.watch.Store(watch)
	}
	return ws, nil
}

// dialTCP connects to host:port with dial, or directDialer. Not with
// Dialer.DialTCP: it turns a zero local AddrPort into a non-nil *TCPAddr,
// so every dial bound the socket to 0.0.0.0:0 before connecting, one more
// system call and the ephemeral port chosen by bind (held exclusively,
// and never one still in TIME_WAIT) instead of by connect.
func dialTCP(ctx context.Context, dial func(context.Context, string, string) (net.Conn, error), host, port string) (net.Conn, error) {
	if dial == nil {
		dial = directDialer.DialContext
	}
	return dial(ctx, "tcp", net.JoinHostPort(host, port))
}

// prefixConn reads bytes read ahead, then the connection.
type prefixConn struct {
	prefixReader
	io.ReadWriteCloser
}

func (p *prefixConn) Read(b []byte) (int, error) { return p.prefixReader.Read(b) }

// readUpgrade reads the answer to the upgrade request (skipping
// informational answers other than 101, as net/http does), checks it, and
// returns a copy of any bytes read past it. The usual answer, a plain 101
// with the headers checkUpgrade wants, is recognized in the read buffer
// without http.ReadResponse (whose header map, strings and canonical keys
// were a third of a dial's allocations); anything else, or anything it is
// unsure of, is read by http.ReadResponse from the same bytes, so odd
// answers are accepted or refused, with the same errors, as before.
func readUpgrade(r io.Reader, key string) ([]byte, error) {
	rr := getRespReader(r)
	defer putRespReader(rr)
	br, lr := rr.br, &rr.lr
	if n, ok := quickUpgrade(br, key); ok {
		br.Discard(n)
	} else if err := slowUpgrade(br, lr, key); err != nil {
		return nil, err
	}
	return copyBuffered(br), nil
}

// copyBuffered returns a copy of what br holds (nil for nothing): the
// bytes read past the answer, which outlive br's return to the pool.
func copyBuffered(br *bufio.Reader) []byte {
	n := br.Buffered()
	if n == 0 {
		return nil
	}
	b, _ := br.Peek(n)
	return append([]byte(nil), b...)
}

// slowUpgrade reads the answer with http.ReadResponse.
func slowUpgrade(br *bufio.Reader, lr *limitedReader, key string) error {
	for i := 0; ; i++ {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			if lr.n <= 0 {
				return fmt.Errorf("%w: response headers over %d bytes", ErrUpgrade, maxResponseHeaderBytes)
			}
			return err
		}
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			if i+1 >= max1xxResponses {
				return fmt.Errorf("%w: too many 1xx responses", ErrUpgrade)
			}
			continue
		}
		if err := checkUpgrade(resp, key); err != nil {
			return fmt.Errorf("http status %d: %w", resp.StatusCode, err)
		}
		return nil
	}
}

// quickUpgrade reports the length of the answer's head when br holds, or
// comes to hold, a plain 101 answer that http.ReadResponse and
// checkUpgrade accept. It consumes nothing and reads no further than
// http.ReadResponse would: more only while every complete line so far
// fits the plain form (ReadResponse would wait for the rest of the head
// too), and never past a read error (limitedReader repeats it for
// ReadResponse). It says no (leaving the answer to ReadResponse) at the
// first thing outside the plain form: another status, a bare LF, folded
// or malformed lines, headers that change how net/http reads the answer
// (Content-Length, Transfer-Encoding, Trailer, Connection: close), or a
// head larger than br's buffer.
func quickUpgrade(br *bufio.Reader, key string) (int, bool) {
	var want [28]byte
	acceptKey(&want, key)
	for {
		b, _ := br.Peek(br.Buffered())
		n, st := scanUpgrade(b, want[:])
		switch st {
		case headOK:
			return n, true
		case headOther:
			return 0, false
		}
		if br.Buffered() >= br.Size() {
			return 0, false
		}
		if _, err := br.Peek(br.Buffered() + 1); err != nil {
			return 0, false
		}
	}
}

// acceptKey puts the Sec-WebSocket-Accept answer to key in dst.
func acceptKey(dst *[28]byte, key string) {
	var in [64]byte
	b := append(in[:0], key...)
	b = append(b, websocketGUID...)
	sum := sha1.Sum(b)
	base64.StdEncoding.Encode(dst[:], sum[:])
}

type headState int

const (
	headMore  headState = iota // the lines so far fit; the head is not complete
	headOK                     // a complete plain 101 that checkUpgrade accepts
	headOther                  // for http.ReadResponse
)

// scanUpgrade checks the buffered start of an answer for the plain form
// (see quickUpgrade); with headOK it returns the head's length.
func scanUpgrade(b []byte, accept []byte) (int, headState) {
	var conn, upg, acc, ext bool // headers seen: Connection: upgrade, Upgrade: websocket, first Accept, first Extensions
	accOK := false
	pos := 0
	for first := true; ; first = false {
		i := bytes.IndexByte(b[pos:], '\n')
		if i < 0 {
			return 0, headMore
		}
		if i == 0 || b[pos+i-1] != '\r' {
			return 0, headOther // bare LF
		}
		line := b[pos : pos+i-1]
		pos += i + 1
		if first {
			const status = "HTTP/1.1 101"
			if len(line) < len(status) || string(line[:len(status)]) != status ||
				len(line) > len(status) && line[len(status)] != ' ' || !printable(line) {
				return 0, headOther
			}
			continue
		}
		if len(line) == 0 {
			if conn && upg && accOK {
				return pos, headOK
			}
			return 0, headOther // refused: ReadResponse and checkUpgrade say why
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !validHeaderName(line[:colon]) {
			return 0, headOther // folded, malformed, or a name net/http keeps as is
		}
		name, value := line[:colon], trimOWS(line[colon+1:])
		for _, c := range value {
			if (c < ' ' && c != '\t') || c == 0x7F {
				return 0, headOther
			}
		}
		checked := true
		switch {
		case equalFold(name, "Connection"):
			for t := range bytes.SplitSeq(value, []byte(",")) {
				t = trimOWS(t)
				if equalFold(t, "close") {
					return 0, headOther // net/http drops the header
				}
				conn = conn || equalFold(t, "upgrade")
			}
		case equalFold(name, "Upgrade"):
			for t := range bytes.SplitSeq(value, []byte(",")) {
				upg = upg || equalFold(trimOWS(t), "websocket")
			}
		case equalFold(name, "Sec-WebSocket-Accept"):
			if !acc {
				acc, accOK = true, bytes.Equal(value, accept)
			}
		case equalFold(name, "Sec-WebSocket-Extensions"):
			if !ext {
				ext = true
				if len(value) > 0 {
					return 0, headOther // refused
				}
			}
		case equalFold(name, "Content-Length"), equalFold(name, "Transfer-Encoding"), equalFold(name, "Trailer"):
			return 0, headOther
		default:
			checked = false
		}
		if checked && !printable(value) {
			return 0, headOther // other spaces than checkUpgrade's TrimSpace trims
		}
	}
}

// printable reports whether b is printable ASCII or tabs.
func printable(b []byte) bool {
	for _, c := range b {
		if (c < ' ' && c != '\t') || c >= 0x7F {
			return false
		}
	}
	return true
}

// trimOWS trims spaces and tabs, as textproto trims header values.
func trimOWS(b []byte) []byte { return bytes.Trim(b, " \t") }

// equalFold is strings.EqualFold for ASCII without a conversion.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// limitedReader is io.LimitedReader with its error saying so. Its errors
// stick: a read quickUpgrade's peek failed is repeated for ReadResponse.
type limitedReader struct {
	r   io.Reader
	n   int
	err error
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	if l.n <= 0 {
		return 0, errHeaderTooLong
	}
	n, err := l.r.Read(p[:min(len(p), l.n)])
	l.n -= n
	l.err = err
	return n, err
}

var errHeaderTooLong = errors.New("response headers too long")

// appendUpgradeRequest appends the upgrade request net/http's Transport
// writes for Dial's request: request line, Host, User-Agent, the headers
// sorted by key (Dial's own replacing the caller's of the same key), and
// Accept-Encoding: gzip unless the caller set one (or a Range). Header
// names and values are checked as net/http checks them.
func appendUpgradeRequest(b []byte, u *url.URL, key string, extra http.Header) ([]byte, error) {
	fixed := [...][2]string{
		{"Connection", "Upgrade"},
		{"Origin", Origin},
		{"Sec-Websocket-Key", key},
		{"Sec-Websocket-Version", "13"},
		{"Upgrade", "websocket"},
	}
	b = append(b, "GET "...)
	b = append(b, u.RequestURI()...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, u.Host...)
	b = append(b, "\r\n"...)
	ua := defaultUserAgent
	if v, ok := extra["User-Agent"]; ok {
		ua = ""
		if len(v) > 0 {
			ua = v[0]
		}
	}
	if ua != "" {
		if !validHeaderValue(ua) {
			return nil, fmt.Errorf("invalid header field value for %q", "User-Agent")
		}
		b = appendHeader(b, "User-Agent", ua)
	}
	if len(extra) == 0 {
		for _, h := range fixed {
			b = appendHeader(b, h[0], h[1])
		}
		b = append(b, "Accept-Encoding: gzip\r\n\r\n"...)
		return b, nil
	}
	keys := make([]string, 0, len(extra)+len(fixed))
	for k, vv := range extra {
		if !validHeaderName(k) {
			return nil, fmt.Errorf("invalid header field name %q", k)
		}
		for _, v := range vv {
			if !validHeaderValue(v) {
				return nil, fmt.Errorf("invalid header field value for %q", k)
			}
		}
		switch k {
		case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
			continue // net/http writes these itself, or not at all
		case "Connection", "Origin", "Sec-Websocket-Key", "Sec-Websocket-Version", "Upgrade":
			continue // replaced by Dial's
		}
		keys = append(keys, k)
	}
	for _, h := range fixed {
		keys = append(keys, h[0])
	}
	slices.Sort(keys)
	for _, k := range keys {
		i := slices.IndexFunc(fixed[:], func(h [2]string) bool { return h[0] == k })
		if i >= 0 {
			b = appendHeader(b, k, fixed[i][1])
			continue
		}
		for _, v := range extra[k] {
			b = appendHeader(b, k, v)
		}
	}
	if extra.Get("Accept-Encoding") == "" && extra.Get("Range") == "" {
		b = append(b, "Accept-Encoding: gzip\r\n"...)
	}
	return append(b, "\r\n"...), nil
}

func appendHeader(b []byte, k, v string) []byte {
	b = append(b, k...)
	b = append(b, ": "...)
	b = append(b, strings.Trim(v, " \t")...)
	return append(b, "\r\n"...)
}

// validHeaderName reports whether k is an RFC 7230 token.
func validHeaderName[T string | []byte](k T) bool {
	if len(k) == 0 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c >= 0x7F || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return true
}

// validHeaderValue reports whether v has no control bytes other than
// horizontal tab.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7F {
			return false
		}
	}
	return true
}

// dialHTTP upgrades through net/http's Transport: the path for proxies
// and for URLs the direct path does not handle as net/http does.
func dialHTTP(ctx context.Context, wsURL string, u *url.URL, key string, proxy func(*http.Request) (*url.URL, error), opts *DialOptions) (net.Conn, error) {
	// The raw connection the Transport dials (to the server or to the
	// proxy that tunnels to it) carries the deadlines; for wss the
	// upgraded stream is the TLS connection above it.
	var (
		rawMu sync.Mutex
		raw   net.Conn
	)
	dial := opts.DialContext
	if dial == nil {
		dial = directDialer.DialContext
	}
	tlsConfig := opts.TLSConfig.Clone()
	if tlsConfig == nil {
		tlsConfig = &tls.Config{}
	}
	// The upgrade needs HTTP/1.1.
	tlsConfig.NextProtos = []string{"http/1.1"}
	tr := &http.Transport{
		Proxy: proxy,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dial(ctx, network, addr)
			if err == nil {
				rawMu.Lock()
				raw = c
				rawMu.Unlock()
			}
			return c, err
		},
		TLSClientConfig:     tlsConfig,
		TLSHandshakeTimeout: tlsHandshakeTimeout,
	}
	defer tr.CloseIdleConnections()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("transport: dial %s: %w", redactURL(wsURL), err)
	}
	for k, v := range opts.Header {
		req.Header[k] = slices.Clone(v)
	}
	req.Header.Set("Origin", Origin)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", key)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return nil, fmt.Errorf("transport: dial %s: %w", redactURL(wsURL), err)
	}
	if err := checkUpgrade(resp, key); err != nil {
		resp.Body.Close()
		return nil, fmt.Errorf("transport: dial %s: http status %d: %w", redactURL(wsURL), resp.StatusCode, err)
	}
	rw, ok := resp.Body.(io.ReadWriteCloser)
	rawMu.Lock()
	c := raw
	rawMu.Unlock()
	if !ok || c == nil {
		resp.Body.Close()
		return nil, fmt.Errorf("transport: dial %s: upgraded connection not writable", redactURL(wsURL))
	}
	return newWSConn(rw, c), nil
}

// ErrUpgrade reports a server that did not complete the WebSocket upgrade
// (RFC 6455 §4.1): not a 101, or without the headers it must answer with.
var ErrUpgrade = errors.New("transport: websocket upgrade refused")

// websocketGUID is RFC 6455's constant for Sec-WebSocket-Accept.
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

func checkUpgrade(resp *http.Response, key string) error {
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return fmt.Errorf("%w: expected 101 Switching Protocols", ErrUpgrade)
	}
	if !headerHasToken(resp.Header, "Connection", "upgrade") {
		return fmt.Errorf("%w: Connection header %q", ErrUpgrade, resp.Header.Get("Connection"))
	}
	if !headerHasToken(resp.Header, "Upgrade", "websocket") {
		return fmt.Errorf("%w: Upgrade header %q", ErrUpgrade, resp.Header.Get("Upgrade"))
	}
	sum := sha1.Sum([]byte(key + websocketGUID))
	if resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		return fmt.Errorf("%w: wrong Sec-WebSocket-Accept", ErrUpgrade)
	}
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
		return fmt.Errorf("%w: extension %q was not offered", ErrUpgrade, ext)
	}
	return nil
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		if hasToken(v, token) {
			return true
		}
	}
	return false
}

// hasToken reports whether the comma-separated list v has token (any
// case).
func hasToken(v, token string) bool {
	for t := range strings.SplitSeq(v, ",") {
		if strings.EqualFold(strings.TrimSpace(t), token) {
			return true
		}
	}
	return false
}

// redactURL drops user info and query from a URL for error messages.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(bad url)"
	}
	u.User = nil
	u.RawQuery = ""
	return u.String()
}
