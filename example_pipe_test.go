package walink_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http"

	"github.com/walinkdev/walink"
	"github.com/walinkdev/walink/store/memstore"
	"github.com/walinkdev/walink/watest"
)

// oneConnListener serves exactly the connections handed to it.
type oneConnListener struct{ conns chan net.Conn }

func (l oneConnListener) Accept() (net.Conn, error) {
	c, ok := <-l.conns
	if !ok {
		return nil, net.ErrClosed
	}
	return c, nil
}
func (l oneConnListener) Close() error   { return nil }
func (l oneConnListener) Addr() net.Addr { return pipeAddr{} }

// Meet the local WhatsApp in memory: watest.New is a plain http.Handler,
// and Config.Dial hands the client one end of a net.Pipe whose other end
// the handler serves. No socket is opened (tests run this inside a
// testing/synctest bubble, where the protocol's timers cost no time).
func ExampleConfig_dial() {
	srv, err := watest.New(watest.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	l := oneConnListener{conns: make(chan net.Conn)}
	hs := &http.Server{Handler: srv.Handler()}
	served := make(chan struct{})
	go func() { hs.Serve(l); close(served) }()
	defer func() { close(l.conns); hs.Close(); <-served }()

	cfg := walink.Config{
		ServerURL:  srv.URL(),
		ServerRoot: srv.RootKey(),
		Dial: func(ctx context.Context) (net.Conn, error) {
			client, server := net.Pipe()
			select {
			case l.conns <- server:
				return client, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		},
	}
	cli := walink.NewClient(memstore.New(), cfg)
	defer cli.Close()
	qr := make(chan string, 16)
	cli.AddEventHandler(func(e walink.Event) {
		if e, ok := e.(walink.PairingQRCode); ok {
			qr <- e.Code
		}
	})
	if err := cli.Connect(context.Background()); err != nil {
		log.Fatal(err)
	}
	fmt.Println("QR shown:", len(<-qr) > 0)
	// Output:
	// QR shown: true
}

// A status tool shows the session a Client would use, picked by the same
// rule (linked, else unconfirmed, else unpaired); it only reads the store.
func ExampleDefaultDevice() {
	st := memstore.New()
	d, err := walink.DefaultDevice(context.Background(), st)
	if err != nil {
		log.Fatal(err)
	}
	if d == nil {
		fmt.Println("nothing linked yet")
	}
	// Output: nothing linked yet
}
