package watest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/pairing/passkey"
	"github.com/walinkdev/walink/waproto"
)

// beginRegistration checks a registration payload (PROTOCOL.md §6.2),
// issues the QR refs and sends pair-device.
func (sess *session) beginRegistration(ctx context.Context, d *pairingData) error {
	reg, warnings, err := parseRegistration(d)
	if err != nil {
		sess.srv.info(sess.id, err.Error())
		return sess.endStream(ctx, failure(400))
	}
	for _, w := range warnings {
		sess.srv.lenient(sess.id, "registration payload: "+w)
	}
	// reg.props, the DeviceProps, is parsed when the device links (platformOf), not on
	// every registration connection: most never link (a QR shown and
	// refreshed, a reconnect storm), and the parse is on the handshake's
	// path (bench/RESULTS.md §5).
	s := sess.srv
	s.mu.Lock()
	count := s.scenario.RefCount
	// All refs from one read of the random source (the same bytes, in the
	// same order, as a read per ref) into one buffer: the strings the refs
	// map and the session keep are slices of one string and the nodes'
	// contents slices of the buffer; the pair-device node and the refs'
	// nodes are one slice. Three allocations in all instead of six per
	// ref, on every registration connection (bench/NOTES.md). (The
	// stanza's id and attributes stay allocations of their own: in the
	// node log, which keeps this stanza, a shared one would keep the
	// refs' string or push the nodes into a larger size class.)
	raw, text, err := newRefs(s.rand, count)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	nodes := make([]binxml.Node, 1+count)
	refs := nodes[1:]
	reg.refText = text
	sess.reg = reg
	for i := range count {
		s.refs[reg.ref(i)] = refEntry{sess: sess, index: i}
		refs[i] = binxml.Node{Tag: "ref", Content: raw[i*refLen : (i+1)*refLen : (i+1)*refLen]}
	}
	reg.refsAt = s.now()
	s.mu.Unlock()
	nodes[0] = binxml.Node{Tag: "pair-device", Children: refs}
	n := serverIQ(s.newID(), "set", "md", nil)
	n.Children = nodes[:1:1]
	// Built for this send alone: the node log keeps it as it is.
	if err := sess.sendOwned(ctx, n); err != nil {
		return err
	}
	if sess.drop(DropPairDevice) {
		return errEnded
	}
	return nil
}

// refLen is the length of a ref: "2@" and 80 base64 characters.
const refLen = 2 + 80

// refRandLen is the random bytes behind one ref.
const refRandLen = 60

// newRef makes one ref like WhatsApp's: "2@" and 80 base64 characters.
func newRef(r io.Reader) (string, error) {
	_, ref, err := newRefs(r, 1)
	return ref, err
}

// randBufs lend newRefs its random bytes' buffer.
var randBufs = sync.Pool{New: func() any { b := make([]byte, 0, 6*refRandLen); return &b }}

// newRefs makes n refs like WhatsApp's ("2@" and 80 base64 characters of
// 60 random bytes each), laid end to end, as bytes and as a string.
func newRefs(r io.Reader, n int) ([]byte, string, error) {
	raw := make([]byte, n*refLen)
	// The random bytes in a borrowed buffer: the refs' bytes, which the
	// node log may keep, do not keep them.
	rp := randBufs.Get().(*[]byte)
	defer randBufs.Put(rp)
	if cap(*rp) < n*refRandLen {
		*rp = make([]byte, n*refRandLen)
	}
	rnd := (*rp)[:n*refRandLen]
	if _, err := io.ReadFull(r, rnd); err != nil {
		return nil, "", fmt.Errorf("watest: rand: %w", err)
	}
	for i := range n {
		out := raw[i*refLen : (i+1)*refLen]
		out[0], out[1] = '2', '@'
		base64.StdEncoding.Encode(out[2:], rnd[i*refRandLen:(i+1)*refRandLen])
	}
	return raw, string(raw), nil
}

// parseRegistration reads DevicePairingRegistrationData. Only an identity
// key that is not 32 bytes is refused: the phone signs over it (ADV,
// PROTOCOL.md §12) and the QR must match it, so nothing could be linked.
// Other deviations (sizes, key type) are not known to be refused by
// WhatsApp; they come back as warnings and the values are kept as sent
// (short ids read big-endian).
func parseRegistration(d *pairingData) (*registration, []string, error) {
	ident, err := keys.PublicKeyFromBytes(d.eIdent)
	if err != nil {
		return nil, nil, fmt.Errorf("watest: registration payload: eIdent is not a 32-byte key")
	}
	var warn []string
	if len(d.eRegid) != 4 {
		warn = append(warn, fmt.Sprintf("eRegid is %d bytes, not 4", len(d.eRegid)))
	}
	if !bytes.Equal(d.eKeytype, []byte{keys.DJBType}) {
		warn = append(warn, fmt.Sprintf("eKeytype is %x, not 05", d.eKeytype))
	}
	if len(d.eSkeyID) != 3 {
		warn = append(warn, fmt.Sprintf("eSkeyID is %d bytes, not 3", len(d.eSkeyID)))
	}
	skey, err := keys.PublicKeyFromBytes(d.eSkeyVal)
	if err != nil {
		warn = append(warn, fmt.Sprintf("eSkeyVal is %d bytes, not 32", len(d.eSkeyVal)))
	}
	// The signed pre-key's signature is checked when the device is linked
	// (Phone.pair), not here: an XEdDSA verify per connection would be a
	// sixth of the server's handshake cost, for a warning.
	// The signature and DeviceProps (parsed when the device links,
	// platformOf) are kept in one copy: d may alias the whole payload.
	kept := make([]byte, 0, len(d.eSkeySig)+len(d.deviceProps))
	kept = append(append(kept, d.eSkeySig...), d.deviceProps...)
	return &registration{
		identity: ident,
		regID:    uint32(beUint(d.eRegid)),
		skeyID:   uint32(beUint(d.eSkeyID)) & 0xffffff,
		skey:     skey,
		skeySig:  kept[:len(d.eSkeySig):len(d.eSkeySig)],
		props:    kept[len(d.eSkeySig):],
	}, warn, nil
}

// beUint reads up to the last 8 bytes of b as a big-endian number.
func beUint(b []byte) uint64 {
	var v uint64
	for _, c := range b[max(len(b)-8, 0):] {
		v = v<<8 | uint64(c)
	}
	return v
}

// platformOf names the companion for device lists: "Chrome (Mac OS)".
func platformOf(deviceProps []byte) string {
	var props waproto.DeviceProps
	_ = proto.Unmarshal(deviceProps, &props)
	name := strings.ToLower(props.GetPlatformType().String())
	if name == "" || name == "unknown" {
		name = "Web"
	}
	name = strings.ToUpper(name[:1]) + strings.ReplaceAll(name[1:], "_", " ")
	if os := props.GetOs(); os != "" {
		return name + " (" + os + ")"
	}
	return name
}

// beginLogin decides a login payload (PROTOCOL.md §13): success for a
// linked device whose Noise static key matches the one it registered,
// failure 401 otherwise.
func (sess *session) beginLogin(ctx context.Context, p *clientPayload) error {
	s := sess.srv
	number := strconv.FormatUint(p.username, 10)
	device := p.device
	s.mu.Lock()
	ph := s.phones[number]
	var dev *linkedDevice
	if ph != nil && device <= 0xffff {
		dev = ph.devices[uint16(device)]
	}
	if dev == nil || !dev.noise.Equal(sess.static) {
		s.mu.Unlock()
		s.info(sess.id, fmt.Sprintf("login of %s:%d refused: not linked or noise key mismatch", number, device))
		return sess.endStream(ctx, failure(401))
	}
	me := jid.NewAD(number, uint16(device), jid.DefaultUserServer)
	sess.login = &loginState{phone: ph, dev: dev, jid: me}
	old := s.online[me]
	s.online[me] = sess
	lid := jid.NewAD(ph.lid, uint16(device), jid.LIDServer)
	creation := strconv.FormatInt(dev.linkedAt.Unix(), 10)
	s.mu.Unlock()
	if old != nil {
		s.info(old.id, "replaced by connection "+strconv.FormatInt(sess.id, 10))
		_ = old.endStream(ctx, replaced())
	}
	s.info(sess.id, "login "+me.String())
	succ := binxml.Node{Tag: "success", Attrs: []binxml.Attr{
		binxml.A("t", s.unix()),
		binxml.A("props", "27"),
		binxml.A("abprops", "10"),
		binxml.A("location", "frc"),
		binxml.A("creation", creation),
		binxml.AJ("lid", lid),
		binxml.A("companion_enc_static", companionEncStatic(dev.noise)),
	}}
	if err := sess.send(ctx, succ); err != nil {
		return err
	}
	if sess.drop(DropLogin) {
		return errEnded
	}
	return nil
}

// companionEncStatic is the success attribute of that name: 32 bytes in
// standard base64, the same on every login of a device (PROTOCOL.md §13,
// e2e_transcript.json). No client reads it and its meaning is not
// documented, so the bytes are a hash of the device's Noise key.
func companionEncStatic(noise keys.PublicKey) string {
	h := sha256.Sum256(append([]byte("walink/watest companion_enc_static\x00"), noise.Bytes()...))
	return base64.StdEncoding.EncodeToString(h[:])
}

// handle serves one stanza from the client.
func (sess *session) handle(ctx context.Context, n binxml.Node) error {
	if sess.isEnded() {
		return nil // after a stream error only the client's close matters
	}
	switch n.Tag {
	case "iq":
		return sess.handleIQ(ctx, n)
	default:
		// ack, receipt, presence, ib (telemetry), chatstate: nothing to
		// answer for a linking-only server.
		return nil
	}
}

func (sess *session) handleIQ(ctx context.Context, n binxml.Node) error {
	id := n.Attr("id")
	typ := n.Attr("type")
	if typ == "result" || typ == "error" {
		sess.mu.Lock()
		ch := sess.pending[id]
		sess.mu.Unlock()
		if ch != nil {
			select {
			case ch <- n:
			default:
			}
		}
		return nil
	}
	if id == "" {
		return nil // nothing to correlate a reply with
	}
	xmlns := n.Attr("xmlns")
	child, _ := firstChild(n)
	loggedIn := sess.login != nil
	switch {
	case xmlns == "w:p" && typ == "get":
		return sess.send(ctx, iqResult(id))
	case xmlns == "md" && typ == "set" && child.Tag == "link_code_companion_reg":
		if sess.reg == nil {
			return sess.send(ctx, iqError(id, 400, "bad-request"))
		}
		switch child.Attr("stage") {
		case "companion_hello":
			return sess.companionHello(ctx, id, child)
		case "companion_finish":
			return sess.companionFinish(ctx, id, child)
		}
		return sess.send(ctx, iqError(id, 400, "bad-request"))
	case xmlns == "md" && !loggedIn && sess.reg != nil && passkey.IsStepIQ(child.Tag):
		return sess.passkeyIQ(ctx, id, typ, n, child)
	case !loggedIn && (xmlns == "encrypt" || xmlns == "passive" ||
		xmlns == "md" && typ == "set" && child.Tag == "remove-companion-device"):
		// No known refusal: answered as for a device with nothing stored.
		return sess.beforeLogin(ctx, id, typ, xmlns, child)
	case xmlns == "md" && typ == "set" && child.Tag == "remove-companion-device":
		return sess.removeCompanion(ctx, id, child)
	case xmlns == "encrypt" && typ == "get" && child.Tag == "count":
		sess.srv.mu.Lock()
		count := sess.login.dev.preKeys.count()
		sess.srv.mu.Unlock()
		return sess.send(ctx, iqResult(id, binxml.Node{Tag: "count", Attrs: []binxml.Attr{binxml.A("value", strconv.Itoa(count))}}))
	case xmlns == "encrypt" && typ == "set":
		return sess.uploadPreKeys(ctx, id, n)
	case xmlns == "encrypt" && typ == "get" && child.Tag == "digest":
		return sess.digest(ctx, id)
	case xmlns == "passive" && typ == "set" && (child.Tag == "active" || child.Tag == "passive"):
		return sess.send(ctx, iqResult(id))
	// Baileys' first queries after login: empty but well-formed answers,
	// so its init does not fail.
	case loggedIn && (xmlns == "w" || xmlns == "abt") && typ == "get" && child.Tag == "props":
		return sess.send(ctx, iqResult(id, binxml.Node{Tag: "props", Attrs: []binxml.Attr{
			binxml.A("protocol", child.Attr("protocol")), binxml.A("hash", "watest-1"),
		}}))
	case loggedIn && xmlns == "blocklist" && typ == "get":
		return sess.send(ctx, iqResult(id, binxml.Node{Tag: "list"}))
	case loggedIn && xmlns == "privacy" && typ == "get" && child.Tag == "privacy":
		return sess.send(ctx, iqResult(id, binxml.Node{Tag: "privacy"}))
	default:
		return sess.send(ctx, iqError(id, 501, "feature-not-implemented"))
	}
}

// beforeLogin answers a session IQ on a connection that has not logged in
// (a registration connection): WhatsApp is not known to refuse these, so
// the answer is what a device with nothing stored gets, and a warning.
func (sess *session) beforeLogin(ctx context.Context, id, typ, xmlns string, child binxml.Node) error {
	sess.srv.lenient(sess.id, fmt.Sprintf("%s %s <%s> before login: answered as for an empty device", xmlns, typ, child.Tag))
	switch {
	case xmlns == "encrypt" && typ == "get" && child.Tag == "count":
		return sess.send(ctx, iqResult(id, binxml.Node{Tag: "count", Attrs: []binxml.Attr{binxml.A("value", "0")}}))
	case xmlns == "encrypt" && typ == "get" && child.Tag == "digest":
		return sess.send(ctx, iqError(id, 404, "item-not-found"))
	case typ == "get":
		return sess.send(ctx, iqError(id, 501, "feature-not-implemented"))
	}
	return sess.send(ctx, iqResult(id)) // sets: passive/active, an upload (discarded), logout
}

// uploadPreKeys takes a pre-key upload (PROTOCOL.md §15). Deviations from
// the registration (registration id, identity, signed pre-key signature)
// and malformed entries are not known to be refused by WhatsApp: they are
// logged, malformed keys are skipped, the rest is stored.
func (sess *session) uploadPreKeys(ctx context.Context, id string, n binxml.Node) error {
	dev := sess.login.dev
	for _, w := range checkUpload(n, dev) {
		sess.srv.lenient(sess.id, "pre-key upload: "+w)
	}
	list, _ := n.Child("list")
	sess.srv.mu.Lock()
	added := dev.addPreKeys(list.Children)
	sess.srv.mu.Unlock()
	sess.srv.save()
	sess.srv.info(sess.id, fmt.Sprintf("pre-key upload of %d keys accepted", added))
	return sess.send(ctx, iqResult(id))
}

// checkUpload lists how an upload deviates from the device's registration
// and from the layout of PROTOCOL.md §15.
func checkUpload(n binxml.Node, dev *linkedDevice) []string {
	var warn []string
	reg := childContent(n, "registration")
	if len(reg) != 4 || binary.BigEndian.Uint32(reg) != dev.regID {
		warn = append(warn, "registration id differs from the registered one")
	}
	if !bytes.Equal(childContent(n, "type"), []byte{keys.DJBType}) {
		warn = append(warn, "type is not 05")
	}
	if !bytes.Equal(childContent(n, "identity"), dev.identity.Bytes()) {
		warn = append(warn, "identity differs from the registered one")
	}
	list, ok := n.Child("list")
	if !ok {
		warn = append(warn, "no list")
	}
	bad := 0
	for _, k := range list.Children {
		if !wellFormedPreKey(k) {
			bad++
		}
	}
	if bad > 0 {
		warn = append(warn, fmt.Sprintf("%d malformed keys skipped", bad))
	}
	skey, ok := n.Child("skey")
	if !ok || len(childContent(skey, "id")) != 3 {
		warn = append(warn, "no signed pre-key")
		return warn
	}
	pub, err := keys.PublicKeyFromBytes(childContent(skey, "value"))
	if err != nil || !keys.Verify(dev.identity, pub.Serialized(), childContent(skey, "signature")) {
		warn = append(warn, "signed pre-key signature does not verify")
	}
	return warn
}

// wellFormedPreKey: <key><id>3 bytes</id><value>32 bytes</value></key>.
func wellFormedPreKey(k binxml.Node) bool {
	return k.Tag == "key" && len(childContent(k, "id")) == 3 && len(childContent(k, "value")) == keys.Size
}

// digest answers the key-bundle digest query (Baileys' session check)
// with the registration data; 404 before any upload.
func (sess *session) digest(ctx context.Context, id string) error {
	s := sess.srv
	s.mu.Lock()
	dev := *sess.login.dev
	s.mu.Unlock()
	if dev.preKeys.count() == 0 {
		return sess.send(ctx, iqError(id, 404, "item-not-found"))
	}
	var reg [4]byte
	binary.BigEndian.PutUint32(reg[:], dev.regID)
	d := binxml.Node{Tag: "digest", Children: []binxml.Node{
		bytesNode("registration", reg[:]),
		bytesNode("type", []byte{keys.DJBType}),
		bytesNode("identity", dev.identity.Bytes()),
		{Tag: "skey", Children: []binxml.Node{
			bytesNode("id", keys.PreKeyIDBytes(dev.skeyID)),
			bytesNode("value", dev.skey.Bytes()),
			bytesNode("signature", dev.skeySig),
		}},
	}}
	return sess.send(ctx, iqResult(id, d))
}

// removeCompanion serves logout: the device removes itself.
func (sess *session) removeCompanion(ctx context.Context, id string, child binxml.Node) error {
	target, ok := child.AttrJID("jid")
	me := sess.login.jid
	lid := jid.NewAD(sess.login.phone.lid, me.Device, jid.LIDServer)
	switch {
	case !ok:
		sess.srv.lenient(sess.id, "remove-companion-device without a jid: taken as the device itself")
	case sameDevice(target, me) || sameDevice(target, lid):
	default:
		// A companion removing another device of the account: no client
		// does it and the lenient reading would unlink someone else, so it
		// is refused (the code is a guess; see the audit in doc.go).
		return sess.send(ctx, iqError(id, 403, "forbidden"))
	}
	sess.login.phone.forget(me.Device)
	// The device is gone: the connection no longer counts as online (Kick,
	// Ping), and the server waits for the client to close it.
	sess.offline()
	sess.srv.save()
	sess.srv.info(sess.id, "logout: "+me.String()+" unlinked itself")
	return sess.send(ctx, iqResult(id))
}

func sameDevice(a, b jid.JID) bool {
	return a.User == b.User && a.Device == b.Device && a.Server == b.Server
}
