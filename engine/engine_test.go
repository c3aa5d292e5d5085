package engine

import (
	"bytes"
	"crypto/rand"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/keys"
)

func TestIDs(t *testing.T) {
	ids, err := NewIDs(bytes.NewReader([]byte{51, 8}))
	if err != nil {
		t.Fatal(err)
	}
	if a, b := ids.Next(), ids.Next(); a != "51.8-1" || b != "51.8-2" {
		t.Fatalf("ids %q %q", a, b)
	}
	if _, err := NewIDs(bytes.NewReader(nil)); err == nil {
		t.Fatal("no randomness accepted")
	}
}

func TestQRRotation(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := NewQRRotation([]string{"r1", "r2", "r3"}, 60*time.Second, 20*time.Second, t0)
	ref, rem, ok := r.Current(t0.Add(10 * time.Second))
	if !ok || ref != "r1" || rem != 50*time.Second {
		t.Fatalf("Current = %q %v %v", ref, rem, ok)
	}
	if r.Advance(t0.Add(59 * time.Second)) {
		t.Fatal("advanced before the deadline")
	}
	now := t0.Add(60 * time.Second)
	for _, want := range []string{"r2", "r3"} {
		if !r.Advance(now) {
			t.Fatalf("did not advance to %s", want)
		}
		if ref, rem, _ := r.Current(now); ref != want || rem != 20*time.Second {
			t.Fatalf("Current = %q %v", ref, rem)
		}
		now = now.Add(20 * time.Second)
	}
	if !r.Advance(now) || !r.Exhausted() || !r.Deadline().IsZero() {
		t.Fatal("not exhausted after the last ref")
	}
	if _, _, ok := r.Current(now); ok {
		t.Fatal("Current after exhaustion")
	}
	if r.Advance(now.Add(time.Hour)) {
		t.Fatal("advanced past the end")
	}
}

func TestBackoff(t *testing.T) {
	b := Backoff{Min: time.Second, Max: 30 * time.Second, Multiplier: 2, Jitter: 0.5}
	if d := b.Delay(0, 0); d != time.Second {
		t.Errorf("attempt 0 = %v", d)
	}
	if d := b.Delay(3, 0); d != 8*time.Second {
		t.Errorf("attempt 3 = %v", d)
	}
	if d := b.Delay(1000, 0); d != 30*time.Second {
		t.Errorf("attempt 1000 = %v (not capped)", d)
	}
	if d := b.Delay(3, 0.999); d < 4*time.Second || d > 8*time.Second {
		t.Errorf("jittered = %v", d)
	}
}

func TestParseStreamError(t *testing.T) {
	conflict := func(typ string) []binxml.Node {
		return []binxml.Node{{Tag: "conflict", Attrs: []binxml.Attr{binxml.A("type", typ)}}}
	}
	for _, c := range []struct {
		n    binxml.Node
		want StreamKind
	}{
		{binxml.Node{Tag: "stream:error", Attrs: []binxml.Attr{binxml.A("code", "515")}}, StreamRestart},
		{binxml.Node{Tag: "stream:error", Attrs: []binxml.Attr{binxml.A("code", "401")}, Children: conflict("device_removed")}, StreamDeviceRemoved},
		{binxml.Node{Tag: "stream:error", Attrs: []binxml.Attr{binxml.A("code", "401")}}, StreamDeviceRemoved},
		{binxml.Node{Tag: "stream:error", Children: conflict("replaced")}, StreamReplaced},
		{binxml.Node{Tag: "stream:error", Attrs: []binxml.Attr{binxml.A("code", "429")}}, StreamRateLimited},
		{binxml.Node{Tag: "stream:error", Attrs: []binxml.Attr{binxml.A("code", "503")}}, StreamReconnect},
		{binxml.Node{Tag: "stream:error"}, StreamReconnect},
	} {
		if got := ParseStreamError(c.n).Kind; got != c.want {
			t.Errorf("%v: kind %d, want %d", c.n.Attrs, got, c.want)
		}
	}
}

func TestParseFailure(t *testing.T) {
	f := ParseFailure(binxml.Node{Tag: "failure", Attrs: []binxml.Attr{binxml.A("reason", "402"), binxml.A("code", "101"), binxml.A("expire", "3600")}})
	if f.Reason != 402 || f.BanCode != 101 || f.BanExpire != time.Hour || f.LoggedOut() {
		t.Errorf("ban = %+v", f)
	}
	for r, lo := range map[string]bool{"401": true, "403": true, "406": true, "405": false, "500": false, "": false} {
		if got := ParseFailure(binxml.Node{Tag: "failure", Attrs: []binxml.Attr{binxml.A("reason", r)}}).LoggedOut(); got != lo {
			t.Errorf("reason %q logged out = %v", r, got)
		}
	}
}

func pairSuccessNode(children ...binxml.Node) binxml.Node {
	return binxml.Node{Tag: "iq", Attrs: []binxml.Attr{binxml.A("id", "srv-1"), binxml.A("t", "1795597893"), binxml.A("type", "set")},
		Children: []binxml.Node{{Tag: "pair-success", Children: children}}}
}

func TestParsePairSuccess(t *testing.T) {
	own := jid.NewAD("15551234567", 3, jid.DefaultUserServer)
	lid := jid.NewAD("123456789012345", 3, jid.LIDServer)
	n := pairSuccessNode(
		binxml.Node{Tag: "device-identity", Content: []byte{1, 2}},
		binxml.Node{Tag: "device", Attrs: []binxml.Attr{binxml.AJ("jid", own), binxml.AJ("lid", lid)}},
		binxml.Node{Tag: "platform", Attrs: []binxml.Attr{binxml.A("name", "android")}},
		binxml.Node{Tag: "biz", Attrs: []binxml.Attr{binxml.A("name", "Shop")}},
	)
	ps, err := ParsePairSuccess(n)
	if err != nil {
		t.Fatal(err)
	}
	if ps.IQID != "srv-1" || ps.ID != own || ps.LID != lid || ps.Platform != "android" || ps.BusinessName != "Shop" || ps.ServerTime.Unix() != 1795597893 {
		t.Errorf("parsed %+v", ps)
	}
	for name, bad := range map[string]binxml.Node{
		"no pair-success":  {Tag: "iq"},
		"no identity":      pairSuccessNode(binxml.Node{Tag: "device", Attrs: []binxml.Attr{binxml.AJ("jid", own)}}),
		"no device":        pairSuccessNode(binxml.Node{Tag: "device-identity", Content: []byte{1}}),
		"device 0 (phone)": pairSuccessNode(binxml.Node{Tag: "device-identity", Content: []byte{1}}, binxml.Node{Tag: "device", Attrs: []binxml.Attr{binxml.AJ("jid", own.ToNonAD())}}),
		"group jid":        pairSuccessNode(binxml.Node{Tag: "device-identity", Content: []byte{1}}, binxml.Node{Tag: "device", Attrs: []binxml.Attr{binxml.AJ("jid", jid.NewAD("1234", 3, jid.GroupServer))}}),
		"lid on s.whatsapp.net": pairSuccessNode(binxml.Node{Tag: "device-identity", Content: []byte{1}},
			binxml.Node{Tag: "device", Attrs: []binxml.Attr{binxml.AJ("jid", own), binxml.AJ("lid", own)}}),
		"lid not a jid": pairSuccessNode(binxml.Node{Tag: "device-identity", Content: []byte{1}},
			binxml.Node{Tag: "device", Attrs: []binxml.Attr{binxml.AJ("jid", own), binxml.A("lid", "x@y@z")}}),
	} {
		if _, err := ParsePairSuccess(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestParsePairDevice(t *testing.T) {
	n := binxml.Node{Tag: "iq", Children: []binxml.Node{{Tag: "pair-device", Children: []binxml.Node{
		{Tag: "ref", Content: []byte("2@a")}, {Tag: "ref", Content: []byte("2@b")}, {Tag: "other"},
	}}}}
	refs, err := ParsePairDevice(n)
	if err != nil || strings.Join(refs, ",") != "2@a,2@b" {
		t.Fatalf("refs %v %v", refs, err)
	}
	if _, err := ParsePairDevice(binxml.Node{Tag: "iq", Children: []binxml.Node{{Tag: "pair-device"}}}); err == nil {
		t.Fatal("pair-device without refs accepted")
	}
}

func TestBuilders(t *testing.T) {
	e := IQError("x", 401, "hmac-mismatch")
	if e.Attr("type") != "error" || e.Attr("id") != "x" {
		t.Fatal(e.Attrs)
	}
	if info, ok := ParseIQError(e); !ok || info.Code != 401 || info.Text != "hmac-mismatch" {
		t.Fatalf("ParseIQError = %+v %v", info, ok)
	}
	if to, _ := e.AttrJID("to"); to != jid.ServerJID {
		t.Fatal("to is not the typed server JID")
	}
	sign := PairDeviceSign("y", 5, []byte{9})
	pds, _ := sign.Child("pair-device-sign")
	di, _ := pds.Child("device-identity")
	if di.Attr("key-index") != "5" || !bytes.Equal(di.Content, []byte{9}) {
		t.Fatal("pair-device-sign layout")
	}
	ping := binxml.Node{Tag: "iq", Attrs: []binxml.Attr{binxml.A("type", "get"), binxml.A("xmlns", "urn:xmpp:ping")}}
	if !IsServerPing(ping) {
		t.Fatal("server ping not recognised")
	}
	if _, ok := Pong(ping).AttrOK("id"); ok {
		t.Fatal("pong invented an id")
	}
	notif := binxml.Node{Tag: "notification", Attrs: []binxml.Attr{binxml.A("id", "n1"), binxml.AJ("from", jid.ServerJID), binxml.A("type", "companion_reg_refresh")},
		Children: []binxml.Node{{Tag: "companion_reg_refresh"}}}
	ack := Ack(notif)
	if ack.Attr("class") != "notification" || ack.Attr("id") != "n1" || ack.Attr("type") != "companion_reg_refresh" {
		t.Fatal(ack.Attrs)
	}
	if !IsRegRefresh(notif) {
		t.Fatal("reg refresh not recognised")
	}
	notif.Children = []binxml.Node{{Tag: "something-else"}}
	if IsRegRefresh(notif) {
		t.Fatal("reg refresh without a known child accepted")
	}
	kp, _ := keys.NewKeyPair(rand.Reader)
	spk, _ := keys.NewSignedPreKey(rand.Reader, kp.Private, 1)
	pks, _ := keys.NewPreKeys(rand.Reader, 0x10203, 3)
	up := PreKeyUpload("z", 0x0a0b0c0d, kp.Public, pks, spk)
	var tags []string
	for _, c := range up.Children {
		tags = append(tags, c.Tag)
	}
	if strings.Join(tags, ",") != "registration,type,identity,list,skey" {
		t.Fatalf("upload children %v", tags)
	}
	reg, _ := up.Child("registration")
	if !bytes.Equal(reg.Content, []byte{10, 11, 12, 13}) {
		t.Fatalf("registration %x", reg.Content)
	}
	list, _ := up.Child("list")
	if len(list.Children) != len(pks) {
		t.Fatalf("%d keys in the list, want %d", len(list.Children), len(pks))
	}
	for i, k := range list.Children {
		id, _ := k.Child("id")
		v, _ := k.Child("value")
		if k.Tag != "key" || len(k.Children) != 2 || !bytes.Equal(id.Content, keys.PreKeyIDBytes(pks[i].ID)) || !bytes.Equal(v.Content, pks[i].Public.Bytes()) {
			t.Fatalf("key %d: %v", i, k)
		}
	}
}

func TestCodeFlow(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ok := LinkCodeNotification{Stage: "primary_hello", Ref: []byte("ref"), WrappedPrimary: make([]byte, 80), PrimaryIdentity: make([]byte, 32)}
	f := &CodeFlow{Ref: []byte("ref"), Started: t0}
	if !f.Outstanding(t0.Add(PairCodeLifetime)) || f.Outstanding(t0.Add(PairCodeLifetime+time.Second)) {
		t.Fatal("window")
	}
	bad := ok
	bad.Ref = []byte("other")
	if err := f.CheckPrimaryHello(t0, bad); !errors.Is(err, ErrRefMismatch) {
		t.Fatalf("ref: %v", err)
	}
	short := ok
	short.WrappedPrimary = short.WrappedPrimary[:79]
	if err := f.CheckPrimaryHello(t0, short); !errors.Is(err, ErrBadKeyLength) {
		t.Fatalf("length: %v", err)
	}
	for range MaxPrimaryHellos - 1 {
		if err := f.CheckPrimaryHello(t0, ok); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.CheckPrimaryHello(t0, ok); !errors.Is(err, ErrTooManyHellos) {
		t.Fatalf("count: %v", err)
	}
	g := &CodeFlow{Ref: []byte("ref"), Started: t0}
	if err := g.CheckPrimaryHello(t0.Add(PairCodeLifetime+time.Second), ok); !errors.Is(err, ErrCodeExpired) {
		t.Fatalf("age: %v", err)
	}
	g.Finishing = true
	if !g.Outstanding(t0.Add(time.Hour)) {
		t.Fatal("a finishing flow must stay outstanding")
	}
	brief := &CodeFlow{Ref: []byte("ref"), Started: t0, Lifetime: time.Second}
	if err := brief.CheckPrimaryHello(t0.Add(2*time.Second), ok); !errors.Is(err, ErrCodeExpired) || brief.Outstanding(t0.Add(2*time.Second)) {
		t.Fatalf("custom lifetime: %v", err)
	}
	var none *CodeFlow
	if err := none.CheckPrimaryHello(t0, ok); !errors.Is(err, ErrFlowNotWaiting) {
		t.Fatal(err)
	}
}

func TestParseLinkCode(t *testing.T) {
	n := binxml.Node{Tag: "notification", Children: []binxml.Node{{Tag: "link_code_companion_reg",
		Attrs:    []binxml.Attr{binxml.A("stage", "refresh_code"), binxml.A("force_manual_refresh", "true")},
		Children: []binxml.Node{{Tag: "link_code_pairing_ref", Content: []byte("R")}}}}}
	lc, err := ParseLinkCodeNotification(n)
	if err != nil || lc.Stage != "refresh_code" || !lc.ForceManual || string(lc.Ref) != "R" {
		t.Fatalf("%+v %v", lc, err)
	}
	res := binxml.Node{Tag: "iq", Children: []binxml.Node{{Tag: "link_code_companion_reg", Children: []binxml.Node{{Tag: "link_code_pairing_ref", Content: []byte("R")}}}}}
	if string(ParseCompanionHelloResult(res)) != "R" || ParseCompanionHelloResult(binxml.Node{Tag: "iq"}) != nil {
		t.Fatal("hello result")
	}
}

// TestPairSuccessHostileFields: a pair-success whose JIDs carry junk in
// their raw user/server bytes, or whose names are not text, is refused as
// malformed (nothing of it reaches the store or the events), and a huge
// junk field costs bounded time and memory.
func TestPairSuccessHostileFields(t *testing.T) {
	own := jid.NewAD("15551234567", 3, jid.DefaultUserServer)
	lid := jid.NewAD("123456789012345", 3, jid.LIDServer)
	device := func(attrs ...binxml.Attr) binxml.Node {
		return pairSuccessNode(binxml.Node{Tag: "device-identity", Content: []byte{1}}, binxml.Node{Tag: "device", Attrs: attrs},
			binxml.Node{Tag: "platform", Attrs: []binxml.Attr{binxml.A("name", "android")}})
	}
	named := func(tag, name string) binxml.Node {
		return pairSuccessNode(binxml.Node{Tag: "device-identity", Content: []byte{1}},
			binxml.Node{Tag: "device", Attrs: []binxml.Attr{binxml.AJ("jid", own), binxml.AJ("lid", lid)}},
			binxml.Node{Tag: tag, Attrs: []binxml.Attr{binxml.A("name", name)}})
	}
	junk := func(user, server string) jid.JID { return jid.JID{User: user, Device: 3, Server: server} }
	cases := map[string]binxml.Node{
		"jid invalid UTF-8":   device(binxml.AJ("jid", junk("\xff\xfe1555", jid.DefaultUserServer))),
		"jid '@' in user":     device(binxml.AJ("jid", junk("1555@evil.example", jid.DefaultUserServer))),
		"jid ':' in user":     device(binxml.AJ("jid", junk("1555:9", jid.DefaultUserServer))),
		"jid NUL in user":     device(binxml.AJ("jid", junk("15\x0055", jid.DefaultUserServer))),
		"jid newline":         device(binxml.AJ("jid", junk("1555\nINFO forged log line", jid.DefaultUserServer))),
		"jid junk server":     device(binxml.AJ("jid", jid.New("1555", "s.whatsapp.net\x00evil"))),
		"jid 1 MiB user":      device(binxml.AJ("jid", junk(strings.Repeat("1", 1<<20), jid.DefaultUserServer))),
		"lid invalid UTF-8":   device(binxml.AJ("jid", own), binxml.AJ("lid", junk("\xc3\x28", jid.LIDServer))),
		"lid '@' in user":     device(binxml.AJ("jid", own), binxml.AJ("lid", junk("1@lid", jid.LIDServer))),
		"platform not UTF-8":  named("platform", "andr\xffoid"),
		"platform control":    named("platform", "android\x1b[31m"),
		"business not UTF-8":  named("biz", "Shop \xed\xa0\x80"),
		"business newline":    named("biz", "Shop\nlevel=ERROR"),
		"business 1 MiB name": named("biz", strings.Repeat("a", 1<<20)),
	}
	for name, n := range cases {
		// Through the wire: the codec keeps the bytes; the parser refuses.
		frame, err := binxml.Marshal(n)
		if err != nil {
			t.Fatalf("%s: marshal: %v", name, err)
		}
		dec, err := binxml.Unmarshal(frame)
		if err != nil {
			t.Fatalf("%s: unmarshal: %v", name, err)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		ps, err := ParsePairSuccess(dec)
		elapsed := time.Since(start)
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
			t.Errorf("%s: parsing allocated %d bytes", name, alloc)
		}
		if elapsed > time.Second {
			t.Errorf("%s: parsing took %v", name, elapsed)
		}
		for _, j := range []jid.JID{ps.ID, ps.LID} {
			if !j.IsEmpty() && j.Validate() != nil {
				t.Errorf("%s: refused pair-success still carries junk JID %.40q", name, j.User)
			}
		}
		if !utf8.ValidString(ps.Platform+ps.BusinessName) || len(ps.BusinessName) > maxText {
			t.Errorf("%s: refused pair-success still carries the bad name", name)
		}
	}
	// Valid UTF-8 beyond ASCII stays accepted.
	if ps, err := ParsePairSuccess(named("biz", "Büro ☕ GmbH")); err != nil || ps.BusinessName != "Büro ☕ GmbH" {
		t.Errorf("unicode business name: %+v, %v", ps, err)
	}
	// Junk in the success stanza's LID is dropped, not adopted.
	for _, l := range []jid.JID{junk("1@x", jid.LIDServer), jid.New("1", "lid\x00evil"), jid.New("\xff", jid.LIDServer)} {
		frame, err := binxml.Marshal(binxml.Node{Tag: "success", Attrs: []binxml.Attr{binxml.AJ("lid", l)}})
		if err != nil {
			t.Fatal(err)
		}
		dec, err := binxml.Unmarshal(frame)
		if err != nil {
			t.Fatal(err)
		}
		if s := ParseSuccess(dec); !s.LID.IsEmpty() {
			t.Errorf("success adopted junk lid %#v", s.LID)
		}
	}
	// A junk or unparsable "from" is not the server; an absent one is.
	for _, a := range []binxml.Attr{
		binxml.AJ("from", jid.JID{User: "\xff", Server: jid.DefaultUserServer}),
		binxml.A("from", "s.whatsapp.net@@"),
		binxml.AJ("from", jid.New("15551234567", jid.DefaultUserServer)),
	} {
		if IsFromServer(binxml.Node{Tag: "iq", Attrs: []binxml.Attr{a}}) {
			t.Errorf("IsFromServer(from=%q) = true", a.String())
		}
	}
	if !IsFromServer(binxml.Node{Tag: "iq"}) || !IsFromServer(binxml.Node{Tag: "iq", Attrs: []binxml.Attr{binxml.AJ("from", jid.ServerJID)}}) {
		t.Error("IsFromServer refuses the server")
	}
}
