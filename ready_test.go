package walink_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walinkdev/walink"
	"github.com/walinkdev/walink/store/memstore"
)

// TestWaitReadyAndDevice: WaitReady answers once pairing is offered (a
// new device) and once the login succeeded (a linked one); the pair code
// carries its expiry on Config.Now's clock; Device reports the linked
// device, and nothing before it is paired.
func TestWaitReadyAndDevice(t *testing.T) {
	runSync(t, "code", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		srv, cfg := startPipeServer(t, nil)
		cli, rec := newClient(t, memstore.New(), cfg)
		if err := cli.WaitReady(ctx); !errors.Is(err, walink.ErrNotConnected) {
			t.Fatalf("WaitReady before Connect: %v", err)
		}
		if err := cli.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		if err := cli.WaitReady(ctx); err != nil {
			t.Fatalf("WaitReady, new device: %v", err)
		}
		if _, ok := cli.Device(); ok {
			t.Fatal("Device() reports a device before pairing")
		}
		asked := time.Now()
		pc, err := cli.RequestPairCode(ctx, walink.PairCodeOptions{PhoneNumber: testPhone})
		if err != nil {
			t.Fatal(err)
		}
		if !pc.Expires.Equal(asked.Add(180 * time.Second)) {
			t.Fatalf("code expires %v, asked at %v: want +180s", pc.Expires, asked)
		}
		from := 0
		ev := waitFor[walink.PairingCode](t, rec, &from, 5*time.Second)
		if ev.Code != pc.Code || !ev.Expires.Equal(pc.Expires) {
			t.Fatalf("event %+v, RequestPairCode %+v", ev, pc)
		}
		dev, err := srv.Phone(testPhone).EnterCode(ctx, pc.Code)
		if err != nil {
			t.Fatal(err)
		}
		ps := waitFor[walink.PairSuccess](t, rec, &from, 5*time.Second)
		waitFor[walink.Connected](t, rec, &from, 10*time.Second)
		if err := cli.WaitReady(ctx); err != nil {
			t.Fatalf("WaitReady, connected: %v", err)
		}
		info, ok := cli.Device()
		if !ok || info.ID != dev || info.LID != ps.LID || info.Platform != ps.Platform || info.Platform == "" {
			t.Fatalf("Device() = %+v, %v; linked %v, PairSuccess %+v", info, ok, dev, ps)
		}
	})
	runSync(t, "stopped", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		srv, cfg := startPipeServer(t, nil)
		st := memstore.New()
		cli, _ := newClient(t, st, cfg)
		if err := linkOne(ctx, srv.Phone(testPhone), cli); err != nil {
			t.Fatal(err)
		}
		info, _ := cli.Device()
		cli.Disconnect()
		var se *walink.StoppedError
		if err := cli.WaitReady(ctx); !errors.As(err, &se) || se.Reason != "closed" {
			t.Fatalf("WaitReady after Disconnect: %v", err)
		}
		// Unlinked on the phone while offline: the next login is refused.
		if err := srv.Phone(testPhone).Unlink(ctx, info.ID.Device); err != nil {
			t.Fatal(err)
		}
		if err := cli.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		err := cli.WaitReady(ctx)
		if !errors.As(err, &se) || !errors.Is(err, walink.ErrNotConnected) {
			t.Fatalf("WaitReady after a refused login: %v", err)
		}
		if lo, ok := se.Event.(walink.LoggedOut); !ok || !lo.OnConnect || se.Reason != "logged-out" {
			t.Fatalf("StoppedError %+v", se)
		}
		if _, ok := cli.Device(); ok {
			t.Fatal("Device() after logout")
		}
	})
}

// countingGate wraps a gate and records the most slots held at once.
type countingGate struct {
	gate       walink.DialGate
	in, max    atomic.Int64
	acquired   atomic.Int64
	maxUpdates sync.Mutex
}

func (g *countingGate) dial(ctx context.Context) (func(), error) {
	rel, err := g.gate(ctx)
	if err != nil {
		return nil, err
	}
	g.acquired.Add(1)
	n := g.in.Add(1)
	g.maxUpdates.Lock()
	if n > g.max.Load() {
		g.max.Store(n)
	}
	g.maxUpdates.Unlock()
	var once sync.Once
	return func() { once.Do(func() { g.in.Add(-1); rel() }) }, nil
}

// TestDialGateBoundsReconnects: N linked clients share LimitDials(2);
// the server drops every connection at once (503): every client
// reconnects by itself, each through the gate, never more than 2 at a
// time, and every slot is given back.
func TestDialGateBoundsReconnects(t *testing.T) {
	const n, limit = 8, 2
	runSync(t, "outage", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		srv, cfg := startPipeServer(t, nil)
		g := &countingGate{gate: walink.LimitDials(limit)}
		cfg.DialGate = g.dial
		clis := make([]*walink.Client, n)
		recs := make([]*recorder, n)
		for i := range n {
			clis[i], recs[i] = newClient(t, memstore.New(), cfg)
			if err := linkOne(ctx, srv.Phone(fmt.Sprintf("1555%07d", i)), clis[i]); err != nil {
				t.Fatal(err)
			}
		}
		if m := g.max.Load(); m > limit {
			t.Fatalf("%d dials at once while linking, limit %d", m, limit)
		}
		g.max.Store(0)
		before := g.acquired.Load()
		froms := make([]int, n)
		for i, c := range clis {
			froms[i] = len(recs[i].all())
			info, _ := c.Device()
			if err := srv.Kick(ctx, info.ID, "503"); err != nil {
				t.Fatal(err)
			}
		}
		for i := range n {
			waitFor[walink.Disconnected](t, recs[i], &froms[i], 10*time.Second)
			waitFor[walink.Connected](t, recs[i], &froms[i], time.Minute)
		}
		if got := g.acquired.Load() - before; got < n {
			t.Fatalf("%d reconnects went through the gate, want >= %d", got, n)
		}
		if m := g.max.Load(); m > limit || m < 2 {
			t.Fatalf("at most %d reconnects held the gate at once, want 2..%d", m, limit)
		}
		if in := g.in.Load(); in != 0 {
			t.Fatalf("%d gate slots still held with every client connected", in)
		}
	})
}

// Many clients of one process share a dial gate, so that after an outage
// their reconnects reach WhatsApp a few at a time; each start waits for
// its login's outcome rather than a fixed time.
func ExampleLimitDials() {
	st := memstore.New()
	gate := walink.LimitDials(8)
	ctx := context.Background()
	for range 3 {
		cli := walink.NewClient(st, walink.Config{NewDevice: true, DialGate: gate})
		if err := cli.Connect(ctx); err != nil {
			fmt.Println("connect:", err)
			continue
		}
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := cli.WaitReady(wctx) // nil: connected, or showing QR codes
		cancel()
		if info, ok := cli.Device(); ok {
			fmt.Println("linked", info.ID, info.Platform)
		} else if err == nil {
			fmt.Println("waiting for a scan")
		}
	}
}
