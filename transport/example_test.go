package transport_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/noise"
	"github.com/walinkdev/walink/transport"
)

// A client connects to WhatsApp: dial, handshake, then exchange frames.
func ExampleHandshake() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	noiseKey, err := keys.NewKeyPair(rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	nc, err := transport.Dial(ctx, transport.DefaultURL, nil)
	if err != nil {
		log.Fatal(err)
	}
	conn, err := transport.Handshake(ctx, nc, transport.ClientConfig{
		NoiseKey: noiseKey,
		Payload:  []byte{ /* serialized ClientPayload */ },
	})
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	frame, err := conn.ReadFrame() // flags byte + binary node
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("% x\n", frame[:1])
}

// A registered client resumes with Noise IK when it cached the server's
// chain, and keeps the newest chain for next time. A resume the server cut
// short means: forget the cache and connect again with a full handshake.
func ExampleClientConfig_resume() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var noiseKey keys.KeyPair  // the stored noise key
	var cached *noise.CertInfo // stored from the last Conn.ServerCert(), or nil
	var loginPayload []byte    // serialized login ClientPayload
	nc, err := transport.Dial(ctx, transport.DefaultURL, nil)
	if err != nil {
		log.Fatal(err)
	}
	conn, err := transport.Handshake(ctx, nc, transport.ClientConfig{
		NoiseKey: noiseKey, Payload: loginPayload, Resume: cached,
	})
	if errors.Is(err, transport.ErrResumeFailed) {
		cached = nil // and redial without Resume
	}
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	cached = conn.ServerCert()
	fmt.Println(conn.Mode()) // IK, XXfallback, or XX without a usable cache
}

// A test server accepts WebSocket connections at /ws/chat and runs the
// server side of the handshake.
func ExampleServerHandshake() {
	var static keys.KeyPair // the server's noise key
	var chain []byte        // from noise.NewCertChain, leaf key = static.Public
	http.HandleFunc("/ws/chat", func(w http.ResponseWriter, r *http.Request) {
		nc, err := transport.Accept(w, r)
		if err != nil {
			return
		}
		conn, hello, err := transport.ServerHandshake(r.Context(), nc, transport.ServerConfig{Static: static, CertChain: chain})
		if err != nil {
			return
		}
		defer conn.Close()
		log.Printf("client %v sent a %d-byte payload", hello.ClientStatic, len(hello.Payload))
	})
}
