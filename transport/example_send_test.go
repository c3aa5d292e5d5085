package transport_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/noise"
	"github.com/walinkdev/walink/transport"
)

// A client sends stanzas with WriteNode: each is encoded straight into the
// frame buffer and sealed in place. CloseOnDone ties the connection to the
// client's context, which also spares every write its own watch of it.
func ExampleConn_WriteNode() {
	root, _ := keys.NewKeyPair(rand.Reader)
	inter, _ := keys.NewKeyPair(rand.Reader)
	static, _ := keys.NewKeyPair(rand.Reader)
	now := time.Now()
	chain, err := noise.NewCertChain(rand.Reader, root.Private, inter, static.Public, noise.CertOptions{
		IntermediateSerial: 1, LeafSerial: 2, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
	})
	if err != nil {
		log.Fatal(err)
	}
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nc, err := transport.Accept(w, r)
		if err != nil {
			return
		}
		conn, _, err := transport.ServerHandshake(r.Context(), nc, transport.ServerConfig{Static: static, CertChain: chain})
		if err != nil {
			return
		}
		defer conn.Close()
		frame, err := conn.ReadFrame()
		if err != nil {
			return
		}
		n, err := binxml.Unmarshal(frame)
		if err != nil {
			return
		}
		got <- n.Tag + " " + n.Attr("type")
		conn.ReadFrame() // until the client closes
	}))
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	noiseKey, _ := keys.NewKeyPair(rand.Reader)
	nc, err := transport.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws/chat", nil)
	if err != nil {
		log.Fatal(err)
	}
	conn, err := transport.Handshake(ctx, nc, transport.ClientConfig{NoiseKey: noiseKey, RootKey: root.Public, Payload: []byte("payload")})
	if err != nil {
		log.Fatal(err)
	}
	conn.CloseOnDone(ctx)
	err = conn.WriteNode(ctx, binxml.Node{Tag: "presence", Attrs: []binxml.Attr{binxml.A("type", "available")}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(<-got)
	conn.Close()
	// Output: presence available
}
