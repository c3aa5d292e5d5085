package walink_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/walinkdev/walink"
	"github.com/walinkdev/walink/store/memstore"
	"github.com/walinkdev/walink/watest"
)

// TestIdleSessionFootprint links several devices and reports the heap and
// goroutines each idle, connected session adds. The numbers include the
// in-process server's side of each connection, so they are an upper bound
// for the client. Run with WALINK_FOOTPRINT=1.
func TestIdleSessionFootprint(t *testing.T) {
	if os.Getenv("WALINK_FOOTPRINT") == "" {
		t.Skip("set WALINK_FOOTPRINT=1 to measure")
	}
	const n = 20
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	sc := watest.DefaultScenario()
	sc.QRRefresh = false
	sc.FirstStanzaDelayMS = 0
	srv := startServer(t, &sc)
	measure := func() (uint64, int) {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc, runtime.NumGoroutine()
	}
	heap0, g0 := measure()
	var clients []*walink.Client
	for i := range n {
		cli := walink.NewClient(memstore.New(), walink.Config{ServerURL: srv.URL(), ServerRoot: srv.RootKey(), PreKeyCount: 30})
		rec := newRecorder()
		cli.AddEventHandler(rec.handle)
		from := 0
		if err := cli.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		qr := waitFor[walink.PairingQRCode](t, rec, &from, 5*time.Second)
		if _, err := srv.Phone(fmt.Sprintf("1555000%04d", i)).ScanQR(ctx, qr.Code); err != nil {
			t.Fatal(err)
		}
		waitFor[walink.Connected](t, rec, &from, 10*time.Second)
		clients = append(clients, cli)
	}
	time.Sleep(200 * time.Millisecond)
	heap1, g1 := measure()
	t.Logf("per idle session (client + server side): %.1f KiB heap, %.1f goroutines",
		float64(heap1-heap0)/n/1024, float64(g1-g0)/n)
	for _, c := range clients {
		c.Close()
	}
}
