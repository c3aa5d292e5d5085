package transport

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/coder/websocket"
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
func Dial(ctx context.Context, wsURL string, opts *DialOptions) (net.Conn, error) {
	if opts == nil {
		opts = &DialOptions{}
	}
	// A Transport of our own so Proxy and TLSConfig apply. HTTP/2 is off:
	// the WebSocket upgrade needs HTTP/1.1.
	dial := opts.DialContext
	if dial == nil {
		dial = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	tr := &http.Transport{
		Proxy:               opts.Proxy,
		DialContext:         dial,
		TLSClientConfig:     opts.TLSConfig,
		TLSHandshakeTimeout: 20 * time.Second,
	}
	defer tr.CloseIdleConnections()
	header := opts.Header.Clone()
	if header == nil {
		header = http.Header{}
	}
	header.Set("Origin", Origin)
	c, resp, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: tr},
		HTTPHeader: header,
	})
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("transport: dial %s: http status %d: %w", redactURL(wsURL), resp.StatusCode, err)
		}
		return nil, fmt.Errorf("transport: dial %s: %w", redactURL(wsURL), err)
	}
	return netConn(c), nil
}

// Accept upgrades an HTTP request to a WebSocket byte stream (server side).
// Requests whose Origin is https://web.whatsapp.com are accepted besides
// same-origin ones, since that is what clients send. Checking the path is
// the caller's job.
func Accept(w http.ResponseWriter, r *http.Request) (net.Conn, error) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		OriginPatterns: []string{"web.whatsapp.com"},
	})
	if err != nil {
		return nil, fmt.Errorf("transport: accept: %w", err)
	}
	return netConn(c), nil
}

func netConn(c *websocket.Conn) net.Conn {
	// NetConn resets the read limit to unlimited; set ours afterwards.
	nc := websocket.NetConn(context.Background(), c, websocket.MessageBinary)
	c.SetReadLimit(ReadLimit)
	return nc
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
