package walink_test

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/walinkdev/walink"
	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/noise"
	"github.com/walinkdev/walink/pairing"
	"github.com/walinkdev/walink/store"
	"github.com/walinkdev/walink/store/memstore"
	"github.com/walinkdev/walink/transport"
	"github.com/walinkdev/walink/waproto"
)

// fakeServer is a scripted WhatsApp for the cases watest does not stage
// (tampered pair-success, a server ping during key derivation): the test
// reads what the client sends and writes what it wants.
type fakeServer struct {
	t      *testing.T
	root   keys.KeyPair
	static keys.KeyPair
	chain  []byte
	hs     *httptest.Server
	dial   func(context.Context) (net.Conn, error) // newPipeFakeServer's, instead of hs
	conns  chan *fakeConn
	wait   time.Duration // how long next waits; synthetic time in a bubble
}

type fakeConn struct {
	t     *testing.T
	tc    *transport.Conn
	hello *transport.Hello
	in    chan binxml.Node
	wait  time.Duration
}

func newFakeServer(t *testing.T) *fakeServer {
	t.Helper()
	fs, h, stop := makeFakeServer(t)
	fs.hs = httptest.NewServer(h)
	t.Cleanup(func() {
		stop()
		fs.hs.CloseClientConnections()
		fs.hs.Close()
	})
	return fs
}

// newPipeFakeServer is a fake server reached over net.Pipe (config sets
// Config.Dial), for tests in a synctest bubble.
func newPipeFakeServer(t *testing.T) *fakeServer {
	t.Helper()
	fs, h, stop := makeFakeServer(t)
	fs.dial = servePipe(t, h)
	fs.wait = 10 * time.Minute // synthetic: the protocol's own timers run
	t.Cleanup(stop)
	return fs
}

func makeFakeServer(t *testing.T) (*fakeServer, http.Handler, func()) {
	fs := &fakeServer{t: t, conns: make(chan *fakeConn, 4), wait: 10 * time.Second}
	var err error
	must := func(kp keys.KeyPair, err error) keys.KeyPair {
		if err != nil {
			t.Fatal(err)
		}
		return kp
	}
	fs.root = must(keys.NewKeyPair(rand.Reader))
	fs.static = must(keys.NewKeyPair(rand.Reader))
	inter := must(keys.NewKeyPair(rand.Reader))
	now := time.Now()
	fs.chain, err = noise.NewCertChain(rand.Reader, fs.root.Private, inter, fs.static.Public,
		noise.CertOptions{IntermediateSerial: 7, LeafSerial: 8, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nc, err := transport.Accept(w, r)
		if err != nil {
			return
		}
		tc, hello, err := transport.ServerHandshake(ctx, nc, transport.ServerConfig{Static: fs.static, CertChain: fs.chain})
		if err != nil {
			return
		}
		fc := &fakeConn{t: t, tc: tc, hello: hello, in: make(chan binxml.Node, 64), wait: fs.wait}
		fs.conns <- fc
		defer close(fc.in)
		for {
			b, err := tc.ReadFrame()
			if err != nil {
				return
			}
			n, err := binxml.Unmarshal(b)
			if err != nil {
				t.Errorf("fake server: undecodable frame: %v", err)
				return
			}
			fc.in <- n
		}
	})
	return fs, h, cancel
}

func (fs *fakeServer) config() walink.Config {
	if fs.dial != nil {
		return walink.Config{
			ServerURL:  "ws://fake.invalid/ws/chat",
			Dial:       fs.dial,
			ServerRoot: fs.root.Public,
			Logger:     testLogger(fs.t),
			Reconnect:  walink.ReconnectPolicy{Disabled: true},
		}
	}
	return walink.Config{
		ServerURL:  "ws" + strings.TrimPrefix(fs.hs.URL, "http") + "/ws/chat",
		ServerRoot: fs.root.Public,
		Logger:     testLogger(fs.t),
		Reconnect:  walink.ReconnectPolicy{Disabled: true},
	}
}

func (fs *fakeServer) accept() *fakeConn {
	fs.t.Helper()
	select {
	case fc := <-fs.conns:
		return fc
	case <-time.After(10 * time.Second):
		fs.t.Fatal("fake server: no connection")
		return nil
	}
}

func (fc *fakeConn) send(n binxml.Node) {
	fc.t.Helper()
	b, err := binxml.Marshal(n)
	if err != nil {
		fc.t.Fatal(err)
	}
	if err := fc.tc.WriteFrame(context.Background(), b); err != nil {
		fc.t.Fatal(err)
	}
}

// next returns the next stanza from the client that match accepts,
// skipping acks.
func (fc *fakeConn) next(what string, match func(binxml.Node) bool) binxml.Node {
	fc.t.Helper()
	timeout := time.After(fc.wait)
	for {
		select {
		case n, ok := <-fc.in:
			if !ok {
				fc.t.Fatalf("fake server: connection closed waiting for %s", what)
			}
			if match(n) {
				return n
			}
		case <-timeout:
			fc.t.Fatalf("fake server: timed out waiting for %s", what)
		}
	}
}

func (fc *fakeConn) registration() *waproto.ClientPayload_DevicePairingRegistrationData {
	fc.t.Helper()
	var p waproto.ClientPayload
	if err := proto.Unmarshal(fc.hello.Payload, &p); err != nil {
		fc.t.Fatal(err)
	}
	if p.GetDevicePairingData() == nil {
		fc.t.Fatal("not a registration payload")
	}
	return p.GetDevicePairingData()
}

var srvFrom = binxml.AJ("from", jid.ServerJID)

func iqSet(id string, children ...binxml.Node) binxml.Node {
	return binxml.Node{Tag: "iq", Attrs: []binxml.Attr{srvFrom, binxml.A("id", id), binxml.A("type", "set"), binxml.A("xmlns", "md")}, Children: children}
}

func isIQ(id string) func(binxml.Node) bool {
	return func(n binxml.Node) bool { return n.Tag == "iq" && n.Attr("id") == id }
}

func (fc *fakeConn) pairDevice() {
	fc.t.Helper()
	fc.send(iqSet("pd-1", binxml.Node{Tag: "pair-device", Children: []binxml.Node{{Tag: "ref", Content: []byte("2@fake-ref")}}}))
	if ack := fc.next("pair-device ack", isIQ("pd-1")); ack.Attr("type") != "result" || len(ack.Children) != 0 {
		fc.t.Fatalf("pair-device ack = %v", ack)
	}
}

// showQR has the fake server send pair-device and returns the
// companion's identity key (from its registration payload) and the QR
// code the client then shows: what a phone scanning it would learn.
func (fc *fakeConn) showQR(rec *recorder, from *int) (keys.PublicKey, pairing.QR) {
	fc.t.Helper()
	ident, err := keys.PublicKeyFromBytes(fc.registration().EIdent)
	if err != nil {
		fc.t.Fatal(err)
	}
	fc.pairDevice()
	qr, err := pairing.ParseQR(waitFor[walink.PairingQRCode](fc.t, rec, from, 5*time.Second).Code)
	if err != nil {
		fc.t.Fatal(err)
	}
	return ident, qr
}

// signIdentity is the phone's side of a scan: account signs the
// companion's identity key, keyed by the QR's adv secret.
func signIdentity(t testing.TB, account keys.KeyPair, ident keys.PublicKey, qr pairing.QR, keyIndex uint32) []byte {
	t.Helper()
	c, err := pairing.SignDeviceIdentity(rand.Reader, account, ident, qr.AdvSecret, pairing.DeviceIdentity{RawID: 1, Timestamp: 1795597893, KeyIndex: keyIndex})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func pairSuccessIQ(id string, container []byte, dev jid.JID) binxml.Node {
	return binxml.Node{Tag: "iq", Attrs: []binxml.Attr{srvFrom, binxml.A("id", id), binxml.A("type", "set"), binxml.A("xmlns", "md"), binxml.A("t", "1795597893")},
		Children: []binxml.Node{{Tag: "pair-success", Children: []binxml.Node{
			{Tag: "device-identity", Content: container},
			{Tag: "device", Attrs: []binxml.Attr{binxml.AJ("jid", dev), binxml.AJ("lid", jid.NewAD("123456789012345", dev.Device, jid.LIDServer))}},
			{Tag: "platform", Attrs: []binxml.Attr{binxml.A("name", "android")}},
		}}}}
}

// TestPairSuccessTampered: a wrong HMAC and a wrong account signature are
// each refused with WhatsApp's error reply and PairError, and nothing is
// stored.
func TestPairSuccessTampered(t *testing.T) {
	for _, tc := range []struct {
		name     string
		tamper   func(t *testing.T, container []byte, adv [32]byte) []byte
		sentinel error
		text     string
	}{
		{"hmac", func(t *testing.T, c []byte, adv [32]byte) []byte {
			var m waproto.ADVSignedDeviceIdentityHMAC
			if err := proto.Unmarshal(c, &m); err != nil {
				t.Fatal(err)
			}
			m.HMAC[0] ^= 1
			out, _ := proto.Marshal(&m)
			return out
		}, pairing.ErrHMACMismatch, "hmac-mismatch"},
		{"account-signature", func(t *testing.T, c []byte, adv [32]byte) []byte {
			var m waproto.ADVSignedDeviceIdentityHMAC
			if err := proto.Unmarshal(c, &m); err != nil {
				t.Fatal(err)
			}
			var sd waproto.ADVSignedDeviceIdentity
			if err := proto.Unmarshal(m.Details, &sd); err != nil {
				t.Fatal(err)
			}
			sd.AccountSignature[10] ^= 1
			m.Details, _ = proto.Marshal(&sd)
			mac := hmac.New(sha256.New, adv[:]) // keep the HMAC valid
			mac.Write(m.Details)
			m.HMAC = mac.Sum(nil)
			out, _ := proto.Marshal(&m)
			return out
		}, pairing.ErrSignatureMismatch, "signature-mismatch"},
	} {
		runSync(t, tc.name, func(t *testing.T) {
			fs := newPipeFakeServer(t)
			st := memstore.New()
			cli, rec := newClient(t, st, fs.config())
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := cli.Connect(ctx); err != nil {
				t.Fatal(err)
			}
			fc := fs.accept()
			from := 0
			ident, qr := fc.showQR(rec, &from)
			account, _ := keys.NewKeyPair(rand.Reader)
			container := signIdentity(t, account, ident, qr, 5)
			dev := jid.NewAD(testPhone, 5, jid.DefaultUserServer)
			fc.send(pairSuccessIQ("ps-1", tc.tamper(t, container, qr.AdvSecret), dev))
			reply := fc.next("pair-success reply", isIQ("ps-1"))
			e, _ := reply.Child("error")
			if reply.Attr("type") != "error" || e.Attr("code") != "401" || e.Attr("text") != tc.text {
				t.Fatalf("reply = %v", reply)
			}
			pe := waitFor[walink.PairError](t, rec, &from, 5*time.Second)
			if !errors.Is(pe.Err, tc.sentinel) || pe.ID != dev {
				t.Fatalf("PairError = %+v", pe)
			}
			if cli.IsLoggedIn() {
				t.Fatal("logged in after a refused pair-success")
			}
			if _, err := st.DeviceByJID(ctx, dev); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("session stored: %v", err)
			}
			devs, _ := st.Devices(ctx)
			for _, d := range devs {
				if d.Paired() || len(d.Account) > 0 || !d.PrimaryIdentity.IsZero() {
					t.Fatalf("pairing data stored: %+v", d.ID)
				}
			}
			for _, e := range rec.all() {
				if _, ok := e.(walink.PairSuccess); ok {
					t.Fatal("PairSuccess after a refused pair-success")
				}
			}
		})
	}
}

// TestPingDuringKeyDerivation: stage 2's PBKDF2 runs off the read loop, so
// a server ping sent right after primary_hello is answered before the
// (slow) companion_finish goes out.
func TestPingDuringKeyDerivation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := newPipeFakeServer(t)
		cli, rec := newClient(t, memstore.New(), fs.config())
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := cli.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		fc := fs.accept()
		fc.pairDevice()

		codeCh := make(chan string, 1)
		go func() {
			code, err := cli.PairWithCode(ctx, walink.PairCodeOptions{PhoneNumber: testPhone})
			if err != nil {
				t.Error(err)
			}
			codeCh <- code
		}()
		hello := fc.next("companion_hello", func(n binxml.Node) bool { return hasStage(n, "companion_hello") })
		regNode, _ := hello.Child("link_code_companion_reg")
		if to, _ := regNode.AttrJID("jid"); to.User != testPhone {
			t.Fatalf("companion_hello jid %v", to)
		}
		fc.send(helloReply(hello.Attr("id"), "REF-1"))
		code := <-codeCh
		from := 0
		waitFor[walink.PairingCode](t, rec, &from, 5*time.Second)

		primaryEph, _ := keys.NewKeyPair(rand.Reader)
		primaryID, _ := keys.NewKeyPair(rand.Reader)
		wrapped, err := pairing.WrapKey(rand.Reader, code, primaryEph.Public)
		if err != nil {
			t.Fatal(err)
		}
		primaryHello := binxml.Node{Tag: "notification", Attrs: []binxml.Attr{srvFrom, binxml.A("id", "n-1"), binxml.A("type", "link_code_companion_reg")},
			Children: []binxml.Node{{Tag: "link_code_companion_reg", Attrs: []binxml.Attr{binxml.A("stage", "primary_hello")}, Children: []binxml.Node{
				{Tag: "link_code_pairing_wrapped_primary_ephemeral_pub", Content: wrapped},
				{Tag: "primary_identity_pub", Content: primaryID.Public.Bytes()},
				{Tag: "link_code_pairing_ref", Content: []byte("REF-1")},
			}}}}
		fc.send(primaryHello)
		fc.send(primaryHello) // a duplicate while stage 2 runs starts nothing
		fc.send(binxml.Node{Tag: "iq", Attrs: []binxml.Attr{srvFrom, binxml.A("id", "ping-1"), binxml.A("type", "get"), binxml.A("xmlns", "urn:xmpp:ping")}})
		first := fc.next("pong or companion_finish", func(n binxml.Node) bool {
			return isIQ("ping-1")(n) || hasStage(n, "companion_finish")
		})
		if !isIQ("ping-1")(first) || first.Attr("type") != "result" {
			t.Fatalf("read loop blocked: got %v before the pong", first.Tag)
		}
		fin := fc.next("companion_finish", func(n binxml.Node) bool { return hasStage(n, "companion_finish") })
		finReg, _ := fin.Child("link_code_companion_reg")
		bundle, _ := finReg.Child("link_code_pairing_wrapped_key_bundle")
		if len(bundle.Content) != pairing.KeyBundleSize {
			t.Fatalf("bundle %d bytes", len(bundle.Content))
		}
		fc.send(iqResult(fin.Attr("id")))
		deadline := time.After(time.Second)
		for {
			select {
			case n := <-fc.in:
				if hasStage(n, "companion_finish") {
					t.Fatal("a duplicate primary_hello produced a second companion_finish")
				}
				continue
			case <-deadline:
			}
			break
		}
	})
}

func hasStage(n binxml.Node, stage string) bool {
	reg, ok := n.Child("link_code_companion_reg")
	return n.Tag == "iq" && ok && reg.Attr("stage") == stage
}

// TestDoublePairSuccess sends two valid pair-success stanzas back to back
// (as when a QR scan and a typed code complete together), many times: the
// first wins, exactly one PairSuccess is emitted, one reply is signed and
// one identity stored.
func TestDoublePairSuccess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		iterations := 30
		if testing.Short() {
			iterations = 5
		}
		fs := newPipeFakeServer(t)
		account, _ := keys.NewKeyPair(rand.Reader)
		for i := range iterations {
			st := memstore.New()
			cli, rec := newClient(t, st, fs.config())
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			if err := cli.Connect(ctx); err != nil {
				t.Fatal(err)
			}
			fc := fs.accept()
			from := 0
			ident, qr := fc.showQR(rec, &from)
			devs := []jid.JID{jid.NewAD(testPhone, 7, jid.DefaultUserServer), jid.NewAD(testPhone, 8, jid.DefaultUserServer)}
			for j, dev := range devs {
				fc.send(pairSuccessIQ(fmt.Sprintf("ps-%d", j), signIdentity(t, account, ident, qr, uint32(j+1)), dev))
			}
			reply := fc.next("pair-device-sign", isIQ("ps-0"))
			if _, ok := reply.Child("pair-device-sign"); !ok {
				t.Fatalf("iteration %d: first pair-success not signed: %v", i, reply)
			}
			ps := waitFor[walink.PairSuccess](t, rec, &from, 5*time.Second)
			if ps.ID != devs[0] {
				t.Fatalf("iteration %d: PairSuccess for %v", i, ps.ID)
			}
			cli.Close()
			n := 0
			for _, e := range rec.all() {
				if _, ok := e.(walink.PairSuccess); ok {
					n++
				}
			}
			stored, _ := st.Devices(ctx)
			if n != 1 || len(stored) != 1 || stored[0].ID != devs[0] {
				t.Fatalf("iteration %d: %d PairSuccess, %d devices", i, n, len(stored))
			}
			cancel()
		}
	})
}

// pairedStore returns a store holding one paired device, as after a link.
func pairedStore(t *testing.T) (*memstore.Store, *store.Device) {
	t.Helper()
	st := memstore.New()
	nk, _ := keys.NewKeyPair(rand.Reader)
	ik, _ := keys.NewKeyPair(rand.Reader)
	spk, _ := keys.NewSignedPreKey(rand.Reader, ik.Private, 1)
	acct, _ := keys.NewKeyPair(rand.Reader)
	d := &store.Device{
		NoiseKey: nk, IdentityKey: ik, SignedPreKey: spk, RegistrationID: 42, NextPreKeyID: 1,
		ID:  jid.NewAD(testPhone, 4, jid.DefaultUserServer),
		LID: jid.NewAD("123456789012345", 4, jid.LIDServer), Account: []byte{1},
		PrimaryIdentity: acct.Public, Platform: "android", CreatedAt: time.Now(),
	}
	if err := st.PutDevice(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	return st, d
}

// TestLoginFailures: each <failure> reason produces its event, clears the
// session only when it means logged out, and stops reconnecting.
func TestLoginFailures(t *testing.T) {
	for _, tc := range []struct {
		attrs     []binxml.Attr
		check     func(t *testing.T, e walink.Event) bool
		loggedOut bool
	}{
		{[]binxml.Attr{binxml.A("reason", "401")}, func(t *testing.T, e walink.Event) bool {
			lo, ok := e.(walink.LoggedOut)
			return ok && lo.OnConnect && lo.Reason == walink.ReasonLoggedOut
		}, true},
		{[]binxml.Attr{binxml.A("reason", "403"), binxml.A("logout_message_header", "locked")}, func(t *testing.T, e walink.Event) bool {
			lo, ok := e.(walink.LoggedOut)
			return ok && lo.OnConnect && lo.Reason == walink.ReasonMainDeviceGone
		}, true},
		{[]binxml.Attr{binxml.A("reason", "402"), binxml.A("code", "101"), binxml.A("expire", "3600")}, func(t *testing.T, e walink.Event) bool {
			b, ok := e.(walink.TemporaryBan)
			return ok && b.Code == 101 && b.Expire == time.Hour
		}, false},
		{[]binxml.Attr{binxml.A("reason", "405")}, func(t *testing.T, e walink.Event) bool {
			_, ok := e.(walink.ClientOutdated)
			return ok
		}, false},
		{[]binxml.Attr{binxml.A("reason", "409"), binxml.A("message", "bad ua")}, func(t *testing.T, e walink.Event) bool {
			f, ok := e.(walink.ConnectFailure)
			return ok && f.Reason == walink.ReasonBadUserAgent && f.Message == "bad ua"
		}, false},
	} {
		runSync(t, tc.attrs[0].Value, func(t *testing.T) {
			fs := newPipeFakeServer(t)
			st, d := pairedStore(t)
			cfg := fs.config()
			cfg.Reconnect = walink.ReconnectPolicy{MinDelay: 10 * time.Millisecond, MaxDelay: 20 * time.Millisecond}
			cli, rec := newClient(t, st, cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := cli.Connect(ctx); err != nil {
				t.Fatal(err)
			}
			fc := fs.accept()
			var p waproto.ClientPayload
			if err := proto.Unmarshal(fc.hello.Payload, &p); err != nil || p.GetUsername() != 15551234567 || p.GetDevice() != 4 || !fc.hello.ClientStatic.Equal(d.NoiseKey.Public) {
				t.Fatalf("login payload %v (%v)", &p, err)
			}
			fc.send(binxml.Node{Tag: "failure", Attrs: tc.attrs})
			from := 0
			waitFor[walink.Disconnected](t, rec, &from, 5*time.Second)
			found := false
			for _, e := range rec.all() {
				found = found || tc.check(t, e)
			}
			if !found {
				t.Fatalf("no matching event in %s", describe(rec.all()))
			}
			_, err := st.Device(ctx, d.NoiseKey.Public)
			if gone := errors.Is(err, store.ErrNotFound); gone != tc.loggedOut {
				t.Fatalf("session deleted = %v, want %v", gone, tc.loggedOut)
			}
			select {
			case <-fs.conns:
				t.Fatal("reconnected after a terminal failure")
			case <-time.After(200 * time.Millisecond):
			}
		})
	}
}

// TestStreamErrorReconnects: 503 reconnects with backoff (Disconnected,
// then a new login), unlike 515 which is silent.
func TestStreamErrorReconnects(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := newPipeFakeServer(t)
		st, _ := pairedStore(t)
		cfg := fs.config()
		cfg.Reconnect = walink.ReconnectPolicy{MinDelay: 10 * time.Millisecond, MaxDelay: 20 * time.Millisecond}
		cli, rec := newClient(t, st, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := cli.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		fc := fs.accept()
		fc.send(binxml.Node{Tag: "stream:error", Attrs: []binxml.Attr{binxml.A("code", "503")}})
		from := 0
		waitFor[walink.Disconnected](t, rec, &from, 5*time.Second)
		fc2 := fs.accept()
		if fc2.hello.ClientStatic != fc.hello.ClientStatic {
			t.Fatal("reconnected with another device")
		}
		if !cli.IsLoggedIn() {
			t.Fatal("503 cleared the session")
		}
	})
}

// helloAndRef drives stage 1 on the scripted server and returns the code.
func helloAndRef(t *testing.T, ctx context.Context, cli *walink.Client, fc *fakeConn, ref string) string {
	t.Helper()
	codeCh := make(chan string, 1)
	go func() {
		code, err := cli.PairWithCode(ctx, walink.PairCodeOptions{PhoneNumber: testPhone})
		if err != nil {
			t.Error(err)
		}
		codeCh <- code
	}()
	hello := fc.next("companion_hello", func(n binxml.Node) bool { return hasStage(n, "companion_hello") })
	fc.send(helloReply(hello.Attr("id"), ref))
	return <-codeCh
}

// TestPairCodeNoPairSuccess: companion_finish is accepted but pair-success
// never comes: after PairCodeFinishTimeout the code is given up
// (PairingCodeRefresh), the QR gets a fresh adv secret, and a new code may
// be requested.
func TestPairCodeNoPairSuccess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := newPipeFakeServer(t)
		st := memstore.New()
		cfg := fs.config()
		cfg.PairCodeFinishTimeout = 200 * time.Millisecond
		cli, rec := newClient(t, st, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := cli.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		fc := fs.accept()
		fc.pairDevice()
		from := 0
		qr1, _ := pairing.ParseQR(waitFor[walink.PairingQRCode](t, rec, &from, 5*time.Second).Code)
		code := helloAndRef(t, ctx, cli, fc, "REF-2")
		primaryEph, _ := keys.NewKeyPair(rand.Reader)
		primaryID, _ := keys.NewKeyPair(rand.Reader)
		wrapped, _ := pairing.WrapKey(rand.Reader, code, primaryEph.Public)
		fc.send(binxml.Node{Tag: "notification", Attrs: []binxml.Attr{srvFrom, binxml.A("id", "n-2"), binxml.A("type", "link_code_companion_reg")},
			Children: []binxml.Node{{Tag: "link_code_companion_reg", Attrs: []binxml.Attr{binxml.A("stage", "primary_hello")}, Children: []binxml.Node{
				{Tag: "link_code_pairing_wrapped_primary_ephemeral_pub", Content: wrapped},
				{Tag: "primary_identity_pub", Content: primaryID.Public.Bytes()},
				{Tag: "link_code_pairing_ref", Content: []byte("REF-2")},
			}}}})
		fin := fc.next("companion_finish", func(n binxml.Node) bool { return hasStage(n, "companion_finish") })
		fc.send(iqResult(fin.Attr("id")))

		waitFor[walink.PairingCodeRefresh](t, rec, &from, 10*time.Second)
		qr2, _ := pairing.ParseQR(waitFor[walink.PairingQRCode](t, rec, &from, 5*time.Second).Code)
		if qr2.Ref != qr1.Ref || qr2.AdvSecret == qr1.AdvSecret {
			t.Fatal("QR not re-rendered with a fresh adv secret")
		}
		devs, _ := st.Devices(ctx)
		if devs[0].AdvSecret != qr2.AdvSecret {
			t.Fatal("fresh adv secret not persisted")
		}
		// The flow is over: asking again is allowed.
		helloAndRef(t, ctx, cli, fc, "REF-3")
	})
}

// TestPairCodeExpiresAfterQR: with every QR ref spent, an unused code that
// reaches PairCodeTimeout ends the connection.
func TestPairCodeExpiresAfterQR(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := newPipeFakeServer(t)
		cfg := fs.config()
		// One ref, spent after 1 s; the code (reserved as soon as it is asked
		// for) outlives it by PairCodeTimeout.
		cfg.QRFirstTimeout = time.Second
		cfg.PairCodeTimeout = 1500 * time.Millisecond
		cli, rec := newClient(t, memstore.New(), cfg)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := cli.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		fc := fs.accept()
		fc.pairDevice()
		helloAndRef(t, ctx, cli, fc, "REF-4")
		from := 0
		waitFor[walink.PairingCode](t, rec, &from, 5*time.Second)
		start := time.Now()
		waitFor[walink.Disconnected](t, rec, &from, 10*time.Second)
		if time.Since(start) < time.Second {
			t.Fatal("disconnected before the code expired")
		}
		found := false
		for _, e := range rec.all() {
			_, ok := e.(walink.QRCodesExpired)
			found = found || ok
		}
		if !found {
			t.Fatal("no QRCodesExpired")
		}
	})
}

func iqResult(id string, children ...binxml.Node) binxml.Node {
	return binxml.Node{Tag: "iq", Attrs: []binxml.Attr{srvFrom, binxml.A("id", id), binxml.A("type", "result")}, Children: children}
}

// helloReply answers companion_hello with a pairing ref.
func helloReply(id, ref string) binxml.Node {
	return iqResult(id, binxml.Node{Tag: "link_code_companion_reg", Children: []binxml.Node{{Tag: "link_code_pairing_ref", Content: []byte(ref)}}})
}

func isPing(n binxml.Node) bool {
	return n.Tag == "iq" && n.Attr("xmlns") == "w:p" && n.Attr("type") == "get"
}

// login plays the server's side of a paired login: <success>, a pre-key
// count that needs no upload, and the answer to leaving passive mode.
func (fc *fakeConn) login() {
	fc.t.Helper()
	fc.send(binxml.Node{Tag: "success", Attrs: []binxml.Attr{binxml.A("t", "1795597893")}})
	count := fc.next("pre-key count", func(n binxml.Node) bool { return n.Tag == "iq" && n.Attr("xmlns") == "encrypt" })
	fc.send(iqResult(count.Attr("id"), binxml.Node{Tag: "count", Attrs: []binxml.Attr{binxml.A("value", "50")}}))
	active := fc.next("active", func(n binxml.Node) bool { return n.Tag == "iq" && n.Attr("xmlns") == "passive" })
	fc.send(iqResult(active.Attr("id")))
}
