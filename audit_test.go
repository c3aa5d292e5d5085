package walink_test

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/walinkdev/walink"
	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/pairing"
	"github.com/walinkdev/walink/store"
	"github.com/walinkdev/walink/store/memstore"
	"github.com/walinkdev/walink/waproto"
)

// TestPairWithCodeLosesToQR: the QR is scanned while companion_hello is in
// flight. Whether the server then ends the connection (the 515 restart)
// or still answers the hello, PairWithCode reports ErrAlreadyPaired and no
// PairingCode is shown after the PairSuccess.
func TestPairWithCodeLosesToQR(t *testing.T) {
	for _, then := range []string{"restart", "hello-answered"} {
		runSync(t, then, func(t *testing.T) {
			fs := newPipeFakeServer(t)
			cli, rec := newClient(t, memstore.New(), fs.config())
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := cli.Connect(ctx); err != nil {
				t.Fatal(err)
			}
			fc := fs.accept()
			from := 0
			ident, qr := fc.showQR(rec, &from)
			errCh := make(chan error, 1)
			go func() {
				code, err := cli.PairWithCode(ctx, walink.PairCodeOptions{PhoneNumber: testPhone})
				if err == nil {
					err = errors.New("got code " + code)
				}
				errCh <- err
			}()
			hello := fc.next("companion_hello", func(n binxml.Node) bool { return hasStage(n, "companion_hello") })

			account, _ := keys.NewKeyPair(rand.Reader)
			container := signIdentity(t, account, ident, qr, 2)
			fc.send(pairSuccessIQ("ps-1", container, jid.NewAD(testPhone, 9, jid.DefaultUserServer)))
			if reply := fc.next("pair-device-sign", isIQ("ps-1")); !hasChild(reply, "pair-device-sign") {
				t.Fatalf("pair-success not signed: %v", reply)
			}
			waitFor[walink.PairSuccess](t, rec, &from, 5*time.Second)
			switch then {
			case "restart":
				fc.send(binxml.Node{Tag: "stream:error", Attrs: []binxml.Attr{binxml.A("code", "515")}})
			case "hello-answered":
				fc.send(helloReply(hello.Attr("id"), "REF-LATE"))
			}
			select {
			case err := <-errCh:
				if !errors.Is(err, walink.ErrAlreadyPaired) {
					t.Fatalf("PairWithCode = %v, want ErrAlreadyPaired", err)
				}
			case <-ctx.Done():
				t.Fatal("PairWithCode did not return")
			}
			for _, e := range rec.all() {
				if _, ok := e.(walink.PairingCode); ok {
					t.Fatalf("PairingCode emitted after QR pairing won: %s", describe(rec.all()))
				}
			}
		})
	}
}

func hasChild(n binxml.Node, tag string) bool { _, ok := n.Child(tag); return ok }

// TestConfigReachesTheWire: Version, OSName, PlatformType and PushName are
// what the server sees, in the registration payload and the QR string's
// client-type field, and in the login payload.
func TestConfigReachesTheWire(t *testing.T) {
	fs := newFakeServer(t)
	cfg := fs.config()
	cfg.Version = "2.3000.1012345678"
	cfg.OSName = "audit-os"
	cfg.PlatformType = walink.PlatformFirefox
	cfg.PushName = "Audit Bot"
	cli, rec := newClient(t, memstore.New(), cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cli.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	fc := fs.accept()
	var p waproto.ClientPayload
	if err := proto.Unmarshal(fc.hello.Payload, &p); err != nil {
		t.Fatal(err)
	}
	v := p.GetUserAgent().GetAppVersion()
	if v.GetPrimary() != 2 || v.GetSecondary() != 3000 || v.GetTertiary() != 1012345678 {
		t.Errorf("app version %v, want 2.3000.1012345678", v)
	}
	var props waproto.DeviceProps
	if err := proto.Unmarshal(p.GetDevicePairingData().GetDeviceProps(), &props); err != nil {
		t.Fatal(err)
	}
	if props.GetOs() != "audit-os" || props.GetPlatformType() != waproto.DeviceProps_FIREFOX {
		t.Errorf("device props os %q platform %v", props.GetOs(), props.GetPlatformType())
	}
	fc.pairDevice()
	from := 0
	qr, err := pairing.ParseQR(waitFor[walink.PairingQRCode](t, rec, &from, 5*time.Second).Code)
	if err != nil {
		t.Fatal(err)
	}
	if qr.ClientType != "3" {
		t.Errorf("QR client type %q, want 3 (Firefox)", qr.ClientType)
	}

	// A paired device logs in with the same version and the push name.
	st, _ := pairedStore(t)
	cli2, _ := newClient(t, st, cfg)
	if err := cli2.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	fc2 := fs.accept()
	var lp waproto.ClientPayload
	if err := proto.Unmarshal(fc2.hello.Payload, &lp); err != nil {
		t.Fatal(err)
	}
	if lp.GetUserAgent().GetAppVersion().GetTertiary() != 1012345678 || lp.GetPushName() != "Audit Bot" {
		t.Errorf("login payload version %v push name %q", lp.GetUserAgent().GetAppVersion(), lp.GetPushName())
	}
}

// httpProxy is a minimal HTTP proxy counting the connections it carries:
// CONNECT tunnels (wss://), and forwarded requests with an absolute URI,
// as an HTTP proxy gets for ws:// (the WebSocket upgrade is passed on and
// the connection then spliced).
func httpProxy(t *testing.T, used *atomic.Int32) *url.URL {
	t.Helper()
	p := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if r.Method != http.MethodConnect {
			if !r.URL.IsAbs() {
				http.Error(w, "not a proxy request", http.StatusBadRequest)
				return
			}
			host = r.URL.Host
		}
		up, err := net.Dial("tcp", host)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		used.Add(1)
		down, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			up.Close()
			return
		}
		if r.Method == http.MethodConnect {
			brw.WriteString("HTTP/1.1 200 Connection established\r\n\r\n")
			brw.Flush()
		} else {
			r.Header.Del("Proxy-Connection")
			if err := r.Write(up); err != nil {
				up.Close()
				down.Close()
				return
			}
		}
		done := make(chan struct{}, 2)
		go func() { io.Copy(up, brw); up.Close(); done <- struct{}{} }()
		go func() { io.Copy(down, up); down.Close(); done <- struct{}{} }()
		<-done
		up.Close()
		down.Close()
		<-done
	}))
	t.Cleanup(func() {
		p.CloseClientConnections()
		p.Close()
	})
	u, _ := url.Parse(p.URL)
	return u
}

// TestConfigProxy: Config.Proxy is used for the WebSocket connection, and
// a proxy that cannot be reached makes Connect fail.
func TestConfigProxy(t *testing.T) {
	fs := newFakeServer(t)
	var used atomic.Int32
	cfg := fs.config()
	cfg.Proxy = http.ProxyURL(httpProxy(t, &used))
	cli, rec := newClient(t, memstore.New(), cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cli.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	fs.accept().pairDevice()
	from := 0
	waitFor[walink.PairingQRCode](t, rec, &from, 5*time.Second)
	if used.Load() != 1 {
		t.Fatalf("proxy carried %d connections, want 1", used.Load())
	}

	dead := fs.config()
	dead.Proxy = http.ProxyURL(&url.URL{Scheme: "http", Host: "127.0.0.1:1"})
	cli2, _ := newClient(t, memstore.New(), dead)
	if err := cli2.Connect(ctx); err == nil || !strings.Contains(err.Error(), "dialing") {
		t.Fatalf("Connect through a dead proxy: %v", err)
	}
}

// TestRateLimitBacksOff: a stream error 429 reconnects no sooner than
// RateLimitDelay, although MinDelay is much shorter; with reconnection
// disabled a dropped connection is not re-dialed at all.
func TestRateLimitBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := newPipeFakeServer(t)
		st, _ := pairedStore(t)
		cfg := fs.config()
		cfg.Reconnect = walink.ReconnectPolicy{MinDelay: 10 * time.Millisecond, MaxDelay: 20 * time.Millisecond, RateLimitDelay: 600 * time.Millisecond}
		cli, rec := newClient(t, st, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := cli.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		fc := fs.accept()
		start := time.Now()
		fc.send(binxml.Node{Tag: "stream:error", Attrs: []binxml.Attr{binxml.A("code", "429")}})
		fs.accept()
		if d := time.Since(start); d < 600*time.Millisecond {
			t.Fatalf("reconnected %v after a 429, want ≥ RateLimitDelay (600ms)", d)
		}
		from := 0
		waitFor[walink.Disconnected](t, rec, &from, time.Second)
		if !cli.IsLoggedIn() {
			t.Fatal("429 cleared the session")
		}
		cli.Close()

		off := fs.config() // Reconnect.Disabled
		st2, _ := pairedStore(t)
		cli2, rec2 := newClient(t, st2, off)
		if err := cli2.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		fs.accept().send(binxml.Node{Tag: "stream:error", Attrs: []binxml.Attr{binxml.A("code", "503")}})
		from2 := 0
		waitFor[walink.Disconnected](t, rec2, &from2, 5*time.Second)
		select {
		case <-fs.conns:
			t.Fatal("reconnected with Reconnect.Disabled")
		case <-time.After(300 * time.Millisecond):
		}
	})
}

// TestConfigDeviceByJID: with several accounts in one store, Config.Device
// picks the one to log in with; an unknown JID is an error from Connect.
func TestConfigDeviceByJID(t *testing.T) {
	fs := newFakeServer(t)
	st, first := pairedStore(t)
	nk, _ := keys.NewKeyPair(rand.Reader)
	ik, _ := keys.NewKeyPair(rand.Reader)
	spk, _ := keys.NewSignedPreKey(rand.Reader, ik.Private, 1)
	acct, _ := keys.NewKeyPair(rand.Reader)
	second := &store.Device{
		NoiseKey: nk, IdentityKey: ik, SignedPreKey: spk, RegistrationID: 43, NextPreKeyID: 1,
		ID:  jid.NewAD("15557654321", 6, jid.DefaultUserServer),
		LID: jid.NewAD("223456789012345", 6, jid.LIDServer), Account: []byte{1},
		PrimaryIdentity: acct.Public, Platform: "ios", CreatedAt: time.Now(),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := st.PutDevice(ctx, second); err != nil {
		t.Fatal(err)
	}
	for _, d := range []*store.Device{second, first} {
		cfg := fs.config()
		cfg.Device = d.ID
		cli, _ := newClient(t, st, cfg)
		if err := cli.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		if fc := fs.accept(); !fc.hello.ClientStatic.Equal(d.NoiseKey.Public) {
			t.Fatalf("Config.Device %v: logged in with another device", d.ID)
		}
		if cli.ID() != d.ID {
			t.Fatalf("ID() = %v, want %v", cli.ID(), d.ID)
		}
		cli.Close()
	}
	cfg := fs.config()
	cfg.Device = jid.NewAD("15550000000", 1, jid.DefaultUserServer)
	cli, _ := newClient(t, st, cfg)
	if err := cli.Connect(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Connect with an unknown Config.Device: %v", err)
	}
}

// TestPairWithCodeWaitsForReadiness: asked before pair-device arrived, the
// request waits (nothing is sent, no error) and goes out once the
// connection is ready; without readiness it gives up with the caller's ctx.
func TestPairWithCodeWaitsForReadiness(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := newPipeFakeServer(t)
		cli, _ := newClient(t, memstore.New(), fs.config())
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := cli.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		fc := fs.accept()

		short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancelShort()
		if _, err := cli.PairWithCode(short, walink.PairCodeOptions{PhoneNumber: testPhone}); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("PairWithCode before readiness, short ctx: %v", err)
		}

		errCh := make(chan error, 1)
		go func() {
			_, err := cli.PairWithCode(ctx, walink.PairCodeOptions{PhoneNumber: testPhone})
			errCh <- err
		}()
		select {
		case n := <-fc.in:
			if hasStage(n, "companion_hello") {
				t.Fatal("companion_hello sent before pair-device")
			}
		case err := <-errCh:
			t.Fatalf("PairWithCode returned before the connection was ready: %v", err)
		case <-time.After(300 * time.Millisecond):
		}
		fc.pairDevice()
		hello := fc.next("companion_hello", func(n binxml.Node) bool { return hasStage(n, "companion_hello") })
		fc.send(helloReply(hello.Attr("id"), "REF-W"))
		if err := <-errCh; err != nil {
			t.Fatalf("PairWithCode after readiness: %v", err)
		}
	})
}
