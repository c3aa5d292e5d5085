package engine

import (
	"testing"
	"time"
	"unicode/utf8"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/jid"
)

// FuzzParsers feeds decoded frames of any shape to every stanza parser:
// none may panic, and parsed pair-success values must be self-consistent.
func FuzzParsers(f *testing.F) {
	own := jid.NewAD("15551234567", 3, jid.DefaultUserServer)
	seeds := []binxml.Node{
		pairSuccessNode(binxml.Node{Tag: "device-identity", Content: []byte{1}}, binxml.Node{Tag: "device", Attrs: []binxml.Attr{binxml.AJ("jid", own)}}),
		{Tag: "iq", Children: []binxml.Node{{Tag: "pair-device", Children: []binxml.Node{{Tag: "ref", Content: []byte("2@x")}}}}},
		{Tag: "stream:error", Attrs: []binxml.Attr{binxml.A("code", "401")}, Children: []binxml.Node{{Tag: "conflict", Attrs: []binxml.Attr{binxml.A("type", "device_removed")}}}},
		{Tag: "failure", Attrs: []binxml.Attr{binxml.A("reason", "402"), binxml.A("expire", "60")}},
		{Tag: "notification", Children: []binxml.Node{{Tag: "link_code_companion_reg", Attrs: []binxml.Attr{binxml.A("stage", "primary_hello")}}}},
		{Tag: "iq", Attrs: []binxml.Attr{binxml.A("type", "error")}, Children: []binxml.Node{{Tag: "error", Attrs: []binxml.Attr{binxml.A("code", "429"), binxml.A("backoff", "30")}}}},
	}
	for _, n := range seeds {
		b, err := binxml.Marshal(n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		n, err := binxml.Unmarshal(frame)
		if err != nil {
			return
		}
		if ps, err := ParsePairSuccess(n); err == nil {
			if len(ps.DeviceIdentity) == 0 || ps.ID.Device == 0 {
				t.Fatalf("accepted pair-success without identity or device: %+v", ps)
			}
			if ps.ID.Validate() != nil || (!ps.LID.IsEmpty() && ps.LID.Validate() != nil) {
				t.Fatalf("accepted pair-success with a junk JID: %#v %#v", ps.ID, ps.LID)
			}
			if !utf8.ValidString(ps.Platform) || !utf8.ValidString(ps.BusinessName) {
				t.Fatalf("accepted pair-success with names that are not UTF-8: %q %q", ps.Platform, ps.BusinessName)
			}
		}
		if refs, err := ParsePairDevice(n); err == nil && len(refs) == 0 {
			t.Fatal("pair-device accepted without refs")
		}
		ParseStreamError(n)
		f := ParseFailure(n)
		if f.BanExpire < 0 {
			t.Fatal("negative ban")
		}
		if s := ParseSuccess(n); !s.LID.IsEmpty() && s.LID.Validate() != nil {
			t.Fatalf("success with a junk lid: %#v", s.LID)
		}
		ParseIQError(n)
		ParsePreKeyCount(n)
		ParseCompanionHelloResult(n)
		if lc, err := ParseLinkCodeNotification(n); err == nil {
			flow := &CodeFlow{Ref: []byte("r"), Started: time.Unix(0, 0)}
			flow.CheckPrimaryHello(time.Unix(1, 0), lc)
		}
		IsRegRefresh(n)
		IsServerPing(n)
		IsFromServer(n)
		Ack(n)
		Pong(n)
	})
}
