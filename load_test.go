package walink_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/walinkdev/walink"
	"github.com/walinkdev/walink/store/memstore"
	"github.com/walinkdev/walink/watest"
)

// TestLoadConcurrentLinks links many devices at once against one local
// WhatsApp over loopback, each on its own phone number: every one must
// pair, restart, log in and end with its session stored and confirmed,
// and the server must know every device: none lost. WALINK_LOAD_N sets
// the count: default 20, enough for every stage to overlap in a package
// run; .ci/run runs the load proper, 1000, without the race detector.
func TestLoadConcurrentLinks(t *testing.T) {
	n := 20
	if s := os.Getenv("WALINK_LOAD_N"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 1 {
			t.Fatalf("WALINK_LOAD_N=%q", s)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	srv := startServer(t, nil)

	type result struct {
		cli   *walink.Client
		st    *memstore.Store
		phone string
		err   error
	}
	results := make([]result, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		phone := fmt.Sprintf("1555%07d", i)
		st := memstore.New()
		cli := walink.NewClient(st, clientConfig(t, srv))
		t.Cleanup(func() { cli.Close() })
		results[i] = result{cli: cli, st: st, phone: phone}
		wg.Go(func() {
			<-start
			results[i].err = linkOne(ctx, srv.Phone(phone), cli)
		})
	}
	close(start) // all at once
	wg.Wait()

	failed := 0
	for i, r := range results {
		if r.err != nil {
			failed++
			if failed <= 5 {
				t.Errorf("device %d: %v", i, r.err)
			}
			continue
		}
		devs, err := r.st.Devices(ctx)
		if err != nil || len(devs) != 1 || !devs[0].Paired() || devs[0].Unconfirmed || devs[0].ID != r.cli.ID() {
			t.Errorf("device %d: stored %d devices (%v), want one confirmed session for %v", i, len(devs), err, r.cli.ID())
		}
		if got := srv.Phone(r.phone).Devices(); len(got) != 1 || got[0].JID != r.cli.ID() {
			t.Errorf("device %d: the server knows %v for %s, want %v", i, got, r.phone, r.cli.ID())
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d devices failed to link", failed, n)
	}
	t.Logf("%d devices linked concurrently", n)
}

// linkOne connects cli, lets phone scan its QR (again after a
// companion_reg_refresh), and waits for the login after the 515 restart.
func linkOne(ctx context.Context, phone *watest.Phone, cli *walink.Client) error {
	evs := make(chan walink.Event, 64)
	cli.AddEventHandler(func(e walink.Event) {
		select {
		case evs <- e:
		case <-ctx.Done():
		}
	})
	if err := cli.Connect(ctx); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	paired := false
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting to link (paired=%v): %w", paired, ctx.Err())
		case e := <-evs:
			switch e := e.(type) {
			case walink.PairingQRCode:
				if paired {
					continue
				}
				if _, err := phone.ScanQR(ctx, e.Code); err != nil && !errors.Is(err, watest.ErrRescan) {
					return fmt.Errorf("scan: %w", err)
				}
			case walink.PairSuccess:
				paired = true
			case walink.Connected:
				if paired {
					return nil
				}
			case walink.PairError:
				return fmt.Errorf("pair error: %w", e.Err)
			case walink.QRCodesExpired, walink.LoggedOut, walink.ConnectFailure, walink.ClientOutdated:
				return fmt.Errorf("event %T %+v", e, e)
			}
		}
	}
}
