package walink_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/walinkdev/walink"
	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/pairing"
	"github.com/walinkdev/walink/store/memstore"
	"github.com/walinkdev/walink/watest"
)

func TestE2EPairCode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := startServer(t, nil)
	st := memstore.New()
	cli, rec := newClient(t, st, clientConfig(t, srv))
	from := 0
	if err := cli.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	// Asked right after Connect, before pair-device: waits for readiness.
	code, err := cli.PairWithCode(ctx, walink.PairCodeOptions{PhoneNumber: "+1 (555) 123-4567", ShowPushNotification: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pairing.NormalizeCode(code); err != nil || len(code) != 8 {
		t.Fatalf("code %q: %v", code, err)
	}
	pc := waitFor[walink.PairingCode](t, rec, &from, 5*time.Second)
	if pc.Code != code || pc.Timeout != 180*time.Second {
		t.Fatalf("PairingCode = %+v", pc)
	}
	dev, err := srv.Phone(testPhone).EnterCode(ctx, code[:4]+"-"+code[4:])
	if err != nil {
		t.Fatal(err)
	}
	ps := waitFor[walink.PairSuccess](t, rec, &from, 5*time.Second)
	if ps.ID != dev {
		t.Fatalf("PairSuccess %v, phone linked %v", ps.ID, dev)
	}
	waitFor[walink.Connected](t, rec, &from, 10*time.Second)
	d, err := st.DeviceByJID(ctx, ps.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Account) == 0 {
		t.Fatal("no account stored")
	}
	if _, err := cli.PairWithCode(ctx, walink.PairCodeOptions{PhoneNumber: testPhone}); !errors.Is(err, walink.ErrAlreadyPaired) {
		t.Fatalf("PairWithCode when paired: %v", err)
	}
}

func TestE2EPairCodeWrongThenFresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		srv := startServerPipe(t, nil)
		cli, rec := newClient(t, memstore.New(), clientConfig(t, srv))
		from := 0
		if err := cli.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		code, err := cli.PairWithCode(ctx, walink.PairCodeOptions{PhoneNumber: testPhone})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cli.PairWithCode(ctx, walink.PairCodeOptions{PhoneNumber: testPhone}); !errors.Is(err, walink.ErrCodeAlreadyOutstanding) {
			t.Fatalf("second code: %v", err)
		}
		wrong := []byte(code)
		if wrong[0] == 'A' {
			wrong[0] = 'B'
		} else {
			wrong[0] = 'A'
		}
		if _, err := srv.Phone(testPhone).EnterCode(ctx, string(wrong)); !errors.Is(err, watest.ErrWrongCode) {
			t.Fatalf("wrong code: %v", err)
		}
		pe := waitFor[walink.PairError](t, rec, &from, 5*time.Second)
		var rej *walink.PairCodeRejectedError
		if !errors.As(pe.Err, &rej) || rej.Code != 400 {
			t.Fatalf("PairError = %v", pe.Err)
		}
		// The flow ended: a fresh code on the same connection works.
		code2, err := cli.PairWithCode(ctx, walink.PairCodeOptions{PhoneNumber: testPhone, CustomCode: "walk2k26"})
		if err != nil {
			t.Fatal(err)
		}
		if code2 != "WALK2K26" {
			t.Fatalf("custom code came back as %q", code2)
		}
		if _, err := srv.Phone(testPhone).EnterCode(ctx, "walk-2k26"); err != nil {
			t.Fatal(err)
		}
		waitFor[walink.PairSuccess](t, rec, &from, 5*time.Second)
		waitFor[walink.Connected](t, rec, &from, 10*time.Second)
	})
}

func TestE2EPairCodeCancelAndRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		srv := startServerPipe(t, nil)
		cli, rec := newClient(t, memstore.New(), clientConfig(t, srv))
		from := 0
		if err := cli.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := cli.PairWithCode(ctx, walink.PairCodeOptions{PhoneNumber: testPhone}); err != nil {
			t.Fatal(err)
		}
		if err := srv.Phone(testPhone).RefreshCode(ctx, true); err != nil {
			t.Fatal(err)
		}
		if r := waitFor[walink.PairingCodeRefresh](t, rec, &from, 5*time.Second); !r.ForceManual {
			t.Fatal("ForceManual lost")
		}
		if err := cli.CancelPairCode(ctx); err != nil {
			t.Fatal(err)
		}
		code, err := cli.PairWithCode(ctx, walink.PairCodeOptions{PhoneNumber: testPhone})
		if err != nil {
			t.Fatalf("code after cancel: %v", err)
		}
		if _, err := srv.Phone(testPhone).EnterCode(ctx, code); err != nil {
			t.Fatal(err)
		}
		waitFor[walink.Connected](t, rec, &from, 10*time.Second)
	})
}

func TestE2EPairCodeRateLimited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		sc := watest.DefaultScenario()
		sc.PairCodeRateLimit = 1
		srv := startServerPipe(t, &sc)
		cli, _ := newClient(t, memstore.New(), clientConfig(t, srv))
		if err := cli.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := cli.PairWithCode(ctx, walink.PairCodeOptions{PhoneNumber: testPhone}); err != nil {
			t.Fatal(err)
		}
		if err := cli.CancelPairCode(ctx); err != nil {
			t.Fatal(err)
		}
		_, err := cli.PairWithCode(ctx, walink.PairCodeOptions{PhoneNumber: testPhone})
		var rej *walink.PairCodeRejectedError
		if !errors.As(err, &rej) || rej.Code != 429 || !rej.Throttled {
			t.Fatalf("rate-limited request: %v", err)
		}
		// The server's backoff attribute (what is left of its window)
		// reaches the error.
		if rej.Backoff <= 0 || rej.Backoff > time.Hour {
			t.Fatalf("Backoff = %v, want the server's hint", rej.Backoff)
		}
		var ie *walink.IQError
		if !errors.As(err, &ie) || ie.Code != 429 {
			t.Fatalf("IQError not reachable through errors.As: %v", err)
		}
		if !errors.Is(err, &walink.IQError{Code: 429}) || errors.Is(err, &walink.IQError{Code: 400}) {
			t.Fatalf("errors.Is by code: %v", err)
		}
	})
}

// TestE2EQRAndCodeRace runs both methods at once: the QR is scanned while
// the code is typed. Exactly one PairSuccess and one stored identity.
func TestE2EQRAndCodeRace(t *testing.T) {
	// Each round costs several PBKDF2 runs (slow under -race); raise with
	// -count for more.
	n := 3
	for i := range n {
		winner := []string{"qr", "code", "both"}[i%3]
		runSync(t, winner, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			sc := watest.DefaultScenario()
			sc.QRRefresh = false
			srv := startServerPipe(t, &sc)
			st := memstore.New()
			cli, rec := newClient(t, st, clientConfig(t, srv))
			from := 0
			if err := cli.Connect(ctx); err != nil {
				t.Fatal(err)
			}
			qr := waitFor[walink.PairingQRCode](t, rec, &from, 5*time.Second)
			code, err := cli.PairWithCode(ctx, walink.PairCodeOptions{PhoneNumber: testPhone})
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			var qrErr, codeErr error
			var qrDev, codeDev jid.JID
			if winner != "code" {
				wg.Go(func() { qrDev, qrErr = srv.Phone(testPhone).ScanQR(ctx, qr.Code) })
			}
			if winner != "qr" {
				wg.Go(func() { codeDev, codeErr = srv.Phone(testPhone).EnterCode(ctx, code) })
			}
			wg.Wait()
			waitFor[walink.Connected](t, rec, &from, 10*time.Second)
			if (qrErr == nil) == (codeErr == nil) && winner == "both" {
				t.Logf("qr: %v %v; code: %v %v", qrDev, qrErr, codeDev, codeErr)
			}
			successes := 0
			for _, e := range rec.all() {
				if _, ok := e.(walink.PairSuccess); ok {
					successes++
				}
			}
			if successes != 1 {
				t.Fatalf("%d PairSuccess events", successes)
			}
			devs, _ := st.Devices(ctx)
			paired := 0
			for _, d := range devs {
				if d.Paired() {
					paired++
				}
			}
			if paired != 1 || len(devs) != 1 {
				t.Fatalf("store holds %d devices, %d paired", len(devs), paired)
			}
		})
	}
}

// TestE2EQRSpentCodeKeepsConnection: when the QR refs run out while a code
// is outstanding the connection stays; when that code then fails, the
// client disconnects (nothing is left to pair with).
func TestE2EQRSpentCodeKeepsConnection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		srv := startServerPipe(t, nil)
		cfg := clientConfig(t, srv)
		cfg.QRFirstTimeout = 300 * time.Millisecond
		cfg.QRNextTimeout = 50 * time.Millisecond
		cli, rec := newClient(t, memstore.New(), cfg)
		from := 0
		if err := cli.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		code, err := cli.PairWithCode(ctx, walink.PairCodeOptions{PhoneNumber: testPhone})
		if err != nil {
			t.Fatal(err)
		}
		waitFor[walink.QRCodesExpired](t, rec, &from, 10*time.Second)
		quiet(time.Second) // less than the code's window
		for _, e := range rec.all()[from:] {
			if _, ok := e.(walink.Disconnected); ok {
				t.Fatal("disconnected although a pair code is outstanding")
			}
		}
		wrong := "1111" + code[4:]
		if wrong == code {
			wrong = "2222" + code[4:]
		}
		if _, err := srv.Phone(testPhone).EnterCode(ctx, wrong); !errors.Is(err, watest.ErrWrongCode) {
			t.Fatalf("wrong code: %v", err)
		}
		waitFor[walink.PairError](t, rec, &from, 10*time.Second)
		waitFor[walink.Disconnected](t, rec, &from, 10*time.Second)
	})
}
