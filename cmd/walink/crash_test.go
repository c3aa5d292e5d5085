package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/walinkdev/walink"
	"github.com/walinkdev/walink/store"
	"github.com/walinkdev/walink/store/sqlite"
	"github.com/walinkdev/walink/watest"
)

// TestCrashDuringPairing kills `walink link` with SIGKILL at random points
// of the pairing (at least 50 times; WALINK_CRASH_ITERATIONS for more) and
// checks after each kill that the store opens cleanly and holds either no
// session or a complete one that logs in. A session stored Unconfirmed
// (killed between storing it and the server taking the pairing reply)
// counts as no session only if the server refuses it and the client then
// drops it; otherwise it must log in like any other.
func TestCrashDuringPairing(t *testing.T) {
	iterations := 50
	if v, err := strconv.Atoi(os.Getenv("WALINK_CRASH_ITERATIONS")); err == nil && v > 0 {
		iterations = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	srv, err := watest.Start(ctx, watest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	// Calibrate: how long pairing takes on this machine, from the first QR
	// code to the end, so kill points spread over the whole pairing.
	cal := linkUntilKilled(ctx, t, srv, filepath.Join(t.TempDir(), "calibrate.db"), 0)
	if !cal.exited || cal.pairing <= 0 {
		t.Fatal("calibration run did not finish")
	}
	full, toSuccess := cal.pairing, cal.toSuccess
	t.Logf("from the first QR code: %v to pair_success, %v to the end of linking", toSuccess, full)

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	var none, complete, unconfirmedRefused, unconfirmedOK int
	for i := 0; i < iterations; i++ {
		path := filepath.Join(t.TempDir(), fmt.Sprintf("crash-%d.db", i))
		// Half the kills aim at the pairing exchange itself (scan,
		// refresh, pair-success, the store write, the reply), which takes
		// milliseconds on loopback; the rest spread over the whole run
		// (515 restart, login, pre-key upload).
		window := full * 12 / 10
		if i%2 == 0 {
			window = toSuccess * 2
		}
		delay := time.Duration(1 + rng.Int64N(int64(window)))
		res := linkUntilKilled(ctx, t, srv, path, delay)

		st, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatalf("kill %d after %v (events %v): store does not open: %v", i, delay, res.events, err)
		}
		dev, err := pickDevice(ctx, st)
		if err != nil {
			st.Close()
			t.Fatalf("kill %d: reading the store: %v", i, err)
		}
		if testing.Verbose() {
			t.Logf("kill %d after %v: events %v, paired %v", i, delay, res.events, dev.Paired())
		}
		if !dev.Paired() {
			none++
			st.Close()
			continue
		}
		complete++
		if dev.LID.IsEmpty() || len(dev.Account) == 0 || dev.PrimaryIdentity.IsZero() || dev.LinkedAt.IsZero() {
			st.Close()
			t.Fatalf("kill %d after %v: half a session stored: %+v", i, delay, dev)
		}
		err = loginOnce(ctx, st, srv)
		if dev.Unconfirmed && errors.Is(err, errPairAgain) {
			// Killed before the pairing reply reached the server: the
			// client must have dropped the record and asked to pair anew.
			if _, gerr := st.Device(ctx, dev.NoiseKey.Public); !errors.Is(gerr, store.ErrNotFound) {
				st.Close()
				t.Fatalf("kill %d after %v: refused unconfirmed session still stored (err %v)", i, delay, gerr)
			}
			complete--
			none++
			unconfirmedRefused++
			st.Close()
			continue
		}
		if err != nil {
			st.Close()
			t.Fatalf("kill %d after %v (events %v, unconfirmed %v): stored session does not log in: %v", i, delay, res.events, dev.Unconfirmed, err)
		}
		if dev.Unconfirmed {
			unconfirmedOK++
			// Logging in confirmed it.
			if got, err := st.Device(ctx, dev.NoiseKey.Public); err != nil || got.Unconfirmed {
				st.Close()
				t.Fatalf("kill %d: session logged in but is still unconfirmed (err %v)", i, err)
			}
		}
		st.Close()
	}
	t.Logf("%d kills: %d left no session (%d of them an unconfirmed one the server refused), %d left a complete session that logged in (%d of them unconfirmed until then)",
		iterations, none, unconfirmedRefused, complete, unconfirmedOK)
	if none == 0 {
		t.Errorf("no kill landed before the session was saved; the kill points do not cover pairing")
	}
}

type linkResult struct {
	exited    bool // the command ended by itself (not killed)
	events    []string
	pairing   time.Duration // first QR code to exit, when it exited by itself
	toSuccess time.Duration // first QR code to the pair_success line
}

// linkUntilKilled runs `walink link --json` against srv, scanning its QR
// codes with the virtual phone, and kills it delay after the first QR code
// appeared (0 = let it finish).
func linkUntilKilled(ctx context.Context, t *testing.T, srv *watest.Server, storePath string, delay time.Duration) linkResult {
	t.Helper()
	cmd := walinkCmd(ctx, t, "link", "--json", "--store", storePath,
		"--server", srv.URL(), "--server-root", srv.RootKey().String())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var (
		mu     sync.Mutex
		events []string
		wg     sync.WaitGroup
	)
	phone := srv.Phone("15551234567")
	firstQR := make(chan time.Time, 1)
	var successAt time.Time
	scanCtx, stopScans := context.WithCancel(ctx)
	defer stopScans()
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		scanned := false
		for sc.Scan() {
			var ev map[string]any
			if json.Unmarshal(sc.Bytes(), &ev) != nil {
				continue
			}
			name, _ := ev["event"].(string)
			mu.Lock()
			events = append(events, name)
			if name == "pair_success" {
				successAt = time.Now()
			}
			mu.Unlock()
			if name == "pairing_qr_code" {
				select {
				case firstQR <- time.Now():
				default:
				}
			}
			if name == "pairing_qr_code" && !scanned {
				// Scan synchronously: a rescan (409) waits for the
				// re-rendered code, the next line.
				_, err := phone.ScanQR(scanCtx, ev["code"].(string))
				scanned = err == nil || !errors.Is(err, watest.ErrRescan)
			}
		}
	}()
	exited := true
	var qrAt time.Time
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		t.Fatalf("walink link ended before showing a QR code: %v", err)
	case qrAt = <-firstQR:
	}
	var pairing time.Duration
	if delay > 0 {
		select {
		case <-done:
		case <-time.After(delay):
			cmd.Process.Kill()
			<-done
			exited = false
		}
	} else {
		if err := <-done; err != nil {
			t.Fatalf("walink link: %v", err)
		}
		pairing = time.Since(qrAt)
	}
	stopScans()
	wg.Wait()
	res := linkResult{exited: exited, events: events, pairing: pairing}
	if !successAt.IsZero() {
		res.toSuccess = successAt.Sub(qrAt)
	}
	return res
}

// errPairAgain: the client asked to pair again instead of logging in.
var errPairAgain = errors.New("asked to pair again")

// loginOnce connects with the stored session and waits for Connected.
func loginOnce(ctx context.Context, st store.Store, srv *watest.Server) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cfg := walink.Config{ServerURL: srv.URL(), ServerRoot: srv.RootKey()}
	cfg.Reconnect.Disabled = true
	cli := walink.NewClient(st, cfg)
	defer cli.Close()
	result := make(chan error, 1)
	cli.AddEventHandler(func(ev walink.Event) {
		switch ev := ev.(type) {
		case walink.Connected:
			select {
			case result <- nil:
			default:
			}
		case walink.LoggedOut:
			select {
			case result <- fmt.Errorf("logged out (%v)", ev.Reason):
			default:
			}
		case walink.PairingQRCode:
			select {
			case result <- errPairAgain:
			default:
			}
		}
	})
	if err := cli.Connect(ctx); err != nil {
		return err
	}
	select {
	case err := <-result:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
