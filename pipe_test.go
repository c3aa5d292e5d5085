package walink_test

import (
	"context"
	"net"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/walinkdev/walink"
	"github.com/walinkdev/walink/watest"
)

// pipeListener hands the server ends of net.Pipe connections to an
// http.Server: client and server meet in memory, so a test can run both
// inside a testing/synctest bubble with synthetic time.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

// dial is a walink.Config.Dial.
func (l *pipeListener) dial(ctx context.Context) (net.Conn, error) {
	c, s := net.Pipe()
	select {
	case l.conns <- s:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// servePipe serves h over in-memory pipes until the test ends and returns
// the dialer for walink.Config.Dial.
func servePipe(t *testing.T, h http.Handler) func(context.Context) (net.Conn, error) {
	l := &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
	srv := &http.Server{Handler: h}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		srv.Serve(l)
	}()
	t.Cleanup(func() {
		srv.Close()
		wg.Wait()
	})
	return l.dial
}

// pipeDialers maps a server made by startPipeServer to its dialer, which
// clientConfig puts in the Config.
var pipeDialers sync.Map // *watest.Server → func(context.Context) (net.Conn, error)

// startPipeServer makes a watest server reached over pipes (no socket);
// its Close runs at the end of the test. clientConfig(t, srv) dials it.
func startPipeServer(t *testing.T, sc *watest.Scenario) (*watest.Server, walink.Config) {
	t.Helper()
	srv, err := watest.New(watest.Config{Scenario: sc})
	if err != nil {
		t.Fatal(err)
	}
	pipeDialers.Store(srv, servePipe(t, srv.Handler()))
	t.Cleanup(func() {
		srv.Close()
		pipeDialers.Delete(srv)
	})
	return srv, clientConfig(t, srv)
}

// startServerPipe is startServer over the in-memory connection.
func startServerPipe(t *testing.T, sc *watest.Scenario) *watest.Server {
	t.Helper()
	srv, _ := startPipeServer(t, sc)
	return srv
}

// runSync runs f as a subtest in a synctest bubble of its own (t.Run may
// not be called inside a bubble).
func runSync(t *testing.T, name string, f func(t *testing.T)) bool {
	return t.Run(name, func(t *testing.T) { synctest.Test(t, f) })
}

// quiet lets d of synthetic time pass in the bubble and waits until every
// goroutine has settled: what a test asserting that nothing more happens
// (no reconnect, no event) checks afterwards. Not a wait for an event.
func quiet(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}
