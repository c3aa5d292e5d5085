package transport

import (
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
// The upgrade request goes through net/http (so proxies, TLS and ctx work
// as net/http does them); the framing after it is this package's own
// client side of RFC 6455, which holds no buffer while the connection is
// idle (see bench/NOTES.md for why not a library's).
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
	// The raw connection the Transport dials (to the server or to the
	// proxy that tunnels to it) carries the deadlines; for wss the
	// upgraded stream is the TLS connection above it.
	var (
		rawMu sync.Mutex
		raw   net.Conn
	)
	dial := opts.DialContext
	if dial == nil {
		dial = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	tlsConfig := opts.TLSConfig.Clone()
	if tlsConfig == nil {
		tlsConfig = &tls.Config{}
	}
	// The upgrade needs HTTP/1.1.
	tlsConfig.NextProtos = []string{"http/1.1"}
	tr := &http.Transport{
		Proxy: opts.Proxy,
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
		TLSHandshakeTimeout: 20 * time.Second,
	}
	defer tr.CloseIdleConnections()

	var keyBytes [16]byte
	rand.Read(keyBytes[:])
	key := base64.StdEncoding.EncodeToString(keyBytes[:])
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
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
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
