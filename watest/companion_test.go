package watest

// A minimal scripted companion, written independently of the walink client:
// it speaks the client side over real loopback sockets with the transport,
// binxml and pairing packages, so the server is checked by code that does
// not share its decisions.

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/noise"
	"github.com/walinkdev/walink/pairing"
	"github.com/walinkdev/walink/transport"
	"github.com/walinkdev/walink/waproto"
)

const testNumber = "15551234567"

type companion struct {
	t         testing.TB
	noise     keys.KeyPair
	identity  keys.KeyPair
	spk       keys.SignedPreKey
	regID     uint32
	advSecret [32]byte
	version   [3]uint32
	header    [4]byte // zero = WA 06 03
	edge      []byte  // ED pre-intro routing bytes, nil = none
	// resume, when set, makes connect resume with Noise IK under this
	// cached server chain (transport.ClientConfig.Resume).
	resume *noise.CertInfo
	// noKeyIndexAttr leaves the key-index attribute off pair-device-sign.
	noKeyIndexAttr bool

	id  jid.JID // set after pairing
	lid jid.JID

	wraps map[string]wrappedEph
}

func newCompanion(t testing.TB) *companion {
	t.Helper()
	c := &companion{t: t, version: [3]uint32{2, 3000, 1031080782}}
	var err error
	if c.noise, err = keys.NewKeyPair(rand.Reader); err != nil {
		t.Fatal(err)
	}
	if c.identity, err = keys.NewKeyPair(rand.Reader); err != nil {
		t.Fatal(err)
	}
	if c.spk, err = keys.NewSignedPreKey(rand.Reader, c.identity.Private, 1); err != nil {
		t.Fatal(err)
	}
	c.regID = 0x0a0b0c0d
	if _, err := rand.Read(c.advSecret[:]); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *companion) userAgent() *waproto.ClientPayload_UserAgent {
	return &waproto.ClientPayload_UserAgent{
		Platform: waproto.ClientPayload_UserAgent_WEB.Enum(),
		AppVersion: &waproto.ClientPayload_UserAgent_AppVersion{
			Primary: proto.Uint32(c.version[0]), Secondary: proto.Uint32(c.version[1]), Tertiary: proto.Uint32(c.version[2]),
		},
		Mcc: proto.String("000"), Mnc: proto.String("000"), OsVersion: proto.String("0.1"),
		Device: proto.String("Desktop"), OsBuildNumber: proto.String("0.1"),
		LocaleLanguageIso6391: proto.String("en"), LocaleCountryIso31661Alpha2: proto.String("US"),
	}
}

func (c *companion) registrationPayload() []byte {
	c.t.Helper()
	props, err := proto.Marshal(&waproto.DeviceProps{Os: proto.String("Linux"), PlatformType: waproto.DeviceProps_CHROME.Enum()})
	if err != nil {
		c.t.Fatal(err)
	}
	var reg [4]byte
	binary.BigEndian.PutUint32(reg[:], c.regID)
	build := md5.Sum([]byte(fmt.Sprintf("%d.%d.%d", c.version[0], c.version[1], c.version[2])))
	p := &waproto.ClientPayload{
		Passive:       proto.Bool(false),
		Pull:          proto.Bool(false),
		UserAgent:     c.userAgent(),
		ConnectType:   waproto.ClientPayload_WIFI_UNKNOWN.Enum(),
		ConnectReason: waproto.ClientPayload_USER_ACTIVATED.Enum(),
		DevicePairingData: &waproto.ClientPayload_DevicePairingRegistrationData{
			ERegid:      reg[:],
			EKeytype:    []byte{keys.DJBType},
			EIdent:      c.identity.Public.Bytes(),
			ESkeyID:     keys.PreKeyIDBytes(c.spk.ID),
			ESkeyVal:    c.spk.Public.Bytes(),
			ESkeySig:    c.spk.Signature[:],
			BuildHash:   build[:],
			DeviceProps: props,
		},
	}
	b, err := proto.Marshal(p)
	if err != nil {
		c.t.Fatal(err)
	}
	return b
}

func (c *companion) loginPayload() []byte {
	c.t.Helper()
	user, err := strconv.ParseUint(c.id.User, 10, 64)
	if err != nil {
		c.t.Fatalf("login payload: %v", err)
	}
	p := &waproto.ClientPayload{
		Username:      proto.Uint64(user),
		Device:        proto.Uint32(uint32(c.id.Device)),
		Passive:       proto.Bool(true),
		Pull:          proto.Bool(true),
		UserAgent:     c.userAgent(),
		ConnectType:   waproto.ClientPayload_WIFI_UNKNOWN.Enum(),
		ConnectReason: waproto.ClientPayload_USER_ACTIVATED.Enum(),
	}
	b, err := proto.Marshal(p)
	if err != nil {
		c.t.Fatal(err)
	}
	return b
}

// wconn is one client connection with a reader goroutine that it owns.
type wconn struct {
	t     testing.TB
	tc    *transport.Conn
	dict  *binxml.Dictionary
	nodes chan binxml.Node
	done  chan struct{}
	err   error // read error, valid after nodes is closed
	bad   error // a server stanza broke a wire rule; reported by close
	ids   int
	mu    sync.Mutex
}

// connect dials the server and runs the handshake with the payload.
func (c *companion) connect(ctx context.Context, s *Server, payload []byte) (*wconn, error) {
	nc, err := transport.Dial(ctx, s.URL(), nil)
	if err != nil {
		return nil, err
	}
	tc, err := transport.Handshake(ctx, nc, transport.ClientConfig{
		NoiseKey: c.noise, RootKey: s.RootKey(), Payload: payload, Header: c.header, EdgeRouting: c.edge,
		Resume: c.resume,
	})
	if err != nil {
		nc.Close()
		return nil, err
	}
	dict := binxml.DictV3
	if c.header[3] == 2 {
		dict = binxml.DictV2
	}
	w := &wconn{t: c.t, tc: tc, dict: dict, nodes: make(chan binxml.Node, 64), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		defer close(w.nodes)
		for {
			f, err := tc.ReadFrame()
			if err != nil {
				w.err = err
				return
			}
			n, err := dict.Unmarshal(f)
			if err != nil {
				w.err = fmt.Errorf("decode: %w", err)
				return
			}
			if err := checkAddressAttrs(n); err != nil {
				w.bad = err
				w.err = err
				return
			}
			w.nodes <- n
		}
	}()
	return w, nil
}

func (c *companion) mustConnect(ctx context.Context, s *Server, payload []byte) *wconn {
	c.t.Helper()
	w, err := c.connect(ctx, s, payload)
	if err != nil {
		c.t.Fatalf("connect: %v", err)
	}
	c.t.Cleanup(w.close)
	return w
}

func (w *wconn) close() {
	w.tc.Close()
	for range w.nodes { // drain so the reader can finish
	}
	<-w.done
	if w.bad != nil {
		w.t.Errorf("server stanza: %v", w.bad)
		w.bad = nil
	}
}

// addressAttrs are the attributes that hold addresses; the server must
// send them JID-encoded (PROTOCOL.md §20.8).
var addressAttrs = map[string]bool{"from": true, "to": true, "jid": true, "lid": true, "participant": true, "recipient": true}

// checkAddressAttrs reports the first address attribute in n or its
// descendants that arrived as a plain string instead of a typed JID.
func checkAddressAttrs(n binxml.Node) error {
	for _, a := range n.Attrs {
		if addressAttrs[a.Key] && !a.IsJID() {
			return fmt.Errorf("<%s %s=%q>: address attribute is a string, not a JID (PROTOCOL.md §20.8)", n.Tag, a.Key, a.Value)
		}
	}
	for _, c := range n.Children {
		if err := checkAddressAttrs(c); err != nil {
			return err
		}
	}
	return nil
}

func (w *wconn) send(n binxml.Node) {
	w.t.Helper()
	b, err := w.dict.Marshal(n)
	if err != nil {
		w.t.Fatalf("marshal %s: %v", n.Tag, err)
	}
	if err := w.tc.WriteFrame(context.Background(), b); err != nil {
		w.t.Fatalf("write %s: %v", n.Tag, err)
	}
}

func (w *wconn) nextID() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ids++
	return "51.8-" + strconv.Itoa(w.ids)
}

// iq sends a client IQ and returns its id.
func (w *wconn) iq(xmlns, typ string, children ...binxml.Node) string {
	w.t.Helper()
	id := w.nextID()
	n := binxml.Node{Tag: "iq", Attrs: []binxml.Attr{
		binxml.A("id", id), binxml.AJ("to", jid.ServerJID), binxml.A("type", typ), binxml.A("xmlns", xmlns),
	}}
	if len(children) > 0 {
		n.Children = children
	}
	w.send(n)
	return id
}

// expect reads nodes until one matches, failing the test after a timeout
// or when the connection ends.
func (w *wconn) expect(what string, match func(binxml.Node) bool) binxml.Node {
	w.t.Helper()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case n, ok := <-w.nodes:
			if !ok {
				w.t.Fatalf("waiting for %s: connection ended: %v", what, w.err)
			}
			if match(n) {
				return n
			}
		case <-timeout.C:
			w.t.Fatalf("waiting for %s: timeout", what)
		}
	}
}

// reply expects the result or error of the client IQ id.
func (w *wconn) reply(id string) binxml.Node {
	w.t.Helper()
	return w.expect("reply to "+id, func(n binxml.Node) bool {
		return n.Tag == "iq" && n.Attr("id") == id && (n.Attr("type") == "result" || n.Attr("type") == "error")
	})
}

// waitClosed waits for the server to end the connection.
func (w *wconn) waitClosed(d time.Duration) error {
	w.t.Helper()
	timeout := time.NewTimer(d)
	defer timeout.Stop()
	for {
		select {
		case _, ok := <-w.nodes:
			if !ok {
				return nil
			}
		case <-timeout.C:
			return errors.New("connection still open")
		}
	}
}

func hasChild(tag string) func(binxml.Node) bool {
	return func(n binxml.Node) bool { _, ok := n.Child(tag); return ok }
}

func isTag(tag string) func(binxml.Node) bool {
	return func(n binxml.Node) bool { return n.Tag == tag }
}

func (w *wconn) ackResult(n binxml.Node) {
	w.send(binxml.Node{Tag: "iq", Attrs: []binxml.Attr{binxml.A("id", n.Attr("id")), binxml.AJ("to", jid.ServerJID), binxml.A("type", "result")}})
}

func (w *wconn) ackNotification(n binxml.Node) {
	w.send(binxml.Node{Tag: "ack", Attrs: []binxml.Attr{
		binxml.A("class", "notification"), binxml.A("id", n.Attr("id")), binxml.AJ("to", jid.ServerJID), binxml.A("type", n.Attr("type")),
	}})
}

// refs reads pair-device, acks it and returns the refs.
func (w *wconn) pairDevice() []string {
	w.t.Helper()
	n := w.expect("pair-device", hasChild("pair-device"))
	if n.Attr("type") != "set" || n.Attr("xmlns") != "md" {
		w.t.Fatalf("pair-device iq attrs: %s", xmlString(n))
	}
	from, ok := n.AttrJID("from")
	if !ok || from != jid.ServerJID || !n.Attrs[0].IsJID() {
		w.t.Fatalf("pair-device from is not the typed server JID: %+v", n.Attrs)
	}
	pd, _ := n.Child("pair-device")
	var refs []string
	for _, r := range pd.Children {
		refs = append(refs, string(r.Content))
	}
	w.ackResult(n)
	return refs
}

func (c *companion) qr(ref string) string {
	return pairing.QR{Ref: ref, Noise: c.noise.Public, Identity: c.identity.Public, AdvSecret: c.advSecret, ClientType: "1"}.String()
}

// answerPairSuccess verifies pair-success with adv and replies, as a real
// client does; tamper flips a byte of the device signature.
func (c *companion) answerPairSuccess(w *wconn, adv [32]byte, tamper bool) {
	c.t.Helper()
	n := w.expect("pair-success", hasChild("pair-success"))
	ps, _ := n.Child("pair-success")
	di, _ := ps.Child("device-identity")
	v, err := pairing.VerifyPairSuccess(rand.Reader, adv, c.identity, di.Content)
	if err != nil {
		code, text := pairing.ErrorReply(err)
		w.send(binxml.Node{Tag: "iq", Attrs: []binxml.Attr{binxml.A("id", n.Attr("id")), binxml.AJ("to", jid.ServerJID), binxml.A("type", "error")},
			Children: []binxml.Node{{Tag: "error", Attrs: []binxml.Attr{binxml.A("code", strconv.Itoa(code)), binxml.A("text", text)}}}})
		return
	}
	dev, _ := ps.Child("device")
	c.id, _ = dev.AttrJID("jid")
	c.lid, _ = dev.AttrJID("lid")
	reply := append([]byte(nil), v.Reply...)
	if tamper {
		reply[len(reply)-5] ^= 0x40 // inside the trailing device signature
	}
	attrs := []binxml.Attr{binxml.A("key-index", strconv.FormatUint(uint64(v.Identity.KeyIndex), 10))}
	if c.noKeyIndexAttr {
		attrs = nil
	}
	w.send(binxml.Node{Tag: "iq", Attrs: []binxml.Attr{binxml.A("id", n.Attr("id")), binxml.AJ("to", jid.ServerJID), binxml.A("type", "result")},
		Children: []binxml.Node{{Tag: "pair-device-sign", Children: []binxml.Node{{
			Tag: "device-identity", Attrs: attrs, Content: reply,
		}}}}})
}

// linkQR pairs c with phone by QR, going through companion_reg_refresh when
// the server asks for it.
func linkQR(ctx context.Context, t *testing.T, s *Server, c *companion) jid.JID {
	t.Helper()
	w := c.mustConnect(ctx, s, c.registrationPayload())
	refs := w.pairDevice()
	phone := s.Phone(testNumber)
	if s.Scenario().QRRefresh {
		if _, err := phone.ScanQR(ctx, c.qr(refs[0])); !errors.Is(err, ErrRescan) {
			t.Fatalf("first scan: %v, want ErrRescan", err)
		}
		n := w.expect("companion_reg_refresh", isTag("notification"))
		if n.Attr("type") != "companion_reg_refresh" {
			t.Fatalf("got %s", xmlString(n))
		}
		w.ackNotification(n)
		if _, err := rand.Read(c.advSecret[:]); err != nil {
			t.Fatal(err)
		}
	}
	res := scanAsync(ctx, phone, c.qr(refs[0]))
	c.answerPairSuccess(w, c.advSecret, false)
	w.expect("515", func(n binxml.Node) bool { return n.Tag == "stream:error" && n.Attr("code") == "515" })
	r := <-res
	if r.err != nil {
		t.Fatalf("scan: %v", r.err)
	}
	if r.jid != c.id {
		t.Fatalf("phone linked %s, companion got %s", r.jid, c.id)
	}
	w.close()
	return r.jid
}

type linkResult struct {
	jid jid.JID
	err error
}

func scanAsync(ctx context.Context, p *Phone, qr string) <-chan linkResult {
	ch := make(chan linkResult, 1)
	go func() {
		j, err := p.ScanQR(ctx, qr)
		ch <- linkResult{j, err}
	}()
	return ch
}

func codeAsync(ctx context.Context, p *Phone, code string) <-chan linkResult {
	ch := make(chan linkResult, 1)
	go func() {
		j, err := p.EnterCode(ctx, code)
		ch <- linkResult{j, err}
	}()
	return ch
}

// login connects with the login payload and expects success.
func (c *companion) login(ctx context.Context, s *Server) *wconn {
	c.t.Helper()
	w := c.mustConnect(ctx, s, c.loginPayload())
	n := w.expect("success", func(n binxml.Node) bool { return n.Tag == "success" || n.Tag == "failure" })
	if n.Tag != "success" {
		c.t.Fatalf("login: %s", xmlString(n))
	}
	checkSuccess(c.t, n, c.lid)
	return w
}

// checkSuccess checks the shape of a success stanza against the real one
// (PROTOCOL.md §13): every attribute present, lid typed and equal to the
// LID pair-success gave (when known), companion_enc_static 32 bytes.
func checkSuccess(t testing.TB, n binxml.Node, lid jid.JID) {
	t.Helper()
	for _, k := range []string{"t", "props", "abprops", "location", "creation", "lid", "companion_enc_static"} {
		if n.Attr(k) == "" {
			t.Fatalf("success without %s: %s", k, xmlString(n))
		}
	}
	for _, k := range []string{"t", "creation"} {
		if _, err := strconv.ParseInt(n.Attr(k), 10, 64); err != nil {
			t.Fatalf("success %s=%q is not unix seconds", k, n.Attr(k))
		}
	}
	got, ok := n.AttrJID("lid")
	if !ok || got.Server != jid.LIDServer || (lid.Server != "" && got != lid) {
		t.Fatalf("success lid = %v, want %v", got, lid)
	}
	if b, err := base64.StdEncoding.DecodeString(n.Attr("companion_enc_static")); err != nil || len(b) != 32 {
		t.Fatalf("success companion_enc_static = %q (%d bytes, %v)", n.Attr("companion_enc_static"), len(b), err)
	}
}

// startServer starts a server for a test and checks on cleanup that it
// leaves no goroutine behind.
func startServer(t *testing.T, mutate func(*Scenario), cfg Config) *Server {
	t.Helper()
	sc := DefaultScenario()
	sc.FirstStanzaDelayMS = 5
	sc.LingerMS = 500
	if mutate != nil {
		mutate(&sc)
	}
	cfg.Scenario = &sc
	before := runtime.NumGoroutine()
	s, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		checkGoroutines(t, before)
	})
	return s
}

func checkGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Errorf("goroutines leaked: %d > %d\n%s", runtime.NumGoroutine(), before, watestStacks(string(buf)))
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// watestStacks keeps the stacks that mention this package.
func watestStacks(all string) string {
	var out []string
	for _, g := range strings.Split(all, "\n\n") {
		if strings.Contains(g, "watest") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var _ = io.EOF
var _ net.Conn
