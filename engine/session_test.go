package engine

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/pairing"
	"github.com/walinkdev/walink/store"
)

// The session is stepped by hand here: synthetic time, no sockets, no
// goroutines (tasks are run inline by the harness).

var t0 = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

type harness struct {
	t      *testing.T
	s      *Session
	now    time.Time
	timers map[TimerKind]time.Time
	sent   []binxml.Node
	events []Event
	saved  []*store.Device
	tasks  []StartTask
	ends   []EndReason
	reply  map[CallID]Reply
	delete int
	// failSave makes the next SaveDevice of this tag fail.
	failSave map[SaveTag]error
}

func testConfig() SessionConfig {
	ids, _ := NewIDs(bytes.NewReader([]byte{1, 2}))
	return SessionConfig{
		QRFirst: 60 * time.Second, QRNext: 20 * time.Second,
		CodeLifetime: PairCodeLifetime, CodeFinishWait: PairSuccessAfterHello, ConfirmWait: 20 * time.Second,
		KeepaliveMin: 20 * time.Second, KeepaliveMax: 30 * time.Second, KeepaliveTimeout: 10 * time.Second, KeepaliveGiveUp: 3 * time.Minute,
		IQTimeout: 75 * time.Second, LogoutTimeout: 10 * time.Second, PreKeyCount: 30,
		ClientType: pairing.ClientTypeChrome, Rand: rand.Reader, IDs: ids,
	}
}

func newDevice(t *testing.T) *store.Device {
	t.Helper()
	d := &store.Device{NextPreKeyID: 1}
	var err error
	if d.NoiseKey, err = keys.NewKeyPair(rand.Reader); err != nil {
		t.Fatal(err)
	}
	if d.IdentityKey, err = keys.NewKeyPair(rand.Reader); err != nil {
		t.Fatal(err)
	}
	if d.SignedPreKey, err = keys.NewSignedPreKey(rand.Reader, d.IdentityKey.Private, 1); err != nil {
		t.Fatal(err)
	}
	rand.Read(d.AdvSecret[:])
	return d
}

func newHarness(t *testing.T, d *store.Device) *harness {
	return &harness{t: t, s: NewSession(testConfig(), d), now: t0, timers: map[TimerKind]time.Time{}, reply: map[CallID]Reply{}, failSave: map[SaveTag]error{}}
}

// step feeds one input and carries out the actions as a driver would:
// saves succeed (unless failSave says otherwise) and are stepped back at
// once; tasks are queued for runTasks.
func (h *harness) step(in Input) {
	h.t.Helper()
	h.do(h.s.Step(h.now, in))
}

func (h *harness) do(acts []Action) {
	for _, a := range acts {
		switch a := a.(type) {
		case Send:
			h.sent = append(h.sent, a.Node)
		case Emit:
			h.events = append(h.events, a.Event)
		case ArmTimer:
			h.timers[a.Kind] = a.At
		case CancelTimer:
			delete(h.timers, a.Kind)
		case StartTask:
			h.tasks = append(h.tasks, a)
		case SaveDevice:
			err := h.failSave[a.Tag]
			delete(h.failSave, a.Tag)
			if err == nil {
				h.saved = append(h.saved, a.Device)
			}
			h.do(h.s.Step(h.now, Saved{Tag: a.Tag, Device: a.Device, Err: err}))
		case SavePreKeys:
			h.do(h.s.Step(h.now, Saved{Tag: SavePreKeyBatch, Device: a.Device}))
		case DeleteDevice:
			h.delete++
		case Reply:
			h.reply[a.Call] = a
		case End:
			h.ends = append(h.ends, a.Reason)
		}
	}
}

func (h *harness) runTasks() {
	for len(h.tasks) > 0 {
		tk := h.tasks[0]
		h.tasks = h.tasks[1:]
		v, err := tk.Run()
		h.step(TaskDone{Kind: tk.Kind, ID: tk.ID, Value: v, Err: err})
	}
}

// advance moves the clock to at, firing every timer due on the way, in
// order, as a driver's runtime timer would.
func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	end := h.now.Add(d)
	for {
		var k TimerKind
		var first time.Time
		for kind, at := range h.timers {
			if !at.After(end) && (first.IsZero() || at.Before(first)) {
				k, first = kind, at
			}
		}
		if first.IsZero() {
			break
		}
		h.now = first
		delete(h.timers, k)
		h.step(TimerFired{Kind: k})
	}
	h.now = end
}

func (h *harness) lastSent() binxml.Node {
	h.t.Helper()
	if len(h.sent) == 0 {
		h.t.Fatal("nothing sent")
	}
	return h.sent[len(h.sent)-1]
}

func (h *harness) eventsOf(match func(Event) bool) []Event {
	var out []Event
	for _, e := range h.events {
		if match(e) {
			out = append(out, e)
		}
	}
	return out
}

func isQR(e Event) bool { _, ok := e.(PairingQR); return ok }

func pairDevice(refs ...string) binxml.Node {
	pd := binxml.Node{Tag: "pair-device"}
	for _, r := range refs {
		pd.Children = append(pd.Children, binxml.Node{Tag: "ref", Content: []byte(r)})
	}
	return binxml.Node{Tag: "iq", Attrs: []binxml.Attr{binxml.A("id", "pd1"), binxml.A("type", "set"), binxml.A("xmlns", "md")}, Children: []binxml.Node{pd}}
}

func result(id string, children ...binxml.Node) NodeIn {
	return NodeIn{Node: binxml.Node{Tag: "iq", Attrs: []binxml.Attr{binxml.A("id", id), binxml.A("type", "result")}, Children: children}}
}

func regRefresh() NodeIn {
	return NodeIn{Node: binxml.Node{Tag: "notification", Attrs: []binxml.Attr{binxml.A("id", "n1"), binxml.A("type", "companion_reg_refresh")},
		Children: []binxml.Node{{Tag: "companion_reg_refresh"}}}}
}

func TestSessionQRRotation(t *testing.T) {
	h := newHarness(t, newDevice(t))
	h.step(NodeIn{Node: pairDevice("r1", "r2", "r3")})
	if got := h.lastSent(); got.Attr("type") != "result" || got.Attr("id") != "pd1" {
		t.Fatalf("pair-device answered with %v", got)
	}
	if !h.s.Ready() {
		t.Fatal("not ready after pair-device")
	}
	h.advance(59 * time.Second)
	if qrs := h.eventsOf(isQR); len(qrs) != 1 || qrs[0].(PairingQR).Timeout != 60*time.Second {
		t.Fatalf("first 59 s: %+v", qrs)
	}
	h.advance(time.Second) // 60 s: the second ref, for 20 s
	h.advance(20 * time.Second)
	qrs := h.eventsOf(isQR)
	if len(qrs) != 3 {
		t.Fatalf("after 80 s: %d QR events", len(qrs))
	}
	for i, q := range qrs[1:] {
		if q.(PairingQR).Timeout != 20*time.Second {
			t.Fatalf("QR %d timeout %v", i+2, q.(PairingQR).Timeout)
		}
	}
	if len(h.ends) != 0 {
		t.Fatal("ended before the last ref expired")
	}
	h.advance(19 * time.Second)
	if len(h.ends) != 0 {
		t.Fatal("ended early")
	}
	h.advance(time.Second) // 100 s: exhausted
	if len(h.eventsOf(func(e Event) bool { _, ok := e.(QRCodesExpired); return ok })) != 1 {
		t.Fatal("no QRCodesExpired")
	}
	if len(h.ends) != 1 || h.ends[0] != EndQRExpired {
		t.Fatalf("ends %v", h.ends)
	}
	if len(h.timers) != 0 {
		t.Fatalf("timers left armed: %v", h.timers)
	}
}

// A frozen driver clock: the timer firing is authoritative, so rotation
// still advances.
func TestSessionQRFrozenClock(t *testing.T) {
	h := newHarness(t, newDevice(t))
	h.step(NodeIn{Node: pairDevice("r1", "r2")})
	delete(h.timers, TimerQR)
	h.step(TimerFired{Kind: TimerQR}) // h.now still t0
	if qrs := h.eventsOf(isQR); len(qrs) != 2 || qrs[1].(PairingQR).Timeout != 20*time.Second {
		t.Fatalf("QR events %+v", qrs)
	}
}

// codeReady runs stage 1 to a live code and returns it.
func codeReady(t *testing.T, h *harness) string {
	t.Helper()
	h.step(NodeIn{Node: pairDevice("r1", "r2", "r3")})
	h.step(PairCodeCall{Call: 1, Req: CodeRequest{Phone: "15551234567", PlatformID: "1", Display: "Chrome (Linux)"}})
	h.runTasks()
	hello := h.lastSent()
	if reg, _ := hello.Child("link_code_companion_reg"); reg.Attr("stage") != "companion_hello" {
		t.Fatalf("sent %v", hello)
	}
	h.step(result(hello.Attr("id"), binxml.Node{Tag: "link_code_companion_reg", Children: []binxml.Node{{Tag: "link_code_pairing_ref", Content: []byte("REF")}}}))
	r, ok := h.reply[1]
	if !ok || r.Err != nil || len(r.Value) != 8 {
		t.Fatalf("reply %+v %v", r, ok)
	}
	return r.Value
}

func TestSessionCodeExpiry(t *testing.T) {
	h := newHarness(t, newDevice(t))
	codeReady(t, h)
	h.step(PairCodeCall{Call: 2, Req: CodeRequest{Phone: "15551234567", PlatformID: "1", Display: "Chrome (Linux)"}})
	if !errors.Is(h.reply[2].Err, ErrCodeOutstanding) {
		t.Fatalf("second code: %v", h.reply[2].Err)
	}
	// Every QR ref expires at 100 s; the code keeps the connection.
	h.advance(179 * time.Second)
	if len(h.ends) != 0 || h.s.code == nil {
		t.Fatalf("code gone before 180 s (ends %v)", h.ends)
	}
	h.advance(time.Second)
	if h.s.code != nil {
		t.Fatal("code outstanding after 180 s")
	}
	if len(h.ends) != 1 || h.ends[0] != EndQRExpired {
		t.Fatalf("ends %v: the QR refs are spent, nothing left to pair with", h.ends)
	}
}

func TestSessionCodeExpiryQRLive(t *testing.T) {
	h := newHarness(t, newDevice(t))
	codeReady(t, h)
	h.step(NodeIn{Node: pairDevice("a", "b", "c", "d", "e", "f", "g", "h", "i", "j")}) // a fresh set outlives the code
	h.advance(180 * time.Second)
	if h.s.code != nil || len(h.ends) != 0 {
		t.Fatalf("code %v ends %v", h.s.code, h.ends)
	}
	h.step(PairCodeCall{Call: 3, Req: CodeRequest{Phone: "15551234567", PlatformID: "1", Display: "Chrome (Linux)"}})
	h.runTasks()
	if _, ok := h.reply[3]; ok {
		t.Fatalf("second code answered before companion_hello's reply: %+v", h.reply[3])
	}
}

func linkCodeHello(ref []byte, wrapped, identity []byte) NodeIn {
	return NodeIn{Node: binxml.Node{Tag: "notification", Attrs: []binxml.Attr{binxml.A("id", "n2"), binxml.A("type", "link_code_companion_reg")},
		Children: []binxml.Node{{Tag: "link_code_companion_reg", Attrs: []binxml.Attr{binxml.A("stage", "primary_hello")}, Children: []binxml.Node{
			{Tag: "link_code_pairing_ref", Content: ref},
			{Tag: "link_code_pairing_wrapped_primary_ephemeral_pub", Content: wrapped},
			{Tag: "primary_identity_pub", Content: identity},
		}}}}}
}

// The third primary_hello with a wrong ref is refused, and so is any after
// three counted ones.
func TestSessionPrimaryHelloLimit(t *testing.T) {
	h := newHarness(t, newDevice(t))
	code := codeReady(t, h)
	eph, _ := keys.NewKeyPair(rand.Reader)
	wrapped, err := pairing.WrapKey(rand.Reader, code, eph.Public)
	if err != nil {
		t.Fatal(err)
	}
	bad := make([]byte, 31) // wrong identity length: counted, refused
	for i := range 3 {
		h.step(linkCodeHello([]byte("REF"), wrapped, bad))
		if len(h.tasks) != 0 || h.s.code.Hellos != i+1 {
			t.Fatalf("hello %d: tasks %d, counted %d", i+1, len(h.tasks), h.s.code.Hellos)
		}
	}
	id, _ := keys.NewKeyPair(rand.Reader)
	h.step(linkCodeHello([]byte("REF"), wrapped, id.Public.Bytes()))
	if len(h.tasks) != 0 {
		t.Fatal("a fourth primary_hello started stage 2")
	}
	// Every notification is acknowledged.
	acks := 0
	for _, n := range h.sent {
		if n.Tag == "ack" {
			acks++
		}
	}
	if acks != 4 {
		t.Fatalf("%d acks", acks)
	}
}

// Reg refresh while a code is pending rotates the QR's secret and
// re-renders; during stage 2 (Finishing) it is ignored; and once
// companion_finish was accepted but no pair-success came in 60 s, the code
// ends, PairingCodeRefresh is emitted and the secret rotates (one save,
// no race with a pair-success: both are steps of one owner).
func TestSessionRegRefreshDuringCode(t *testing.T) {
	d := newDevice(t)
	h := newHarness(t, d)
	code := codeReady(t, h)
	qrs := len(h.eventsOf(isQR))
	h.step(regRefresh())
	if len(h.saved) != 1 || h.saved[0].AdvSecret == d.AdvSecret || h.s.Device().AdvSecret == d.AdvSecret {
		t.Fatal("adv secret not rotated and saved")
	}
	if len(h.eventsOf(isQR)) != qrs+1 || h.s.code == nil {
		t.Fatal("QR not re-rendered, or the code was dropped")
	}

	// Stage 2 with a real primary.
	primaryEph, _ := keys.NewKeyPair(rand.Reader)
	primaryID, _ := keys.NewKeyPair(rand.Reader)
	wrapped, _ := pairing.WrapKey(rand.Reader, code, primaryEph.Public)
	h.step(linkCodeHello([]byte("REF"), wrapped, primaryID.Public.Bytes()))
	h.runTasks()
	fin := h.lastSent()
	if reg, _ := fin.Child("link_code_companion_reg"); reg.Attr("stage") != "companion_finish" {
		t.Fatalf("sent %v", fin)
	}
	h.step(regRefresh())
	if len(h.saved) != 1 {
		t.Fatal("reg refresh during stage 2 rotated the secret")
	}
	h.step(result(fin.Attr("id")))
	h.advance(PairSuccessAfterHello - time.Second)
	if h.s.code == nil {
		t.Fatal("code ended early")
	}
	h.advance(time.Second)
	if h.s.code != nil || len(h.eventsOf(func(e Event) bool { _, ok := e.(PairingCodeRefresh); return ok })) != 1 {
		t.Fatal("no PairingCodeRefresh after the pair-success wait")
	}
	if len(h.saved) != 2 {
		t.Fatalf("%d saves: the QR's secret was not rotated", len(h.saved))
	}
}

func signedPairSuccess(t *testing.T, d *store.Device, secret [32]byte) NodeIn {
	t.Helper()
	account, _ := keys.NewKeyPair(rand.Reader)
	container, err := pairing.SignDeviceIdentity(rand.Reader, account, d.IdentityKey.Public, secret, pairing.DeviceIdentity{RawID: 7, Timestamp: uint64(t0.Unix()), KeyIndex: 1})
	if err != nil {
		t.Fatal(err)
	}
	own := jid.NewAD("15551234567", 3, jid.DefaultUserServer)
	lid := jid.NewAD("123456789012345", 3, jid.LIDServer)
	return NodeIn{Node: pairSuccessNode(
		binxml.Node{Tag: "device-identity", Content: container},
		binxml.Node{Tag: "device", Attrs: []binxml.Attr{binxml.AJ("jid", own), binxml.AJ("lid", lid)}},
		binxml.Node{Tag: "platform", Attrs: []binxml.Attr{binxml.A("name", "android")}},
	)}
}

// pair-success saves (Unconfirmed) before it answers; the 515 confirms and
// restarts; without it the confirm timer restarts after 20 s.
func TestSessionPairSuccessAnd515(t *testing.T) {
	d := newDevice(t)
	h := newHarness(t, d)
	h.step(NodeIn{Node: pairDevice("r1")})
	h.step(signedPairSuccess(t, d, d.AdvSecret))
	if len(h.saved) != 1 || !h.saved[0].Paired() || !h.saved[0].Unconfirmed {
		t.Fatalf("saved %+v", h.saved)
	}
	if got := h.lastSent(); got.Attr("type") != "result" {
		t.Fatalf("answered %v", got)
	}
	if _, ok := h.timers[TimerQR]; ok {
		t.Fatal("QR timer still armed after pairing")
	}
	if !h.s.Paired() || h.s.Ready() {
		t.Fatal("state after pair-success")
	}
	h.step(NodeIn{Node: binxml.Node{Tag: "stream:error", Attrs: []binxml.Attr{binxml.A("code", "515")}}})
	if len(h.saved) != 2 || h.saved[1].Unconfirmed || len(h.ends) != 1 || h.ends[0] != EndRestart {
		t.Fatalf("515: saved %d (unconfirmed %v), ends %v", len(h.saved), h.saved[len(h.saved)-1].Unconfirmed, h.ends)
	}

	// No 515: the confirm timer restarts the connection.
	d2 := newDevice(t)
	h2 := newHarness(t, d2)
	h2.step(NodeIn{Node: pairDevice("r1")})
	h2.step(signedPairSuccess(t, d2, d2.AdvSecret))
	h2.advance(19 * time.Second)
	if len(h2.ends) != 0 {
		t.Fatal("restarted early")
	}
	h2.advance(time.Second)
	if len(h2.ends) != 1 || h2.ends[0] != EndRestart {
		t.Fatalf("ends %v", h2.ends)
	}
}

// A failed save refuses the pairing: error reply, PairError, no
// pair-device-sign.
func TestSessionPairSaveFails(t *testing.T) {
	d := newDevice(t)
	h := newHarness(t, d)
	h.step(NodeIn{Node: pairDevice("r1")})
	h.failSave[SavePaired] = errors.New("disk full")
	h.step(signedPairSuccess(t, d, d.AdvSecret))
	if got := h.lastSent(); got.Attr("type") != "error" {
		t.Fatalf("answered %v", got)
	}
	pe := h.eventsOf(func(e Event) bool { _, ok := e.(PairError); return ok })
	if len(pe) != 1 || !errors.Is(pe[0].(PairError).Err, ErrSaving) || h.s.Paired() {
		t.Fatalf("PairError %+v", pe)
	}
}

func loggedIn(t *testing.T) *harness {
	t.Helper()
	d := newDevice(t)
	d.ID = jid.NewAD("15551234567", 3, jid.DefaultUserServer)
	h := newHarness(t, d)
	h.step(NodeIn{Node: binxml.Node{Tag: "success", Attrs: []binxml.Attr{binxml.A("t", "1795597893")}}})
	count := h.lastSent()
	h.step(result(count.Attr("id"), binxml.Node{Tag: "count", Attrs: []binxml.Attr{binxml.A("value", "0")}}))
	upload := h.lastSent()
	if upload.Attr("xmlns") != "encrypt" || upload.Attr("type") != "set" {
		t.Fatalf("expected the upload, sent %v", upload)
	}
	h.step(result(upload.Attr("id")))
	active := h.lastSent()
	h.step(result(active.Attr("id")))
	if !h.s.Connected() {
		t.Fatal("not connected after the bootstrap")
	}
	return h
}

// Unanswered pings are retried at the keepalive interval until they have
// failed for 3 minutes; then the connection ends. Answered ones keep it.
func TestSessionKeepaliveGiveUp(t *testing.T) {
	h := loggedIn(t)
	for range 20 { // 20 answered pings: ≥ 400 s, past any give-up
		at := h.timers[TimerKeepalive]
		if d := at.Sub(h.now); d < 20*time.Second || d > 30*time.Second {
			t.Fatalf("keepalive interval %v", d)
		}
		h.advance(at.Sub(h.now))
		ping := h.lastSent()
		if ping.Attr("xmlns") != "w:p" {
			t.Fatalf("sent %v", ping)
		}
		h.advance(time.Second)
		h.step(result(ping.Attr("id")))
	}
	if len(h.ends) != 0 {
		t.Fatalf("ended with answered pings: %v", h.ends)
	}
	lastOK := h.now
	h.advance(3*time.Minute + 45*time.Second) // pings go unanswered
	if len(h.ends) != 1 || h.ends[0] != EndNetwork {
		t.Fatalf("ends %v", h.ends)
	}
	if gave := h.now.Sub(lastOK); gave < 3*time.Minute {
		t.Fatalf("gave up after %v", gave)
	}
}

// Logout: remove-companion-device; its answer deletes the device and ends
// the connection; the call is answered.
func TestSessionLogout(t *testing.T) {
	h := loggedIn(t)
	h.step(LogoutCall{Call: 9})
	req := h.lastSent()
	if _, ok := req.Child("remove-companion-device"); !ok {
		t.Fatalf("sent %v", req)
	}
	h.step(LogoutCall{Call: 10})
	if !errors.Is(h.reply[10].Err, ErrLogoutInProgress) {
		t.Fatalf("second logout: %+v", h.reply[10])
	}
	h.step(result(req.Attr("id")))
	if r, ok := h.reply[9]; !ok || r.Err != nil || h.delete != 1 || len(h.ends) != 1 || h.ends[0] != EndLoggedOut {
		t.Fatalf("reply %+v, deletes %d, ends %v", r, h.delete, h.ends)
	}
	// The server's unlink notice after our logout emits nothing more.
	if n := len(h.events); n != 1 { // Connected only
		t.Fatalf("events %v", h.events)
	}
}

// An IQ error carries the server's backoff to the call.
func TestSessionHelloRejectedBackoff(t *testing.T) {
	h := newHarness(t, newDevice(t))
	h.step(NodeIn{Node: pairDevice("r1")})
	h.step(PairCodeCall{Call: 1, Req: CodeRequest{Phone: "15551234567", PlatformID: "1", Display: "Chrome (Linux)"}})
	h.runTasks()
	hello := h.lastSent()
	h.step(NodeIn{Node: binxml.Node{Tag: "iq", Attrs: []binxml.Attr{binxml.A("id", hello.Attr("id")), binxml.A("type", "error")},
		Children: []binxml.Node{{Tag: "error", Attrs: []binxml.Attr{binxml.A("code", "429"), binxml.A("text", "rate-overlimit"), binxml.A("backoff", "120")}}}}})
	var ie *IQErrorInfo
	if !errors.As(h.reply[1].Err, &ie) || ie.Code != 429 || ie.Backoff != 2*time.Minute {
		t.Fatalf("reply %+v", h.reply[1])
	}
	if h.s.code != nil {
		t.Fatal("a refused code is still outstanding")
	}
}

// An unanswered request times out on the session's IQ timer.
func TestSessionIQTimeout(t *testing.T) {
	h := newHarness(t, newDevice(t))
	h.step(NodeIn{Node: pairDevice("a", "b", "c", "d", "e", "f")})
	h.step(PairCodeCall{Call: 1, Req: CodeRequest{Phone: "15551234567", PlatformID: "1", Display: "Chrome (Linux)"}})
	h.runTasks()
	h.advance(75*time.Second - time.Millisecond)
	if _, ok := h.reply[1]; ok {
		t.Fatal("answered early")
	}
	h.advance(time.Millisecond)
	if !errors.Is(h.reply[1].Err, ErrTimeout) {
		t.Fatalf("reply %+v", h.reply[1])
	}
}

// A login to a server the driver was told to use (RememberServer) saves
// it with the device; without the flag nothing is saved.
func TestSessionRemembersServerAtLogin(t *testing.T) {
	for _, remember := range []bool{false, true} {
		d := newDevice(t)
		d.ID = jid.NewAD("15551234567", 3, jid.DefaultUserServer)
		cfg := testConfig()
		cfg.ServerURL, cfg.RememberServer = "ws://127.0.0.1:1/ws/chat", remember
		h := &harness{t: t, s: NewSession(cfg, d), now: t0, timers: map[TimerKind]time.Time{}, reply: map[CallID]Reply{}, failSave: map[SaveTag]error{}}
		h.step(NodeIn{Node: binxml.Node{Tag: "success"}})
		saved := len(h.saved) == 1 && h.saved[0].ServerURL == cfg.ServerURL
		if saved != remember || (!remember && len(h.saved) != 0) {
			t.Fatalf("remember %v: saved %+v", remember, h.saved)
		}
	}
}

// The third primary_hello is still accepted (two malformed ones before it
// count against the limit of three); it starts stage 2.
func TestSessionThirdPrimaryHelloAccepted(t *testing.T) {
	h := newHarness(t, newDevice(t))
	code := codeReady(t, h)
	primaryEph, _ := keys.NewKeyPair(rand.Reader)
	primaryID, _ := keys.NewKeyPair(rand.Reader)
	wrapped, _ := pairing.WrapKey(rand.Reader, code, primaryEph.Public)
	for range 2 {
		h.step(linkCodeHello([]byte("REF"), wrapped, make([]byte, 5)))
	}
	h.step(linkCodeHello([]byte("WRONG-REF"), wrapped, primaryID.Public.Bytes())) // not counted: another code's
	if len(h.tasks) != 0 {
		t.Fatal("stage 2 started early")
	}
	h.step(linkCodeHello([]byte("REF"), wrapped, primaryID.Public.Bytes()))
	if len(h.tasks) != 1 || h.tasks[0].Kind != TaskFinishCode {
		t.Fatalf("third primary_hello did not start stage 2: %d tasks", len(h.tasks))
	}
	h.runTasks()
	if reg, _ := h.lastSent().Child("link_code_companion_reg"); reg.Attr("stage") != "companion_finish" {
		t.Fatalf("sent %v", h.lastSent())
	}
}
