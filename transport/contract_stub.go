// CONTRACT STUB — the noise/transport helper implements these; signatures fixed.
package transport

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/walinkdev/walink/keys"
)

// Defaults.
const (
	DefaultURL = "wss://web.whatsapp.com/ws/chat"
	Origin     = "https://web.whatsapp.com"
)

// DialOptions configures Dial. The zero value is fine.
type DialOptions struct {
	Header http.Header
	// Proxy returns the proxy for a request (http, https or socks5 URLs);
	// nil means no proxy.
	Proxy func(*http.Request) (*url.URL, error)
}

// Dial opens a WebSocket and returns it as a byte stream (each Write is one
// binary message; Reads cross message boundaries).
func Dial(ctx context.Context, wsURL string, opts *DialOptions) (net.Conn, error) {
	panic("unimplemented")
}

// Accept upgrades an HTTP request to a WebSocket byte stream (server side).
func Accept(w http.ResponseWriter, r *http.Request) (net.Conn, error) { panic("unimplemented") }

// ClientConfig configures Handshake.
type ClientConfig struct {
	NoiseKey keys.KeyPair
	RootKey  keys.PublicKey // zero = WhatsApp's real root
	Payload  []byte         // serialized ClientPayload
	Header   [4]byte        // zero = WA 06 03
	Rand     io.Reader      // nil = crypto/rand
	Now      func() time.Time
}

// Hello is what the server learns from the client's handshake.
type Hello struct {
	Header       [4]byte
	ClientStatic keys.PublicKey
	Payload      []byte
}

// ServerConfig configures ServerHandshake.
type ServerConfig struct {
	Static    keys.KeyPair
	CertChain []byte // serialized CertChain whose leaf key is Static.Public
	Rand      io.Reader
}

// Conn is an encrypted WhatsApp connection carrying frame plaintexts.
type Conn struct{}

// Handshake runs the client side of the Noise XX handshake over conn.
func Handshake(ctx context.Context, conn net.Conn, cfg ClientConfig) (*Conn, error) {
	panic("unimplemented")
}

// ServerHandshake runs the server side.
func ServerHandshake(ctx context.Context, conn net.Conn, cfg ServerConfig) (*Conn, *Hello, error) {
	panic("unimplemented")
}

// ReadFrame blocks for the next decrypted frame plaintext.
func (c *Conn) ReadFrame() ([]byte, error) { panic("unimplemented") }

// WriteFrame encrypts and sends one frame; safe for concurrent use.
func (c *Conn) WriteFrame(ctx context.Context, plaintext []byte) error { panic("unimplemented") }

// Close closes the connection; idempotent.
func (c *Conn) Close() error { panic("unimplemented") }
