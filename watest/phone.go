package watest

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/pairing"
)

// pairReplyTimeout bounds the wait for the companion's pair-device-sign
// reply when the caller's ctx has no deadline.
const pairReplyTimeout = 30 * time.Second

// Phone is a virtual primary phone: the account's device 0. It scans QR
// codes, types pair codes, lists and unlinks companions. Its account key,
// LID and ADV raw id are derived from the number, so a phone is the same
// across server restarts. Methods are safe for concurrent use.
type Phone struct {
	srv     *Server
	number  string
	account keys.KeyPair
	lid     string // LID user part
	rawID   uint32

	// Guarded by srv.mu.
	nextDevice   uint16
	nextKeyIndex uint32
	devices      map[uint16]*linkedDevice
	reserved     map[uint16]bool // device numbers of pairings in flight
	codeRequests []time.Time     // companion_hello times, for the rate limit
}

// linkedDevice is a companion linked to a phone.
type linkedDevice struct {
	device   uint16
	keyIndex uint32
	noise    keys.PublicKey
	identity keys.PublicKey
	regID    uint32
	skeyID   uint32
	skey     keys.PublicKey
	skeySig  []byte
	platform string
	linkedAt time.Time
	preKeys  preKeyStore
}

// DeviceInfo describes a linked companion.
type DeviceInfo struct {
	JID      jid.JID
	LID      jid.JID
	Platform string
	LinkedAt time.Time
}

func newPhone(s *Server, number string) *Phone {
	seed := sha256.Sum256([]byte("walink/watest phone account key\x00" + number))
	account, _ := keys.KeyPairFromPrivate(seed[:]) // 32 bytes: cannot fail
	h := sha256.Sum256([]byte("walink/watest phone lid\x00" + number))
	return &Phone{
		srv:          s,
		number:       number,
		account:      account,
		lid:          fmt.Sprintf("1%014d", binary.BigEndian.Uint64(h[:8])%100_000_000_000_000),
		rawID:        binary.BigEndian.Uint32(h[8:12]),
		nextDevice:   1,
		nextKeyIndex: 1,
		devices:      map[uint16]*linkedDevice{},
	}
}

// Number returns the phone number (digits).
func (p *Phone) Number() string { return p.number }

// JID returns the phone's own address, number@s.whatsapp.net.
func (p *Phone) JID() jid.JID { return jid.New(p.number, jid.DefaultUserServer) }

// LID returns the account's LID, lid@lid.
func (p *Phone) LID() jid.JID { return jid.New(p.lid, jid.LIDServer) }

// AccountKey returns the account identity public key that signs device
// identities (the companion stores it as the primary's identity).
func (p *Phone) AccountKey() keys.PublicKey { return p.account.Public }

// Devices lists the linked companions, by device number.
func (p *Phone) Devices() []DeviceInfo {
	p.srv.mu.Lock()
	defer p.srv.mu.Unlock()
	out := make([]DeviceInfo, 0, len(p.devices))
	for _, d := range p.devices {
		out = append(out, DeviceInfo{
			JID:      jid.NewAD(p.number, d.device, jid.DefaultUserServer),
			LID:      jid.NewAD(p.lid, d.device, jid.LIDServer),
			Platform: d.platform,
			LinkedAt: d.linkedAt,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].JID.Device < out[j].JID.Device })
	return out
}

// Unlink removes a companion, as "Log out" on the phone does. A connected
// companion gets <stream:error code="401"><conflict type="device_removed"/>;
// its later logins get <failure reason="401"/>.
func (p *Phone) Unlink(ctx context.Context, device uint16) error {
	me := jid.NewAD(p.number, device, jid.DefaultUserServer)
	s := p.srv
	s.mu.Lock()
	if _, ok := p.devices[device]; !ok {
		s.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrUnknownDevice, me)
	}
	delete(p.devices, device)
	sess := s.online[me]
	delete(s.online, me)
	s.mu.Unlock()
	s.save()
	s.info(0, "phone unlinked "+me.String())
	if sess != nil {
		// The device is unlinked whatever happens to the courtesy stream
		// error: a companion that already went away (its socket closed
		// under us) is not a failure to unlink.
		if err := sess.endStream(ctx, deviceRemoved()); err != nil && ctx.Err() != nil {
			return err
		}
	}
	return nil
}

// maxDevice is the largest device number: AD_JID carries it in one byte.
const maxDevice = 255

// reserveDeviceLocked picks the next free device number, cycling through
// 1..255 from where the last one was handed out, and reserves it for a
// pairing in flight.
func (p *Phone) reserveDeviceLocked() (uint16, bool) {
	if p.reserved == nil {
		p.reserved = map[uint16]bool{}
	}
	for i := 0; i < maxDevice; i++ {
		d := uint16((int(p.nextDevice)-1+i)%maxDevice + 1)
		if p.devices[d] == nil && !p.reserved[d] {
			p.reserved[d] = true
			p.nextDevice = d%maxDevice + 1
			return d, true
		}
	}
	return 0, false
}

// forget removes a device record (logout by the companion itself).
func (p *Phone) forget(device uint16) {
	p.srv.mu.Lock()
	delete(p.devices, device)
	p.srv.mu.Unlock()
}

// ScanQR is the phone scanning a companion's QR string (every form: with
// or without the wa.me prefix, 4 or 5 fields). It blocks until the device
// is linked (its device signature verified) or refused. With QRRefresh on,
// the first scan of a connection only triggers companion_reg_refresh and
// returns an error wrapping ErrRescan: scan the re-rendered QR.
func (p *Phone) ScanQR(ctx context.Context, qr string) (jid.JID, error) {
	q, err := pairing.ParseQR(qr)
	if err != nil {
		return jid.JID{}, fmt.Errorf("%w: %w", ErrMalformedQR, err)
	}
	s := p.srv
	s.mu.Lock()
	re, ok := s.refs[q.Ref]
	if !ok {
		s.mu.Unlock()
		return jid.JID{}, ErrUnknownRef
	}
	sess, reg := re.sess, re.sess.reg
	_, until := s.scenario.refWindow(reg.refsAt, re.index)
	if !s.now().Before(until) {
		s.mu.Unlock()
		return jid.JID{}, fmt.Errorf("%w: ref %d of %d expired at %s", ErrExpiredRef, re.index+1, reg.refCount(), until.UTC().Format(time.RFC3339))
	}
	if !q.Noise.Equal(sess.static) || !q.Identity.Equal(reg.identity) {
		s.mu.Unlock()
		return jid.JID{}, ErrQRMismatch
	}
	for _, old := range reg.retired {
		if old == q.AdvSecret {
			s.mu.Unlock()
			return jid.JID{}, ErrStaleQR
		}
	}
	if reg.busy || reg.paired {
		s.mu.Unlock()
		return jid.JID{}, ErrBusy
	}
	if s.scenario.QRRefresh && !reg.refreshed {
		reg.refreshed = true
		reg.retired = append(reg.retired, q.AdvSecret)
		s.mu.Unlock()
		n := notification(s.newID(), s.unix(), "companion_reg_refresh", binxml.Node{Tag: "companion_reg_refresh"})
		if err := sess.send(ctx, n); err != nil {
			return jid.JID{}, err
		}
		return jid.JID{}, ErrRescan
	}
	reg.busy = true
	s.mu.Unlock()
	return p.link(ctx, sess, q.AdvSecret, platformOf(reg.props), PasskeyQR)
}

// pair sends pair-success with a device identity signed by the account
// key and HMAC'd with advSecret, verifies the companion's device signature,
// links the device, and ends the stream with 515 (PROTOCOL.md §11.1 steps
// 5–7). reg.busy must be set by the caller; pair clears it.
func (p *Phone) pair(ctx context.Context, sess *session, advSecret [32]byte, platform string) (jid.JID, error) {
	s := p.srv
	reg := sess.reg
	linked := false
	defer func() {
		s.mu.Lock()
		reg.busy = false
		reg.paired = reg.paired || linked
		s.mu.Unlock()
	}()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, pairReplyTimeout)
		defer cancel()
	}
	s.mu.Lock()
	device, ok := p.reserveDeviceLocked()
	keyIndex := p.nextKeyIndex
	p.nextKeyIndex++
	sc := s.scenario
	s.mu.Unlock()
	if !ok {
		return jid.JID{}, ErrTooManyDevices
	}
	defer func() {
		s.mu.Lock()
		delete(p.reserved, device)
		if len(p.reserved) == 0 {
			p.reserved = nil // most phones pair once: no empty map per phone
		}
		s.mu.Unlock()
	}()
	if len(reg.skeySig) != keys.SignatureSize || !keys.Verify(reg.identity, reg.skey.Serialized(), reg.skeySig) {
		s.lenient(sess.id, "registration payload: signed pre-key signature does not verify")
	}
	now := s.now()
	id := pairing.DeviceIdentity{RawID: p.rawID, Timestamp: uint64(now.Unix()), KeyIndex: keyIndex, AccountType: pairing.AccountE2EE}
	container, err := pairing.SignDeviceIdentity(s.rand, p.account, reg.identity, advSecret, id)
	if err != nil {
		return jid.JID{}, fmt.Errorf("watest: sign device identity: %w", err)
	}
	if t := sc.Faults.TamperPairSuccess; t != "" {
		if container, err = tamperContainer(container, advSecret, t); err != nil {
			return jid.JID{}, err
		}
		s.info(sess.id, "fault: pair-success tampered ("+t+")")
	}
	me := jid.NewAD(p.number, device, jid.DefaultUserServer)
	children := []binxml.Node{
		bytesNode("device-identity", container),
		{Tag: "platform", Attrs: []binxml.Attr{binxml.A("name", sc.Platform)}},
		{Tag: "device", Attrs: []binxml.Attr{binxml.AJ("jid", me), binxml.AJ("lid", jid.NewAD(p.lid, device, jid.LIDServer))}},
	}
	if sc.BusinessName != "" {
		children = append(children, binxml.Node{Tag: "biz", Attrs: []binxml.Attr{binxml.A("name", sc.BusinessName)}})
	}
	req := serverIQ(s.newID(), "set", "md", []binxml.Attr{binxml.A("t", strconv.FormatInt(now.Unix(), 10))},
		binxml.Node{Tag: "pair-success", Children: children})
	if sc.drop(DropPairSuccess) {
		_ = sess.send(ctx, req)
		sess.dropNow(DropPairSuccess)
		return jid.JID{}, ErrDisconnected
	}
	reply, err := sess.request(ctx, req)
	if err != nil {
		return jid.JID{}, fmt.Errorf("watest: waiting for pair-device-sign: %w", err)
	}
	if reply.Attr("type") == "error" {
		e, _ := reply.Child("error")
		code, _ := strconv.Atoi(e.Attr("code"))
		s.info(sess.id, fmt.Sprintf("companion refused pair-success: %d %s", code, e.Attr("text")))
		return jid.JID{}, &IQError{Code: code, Text: e.Attr("text"), err: ErrPairRejected}
	}
	warn, err := checkSignReply(reply, reg.identity, p.account.Public, keyIndex)
	if warn != "" {
		s.lenient(sess.id, warn)
	}
	if err != nil {
		s.info(sess.id, "device signature refused: "+err.Error())
		// The device is not linked; a restart makes the companion log in,
		// which then fails with 401 like any unlinked device.
		_ = sess.endStream(ctx, streamError("515"))
		return jid.JID{}, err
	}
	s.mu.Lock()
	p.devices[device] = &linkedDevice{
		device: device, keyIndex: keyIndex, noise: sess.static, identity: reg.identity,
		regID: reg.regID, skeyID: reg.skeyID, skey: reg.skey, skeySig: reg.skeySig,
		platform: platform, linkedAt: now,
	}
	linked = true
	s.mu.Unlock()
	s.save()
	s.info(sess.id, "linked "+me.String())
	if sess.drop(DropBefore515) {
		return me, nil
	}
	if sc.drop(DropAfter515) {
		_ = sess.send(ctx, streamError("515"))
		sess.dropNow(DropAfter515)
		return me, nil
	}
	if err := sess.endStream(ctx, streamError("515")); err != nil && !errors.Is(err, context.Canceled) {
		s.log.Debug("watest: send 515", "err", err)
	}
	return me, nil
}

// checkSignReply verifies a <pair-device-sign> reply: the device
// signature over 06 01 || details || companion identity || account key and
// the key index inside the signed details (PROTOCOL.md §12). WhatsApp is
// known to check the signature: whatsmeow's wrong hosted prefixes (issues
// #893, #946, PROTOCOL.md §23.2 item 3) broke linking. The key-index
// attribute only repeats the signed value; a missing or different one is
// returned as a warning, not refused.
func checkSignReply(reply binxml.Node, companion, account keys.PublicKey, keyIndex uint32) (warn string, err error) {
	sign, ok := reply.Child("pair-device-sign")
	if !ok {
		return "", fmt.Errorf("%w: reply has no pair-device-sign", ErrSignatureRefused)
	}
	di, ok := sign.Child("device-identity")
	if !ok || len(di.Content) == 0 {
		return "", fmt.Errorf("%w: reply has no device-identity", ErrSignatureRefused)
	}
	id, err := pairing.VerifyDeviceSignature(di.Content, companion, account, false)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrSignatureRefused, err)
	}
	if id.KeyIndex != keyIndex {
		return "", fmt.Errorf("%w: key index %d, want %d", ErrSignatureRefused, id.KeyIndex, keyIndex)
	}
	if attr := di.Attr("key-index"); attr != strconv.FormatUint(uint64(keyIndex), 10) {
		return fmt.Sprintf("pair-device-sign key-index attribute %q, the signed details say %d", attr, keyIndex), nil
	}
	return "", nil
}
