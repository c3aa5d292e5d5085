package watest

// Tests of the leniency audit (doc.go): inputs WhatsApp is not known to
// refuse are accepted end to end and leave a "lenient:" note.

import (
	"crypto/rand"
	"strings"
	"testing"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/pairing"
)

// helloAs sends a companion_hello the way a given client builds it: its
// platform id and nonce content.
func (c *companion) helloAs(t *testing.T, w *wconn, code, platformID, display string, nonce []byte) (binxml.Node, keys.KeyPair) {
	t.Helper()
	eph, wrapped := c.wrapped(t, code)
	id := w.iq("md", "set", binxml.Node{Tag: "link_code_companion_reg", Attrs: []binxml.Attr{
		binxml.AJ("jid", jid.New(testNumber, jid.DefaultUserServer)), binxml.A("stage", "companion_hello"), binxml.A("should_show_push_notification", "true"),
	}, Children: []binxml.Node{
		bytesNode("link_code_pairing_wrapped_companion_ephemeral_pub", wrapped),
		bytesNode("companion_server_auth_key_pub", c.noise.Public.Bytes()),
		bytesNode("companion_platform_id", []byte(platformID)),
		bytesNode("companion_platform_display", []byte(display)),
		bytesNode("link_code_pairing_nonce", nonce),
	}})
	return w.reply(id), eph
}

// linkByCodeAs runs a whole pair-code link with helloAs and returns the
// phone's device list after the 515.
func linkByCodeAs(t *testing.T, s *Server, c *companion, platformID, display string, nonce []byte) []DeviceInfo {
	t.Helper()
	ctx := testCtx(t)
	w := c.mustConnect(ctx, s, c.registrationPayload())
	defer w.close()
	w.pairDevice()
	code, err := pairing.NewCode(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	r, eph := c.helloAs(t, w, code, platformID, display, nonce)
	reg, ok := r.Child("link_code_companion_reg")
	if r.Attr("type") != "result" || !ok {
		t.Fatalf("companion_hello (platform id %q): %s", platformID, xmlString(r))
	}
	res := codeAsync(ctx, s.Phone(testNumber), code)
	fin, adv := c.codeFinish(t, w, code, eph, childContent(reg, "link_code_pairing_ref"))
	if fin.Attr("type") != "result" {
		t.Fatalf("companion_finish: %s", xmlString(fin))
	}
	c.answerPairSuccess(w, adv, false)
	w.expect("515", func(n binxml.Node) bool { return n.Tag == "stream:error" && n.Attr("code") == "515" })
	if got := <-res; got.err != nil || got.jid != c.id {
		t.Fatalf("EnterCode = %v, %v; companion has %s", got.jid, got.err, c.id)
	}
	return s.Phone(testNumber).Devices()
}

// TestBaileys6PairCodeLinks: Baileys 6.x (npm latest) sends
// companion_platform_id as the character code of the digit ("49" for
// Chrome, PROTOCOL.md §23.2 item 11), the nonce as the string "0" (item 1)
// and speaks the v2 dictionary (item 17). WhatsApp links it, so this
// server must: end to end by code, then a login and a pre-key upload.
func TestBaileys6PairCodeLinks(t *testing.T) {
	s := startServer(t, nil, Config{})
	c := newCompanion(t)
	c.header = [4]byte{'W', 'A', 6, 2}
	devs := linkByCodeAs(t, s, c, "49", "Chrome (Mac OS)", []byte("0"))
	if len(devs) != 1 || devs[0].JID != c.id || devs[0].Platform != "Chrome (Mac OS)" {
		t.Fatalf("devices = %+v", devs)
	}
	awaitLenient(t, s, `companion_platform_id "49" read as the character code of "1" (Baileys 6.x)`)
	w := c.login(testCtx(t), s)
	defer w.close()
	if r := w.reply(w.iq("encrypt", "set", c.preKeyUpload(t, 30)...)); r.Attr("type") != "result" {
		t.Fatalf("upload: %s", xmlString(r))
	}
}

// TestUnknownPlatformIDLinks: an unfamiliar platform id links and is shown
// as an unknown web client.
func TestUnknownPlatformIDLinks(t *testing.T) {
	s := startServer(t, nil, Config{})
	c := newCompanion(t)
	devs := linkByCodeAs(t, s, c, "z", "Chrome (Linux)", []byte{0})
	if len(devs) != 1 || devs[0].Platform != "unknown web client: Chrome (Linux)" {
		t.Fatalf("devices = %+v", devs)
	}
	awaitLenient(t, s, `companion_platform_id "z" is no known client type`)
}

// TestLenientSessionIQs: a pre-key upload that disagrees with the
// registration and carries a malformed key, a logout without a jid or by
// the device's LID, and a session IQ before login are accepted and logged.
func TestLenientSessionIQs(t *testing.T) {
	s := startServer(t, nil, Config{})
	ctx := testCtx(t)

	t.Run("pre-key upload", func(t *testing.T) {
		c := newCompanion(t)
		linkQR(ctx, t, s, c)
		w := c.login(ctx, s)
		defer w.close()
		up := c.preKeyUpload(t, 20)
		up[0] = bytesNode("registration", []byte{1, 2, 3, 4})
		list := &up[3]
		list.Children = append(list.Children, binxml.Node{Tag: "key", Children: []binxml.Node{bytesNode("id", []byte{0, 0, 99}), bytesNode("value", []byte{1, 2})}})
		if r := w.reply(w.iq("encrypt", "set", up...)); r.Attr("type") != "result" {
			t.Fatalf("upload: %s", xmlString(r))
		}
		awaitLenient(t, s, "pre-key upload: registration id differs from the registered one")
		awaitLenient(t, s, "pre-key upload: 1 malformed keys skipped")
		r := w.reply(w.iq("encrypt", "get", binxml.Node{Tag: "count"}))
		if cn, _ := r.Child("count"); cn.Attr("value") != "20" {
			t.Fatalf("count: %s", xmlString(r))
		}
	})

	t.Run("pair-device-sign without key-index", func(t *testing.T) {
		c := newCompanion(t)
		c.noKeyIndexAttr = true
		dev := linkQR(ctx, t, s, c)
		awaitLenient(t, s, `pair-device-sign key-index attribute ""`)
		w := c.login(ctx, s) // linked: the login succeeds
		w.close()
		if dev.Device == 0 {
			t.Fatal("no device")
		}
	})

	t.Run("bad signed pre-key signature", func(t *testing.T) {
		c := newCompanion(t)
		c.spk.Signature[10] ^= 1
		linkQR(ctx, t, s, c)
		awaitLenient(t, s, "registration payload: signed pre-key signature does not verify")
		c.login(ctx, s).close()
	})

	t.Run("logout without jid", func(t *testing.T) {
		c := newCompanion(t)
		dev := linkQR(ctx, t, s, c)
		w := c.login(ctx, s)
		defer w.close()
		r := w.reply(w.iq("md", "set", binxml.Node{Tag: "remove-companion-device", Attrs: []binxml.Attr{binxml.A("reason", "user_initiated")}}))
		if r.Attr("type") != "result" {
			t.Fatalf("logout: %s", xmlString(r))
		}
		awaitLenient(t, s, "remove-companion-device without a jid")
		for _, d := range s.Phone(testNumber).Devices() {
			if d.JID == dev {
				t.Fatalf("%s still linked", dev)
			}
		}
	})

	t.Run("logout by LID", func(t *testing.T) {
		c := newCompanion(t)
		dev := linkQR(ctx, t, s, c)
		w := c.login(ctx, s)
		defer w.close()
		r := w.reply(w.iq("md", "set", binxml.Node{Tag: "remove-companion-device", Attrs: []binxml.Attr{binxml.AJ("jid", c.lid), binxml.A("reason", "user_initiated")}}))
		if r.Attr("type") != "result" {
			t.Fatalf("logout: %s", xmlString(r))
		}
		for _, d := range s.Phone(testNumber).Devices() {
			if d.JID == dev {
				t.Fatalf("%s still linked", dev)
			}
		}
	})

	t.Run("passive before login", func(t *testing.T) {
		c := newCompanion(t)
		w := c.mustConnect(ctx, s, c.registrationPayload())
		defer w.close()
		w.pairDevice()
		if r := w.reply(w.iq("passive", "set", binxml.Node{Tag: "active"})); r.Attr("type") != "result" {
			t.Fatalf("passive: %s", xmlString(r))
		}
		awaitLenient(t, s, "passive set <active> before login")
	})
}

// FuzzClientType: any companion_platform_id is either refused (only the
// UNKNOWN type, "0" or its character code) or read as a known id or as an
// unknown web client, with a note whenever it was not the plain id.
func FuzzClientType(f *testing.F) {
	for _, s := range []string{"1", "9", "c", "49", "50", "48", "0", "", "x", "999", "-49", "1\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		id, note, refused := clientType(raw)
		switch {
		case refused:
			if raw != "0" && raw != "48" && strings.TrimLeft(raw, "0+") != "48" {
				t.Fatalf("%q refused", raw)
			}
		case id == "":
			if note == "" {
				t.Fatalf("%q: unknown without a note", raw)
			}
		case pairing.ValidateClientType(id) != nil:
			t.Fatalf("%q read as invalid id %q", raw, id)
		case id != raw && note == "":
			t.Fatalf("%q read as %q without a note", raw, id)
		}
	})
}
