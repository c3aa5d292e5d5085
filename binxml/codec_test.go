package binxml_test

import (
	"bytes"
	"compress/zlib"
	"errors"
	"math/rand/v2"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/binxml/binxmltest"
	"github.com/walinkdev/walink/jid"
)

func TestJIDForms(t *testing.T) {
	cases := []struct {
		j    jid.JID
		want string // hex of the attribute value
	}{
		{jid.New("15551234567", jid.LIDServer), "faff8615551234567f76"},
		{jid.NewAD("98765", 0, jid.HostedServer), "f78000ff8398765f"},
		{jid.NewAD("98765", 5, jid.HostedLIDServer), "f78105ff8398765f"},
		{jid.JID{User: "98765", RawAgent: 2, Device: 3, Server: jid.DefaultUserServer}, "f70203ff8398765f"},
		{jid.JID{User: "98765", Device: 0x0102, Integrator: 0x0304, Server: jid.InteropServer}, "f5ff8398765f01020304fc07696e7465726f70"},
		{jid.New("status", jid.BroadcastServer), "fa"},
		{jid.New("", jid.GroupServer), "fa00"},
	}
	for _, c := range cases {
		n := binxml.Node{Tag: "x", Attrs: []binxml.Attr{binxml.AJ("jid", c.j)}}
		enc, err := binxml.DictV3.EncodeNode(n)
		if err != nil {
			t.Errorf("%v: %v", c.j, err)
			continue
		}
		if got := hexs(enc); !strings.Contains(got, c.want) {
			t.Errorf("%v: encoded %s, want it to contain %s", c.j, got, c.want)
		}
		dec, err := binxml.DictV3.DecodeNode(enc)
		if err != nil || !reflect.DeepEqual(dec, n) {
			t.Errorf("%v: decoded %#v, %v", c.j, dec, err)
		}
	}
}

func hexs(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

func TestStringEncodings(t *testing.T) {
	cases := []struct {
		s, want string
	}{
		{"", "fc00"},                       // BL/WR form, not whatsmeow's FF 00
		{"98765", "ff8398765f"},            // odd nibble
		{"ABC", "fb82abcf"},                // hex
		{"abc", "fc03616263"},              // lower case is not hex-packable
		{strings.Repeat("1", 127), "ffc0"}, // longest packable
		{strings.Repeat("1", 128), "fc80"}, // too long to pack
	}
	for _, c := range cases {
		enc, err := binxml.DictV3.EncodeNode(binxml.Node{Tag: "iq", Attrs: []binxml.Attr{binxml.A("id", c.s)}})
		if err != nil {
			t.Fatal(err)
		}
		if got := hexs(enc[4:]); !strings.HasPrefix(got, c.want) {
			t.Errorf("%q encoded as %s, want prefix %s", c.s, got, c.want)
		}
		dec, err := binxml.DictV3.DecodeNode(enc)
		if err != nil || dec.Attr("id") != c.s {
			t.Errorf("%q decoded as %q, %v", c.s, dec.Attr("id"), err)
		}
	}
	// Binary length boundaries.
	for _, n := range []int{0, 255, 256, 1<<20 - 1, 1 << 20} {
		node := binxml.Node{Tag: "enc", Content: make([]byte, n)}
		enc, err := binxml.DictV3.EncodeNode(node)
		if err != nil {
			t.Fatal(err)
		}
		wantTag := map[bool]byte{true: 0xfc}[n < 256]
		switch {
		case n >= 1<<20:
			wantTag = 0xfe
		case n >= 256:
			wantTag = 0xfd
		}
		if enc[3] != wantTag {
			t.Errorf("%d bytes: type 0x%02x, want 0x%02x", n, enc[3], wantTag)
		}
		dec, err := binxml.DictV3.DecodeNode(enc)
		if err != nil || len(dec.Content) != n || dec.Content == nil {
			t.Errorf("%d bytes: decoded %d, %v", n, len(dec.Content), err)
		}
	}
}

// TestDecodeNibbleVariants: packed strings decode as the protocol says,
// whatever the padding nibble, and bad digits are refused.
func TestDecodePacked(t *testing.T) {
	ok := map[string]string{
		"f8031908ff00":     "",
		"f8031908ff8112":   "1",  // odd, padding nibble ignored
		"f8031908fb81af":   "A",  // hex 15 before the dropped nibble
		"f8031908fb01ff":   "FF", // hex 15 is 'F'
		"f8031908ff02abab": "-.-.",
	}
	for h, want := range ok {
		n, err := binxml.DictV3.DecodeNode(unhex(t, h))
		if err != nil || n.Attr("id") != want {
			t.Errorf("%s: %q, %v; want %q", h, n.Attr("id"), err, want)
		}
	}
	for _, h := range []string{"f8031908ff01c1", "f8031908ff01f1", "f8031908ff80", "f8031908ff8212"} {
		if _, err := binxml.DictV3.DecodeNode(unhex(t, h)); err == nil {
			t.Errorf("%s decoded", h)
		}
	}
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b := make([]byte, len(s)/2)
	for i := range b {
		v := func(c byte) byte {
			switch {
			case c >= '0' && c <= '9':
				return c - '0'
			case c >= 'a' && c <= 'f':
				return c - 'a' + 10
			}
			t.Fatalf("bad hex %q", s)
			return 0
		}
		b[i] = v(s[2*i])<<4 | v(s[2*i+1])
	}
	return b
}

func TestDecodeErrors(t *testing.T) {
	cases := []struct {
		name string
		hex  string
		want error
	}{
		{"empty", "", binxml.ErrTruncated},
		{"not a list", "19", binxml.ErrMalformed},
		{"size 0", "f800", binxml.ErrMalformed},
		{"list_empty as node", "00", binxml.ErrMalformed},
		{"truncated size", "f9ff", binxml.ErrTruncated},
		{"missing tag", "f801", binxml.ErrTruncated},
		{"empty tag", "f80100", binxml.ErrMalformed},
		{"empty raw tag", "f801fc00", binxml.ErrMalformed},
		{"jid tag", "f801fa0003", binxml.ErrMalformed},
		{"list tag", "f801f801", binxml.ErrMalformed},
		{"unassigned type f0", "f801f0", binxml.ErrUnknownTag},
		{"unassigned type f4", "f80319f404", binxml.ErrUnknownTag},
		{"missing attr value", "f8031904", binxml.ErrTruncated},
		{"empty key", "f80319fc0004", binxml.ErrMalformed},
		{"list as value", "f8031904f801", binxml.ErrMalformed},
		{"jid as key", "f80319fa000304", binxml.ErrMalformed},
		{"jid empty server", "f8031911fa0000", binxml.ErrMalformed},
		{"jid pair jid user", "f8031911fafa000303", binxml.ErrMalformed},
		{"fb jid wrong server", "f8031911f6ff811f000103", binxml.ErrMalformed},
		{"interop jid wrong server", "f8031911f5ff811f0001000103", binxml.ErrMalformed},
		{"ad jid truncated", "f8031911f700", binxml.ErrTruncated},
		{"binary8 short", "f80219fc05aa", binxml.ErrTruncated},
		{"binary20 short", "f80219fd0fffff", binxml.ErrTruncated},
		{"binary32 huge", "f80219feffffffff", binxml.ErrTruncated},
		{"dict index missing", "f801ec", binxml.ErrTruncated},
		{"child list short", "f80219f805f80119", binxml.ErrTruncated},
		{"child not a node", "f80219f801190000", binxml.ErrMalformed},
		{"trailing", "f8011900", binxml.ErrTrailingData},
		{"trailing node", "f80119f80119", binxml.ErrTrailingData},
		{"attrs beyond input", "f9ffff19", binxml.ErrTruncated},
		{"list beyond input", "f80219f9ffff", binxml.ErrTruncated},
	}
	for _, c := range cases {
		_, err := binxml.DictV3.DecodeNode(unhex(t, c.hex))
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
			continue
		}
		var de *binxml.DecodeError
		if !errors.As(err, &de) || !strings.HasPrefix(err.Error(), "binxml: ") {
			t.Errorf("%s: err %T %q", c.name, err, err)
		}
	}
	if _, err := binxml.Unmarshal(nil); !errors.Is(err, binxml.ErrTruncated) {
		t.Errorf("Unmarshal(nil) = %v", err)
	}
	if _, err := binxml.Unmarshal([]byte{2, 1, 2, 3}); !errors.Is(err, binxml.ErrMalformed) {
		t.Errorf("bad zlib = %v", err)
	}
}

func TestDecodeErrorOffset(t *testing.T) {
	_, err := binxml.DictV3.DecodeNode(unhex(t, "f8031904f4"))
	var de *binxml.DecodeError
	if !errors.As(err, &de) || de.Offset != 4 {
		t.Errorf("err = %v", err)
	}
}

func TestDepthLimit(t *testing.T) {
	var b []byte
	for range binxml.MaxDepth + 1 {
		b = append(b, 0xf8, 0x02, 0x19, 0xf8, 0x01)
	}
	b = append(b, 0xf8, 0x01, 0x19)
	if _, err := binxml.DictV3.DecodeNode(b); !errors.Is(err, binxml.ErrLimit) {
		t.Errorf("depth %d: err = %v", binxml.MaxDepth+1, err)
	}
	// MaxDepth itself is fine, both ways.
	n := binxmltest.Nested(binxml.MaxDepth + 1)
	enc, err := binxml.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := binxml.Unmarshal(enc); err != nil {
		t.Fatal(err)
	}
	if _, err := binxml.Marshal(binxmltest.Nested(binxml.MaxDepth + 2)); !errors.Is(err, binxml.ErrLimit) {
		t.Errorf("encode too deep: %v", err)
	}
}

// TestHugeClaimsBoundedMemory: lengths and counts the input cannot hold are
// refused before anything is allocated for them.
func TestHugeClaimsBoundedMemory(t *testing.T) {
	frames := map[string][]byte{
		"list 65535 children": append(unhex(t, "00f80219f9ffff"), make([]byte, 13)...),
		"32767 attributes":    append(unhex(t, "00f9ffff19"), make([]byte, 15)...),
		"binary32 4 GiB":      append(unhex(t, "00f80219feffffffff"), make([]byte, 11)...),
		"binary32 2^31":       append(unhex(t, "00f80219fe80000000"), make([]byte, 11)...),
		"binary32 2^31 - 1":   append(unhex(t, "00f80219fe7fffffff"), make([]byte, 11)...),
		"binary20 1 MiB":      append(unhex(t, "00f80219fd0fffff"), make([]byte, 12)...),
		"attr binary32 4 GiB": append(unhex(t, "00f8031904feffffffff"), make([]byte, 10)...),
		"key binary32 4 GiB":  append(unhex(t, "00f80319feffffffff"), make([]byte, 11)...),
		"tag binary20 1 MiB":  append(unhex(t, "00f801fd0fffff"), make([]byte, 13)...),
		"jid user 4 GiB":      append(unhex(t, "00f8031911fafeffffffff"), make([]byte, 9)...),
	}
	for name, f := range frames {
		if len(f) != 20 {
			t.Fatalf("%s: %d bytes", name, len(f))
		}
		// One measured decode first, so a regression fails fast instead of
		// allocating gigabytes a hundred times.
		var before0, after0 runtime.MemStats
		runtime.ReadMemStats(&before0)
		_, err := binxml.Unmarshal(f)
		runtime.ReadMemStats(&after0)
		if d := after0.TotalAlloc - before0.TotalAlloc; d > 1<<20 {
			t.Fatalf("%s: one decode allocated %d bytes", name, d)
		}
		allocs := testing.AllocsPerRun(100, func() { _, err = binxml.Unmarshal(f) })
		if !errors.Is(err, binxml.ErrTruncated) {
			t.Errorf("%s: err = %v", name, err)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range 100 {
			_, _ = binxml.Unmarshal(f)
		}
		runtime.ReadMemStats(&after)
		perRun := (after.TotalAlloc - before.TotalAlloc) / 100
		t.Logf("%s: %.0f allocs, %d bytes per decode", name, allocs, perRun)
		if allocs > 16 || perRun > 1024 {
			t.Errorf("%s: %.0f allocs, %d bytes per decode: not bounded", name, allocs, perRun)
		}
	}
}

func TestInflateLimit(t *testing.T) {
	// A valid node followed by enough zeros to pass MaxInflated.
	var z bytes.Buffer
	z.WriteByte(2)
	w, _ := zlib.NewWriterLevel(&z, zlib.BestCompression)
	w.Write(unhex(t, "f80119"))
	w.Write(make([]byte, binxml.MaxInflated))
	w.Close()
	if _, err := binxml.Unmarshal(z.Bytes()); !errors.Is(err, binxml.ErrLimit) {
		t.Errorf("bomb of %d bytes: err = %v", z.Len(), err)
	}
	// Just below the limit decodes up to the trailing-data check.
	z.Reset()
	z.WriteByte(2)
	w, _ = zlib.NewWriterLevel(&z, zlib.BestSpeed)
	w.Write(unhex(t, "f80119"))
	w.Write(make([]byte, binxml.MaxInflated-3))
	w.Close()
	if _, err := binxml.Unmarshal(z.Bytes()); !errors.Is(err, binxml.ErrTrailingData) {
		t.Errorf("at the limit: err = %v", err)
	}
}

func TestCompressedRoundTrip(t *testing.T) {
	for _, c := range binxmltest.Corpus() {
		plain, err := binxml.Marshal(c.Node)
		if err != nil {
			t.Fatal(err)
		}
		var z bytes.Buffer
		z.WriteByte(2)
		w := zlib.NewWriter(&z)
		w.Write(plain[1:])
		w.Close()
		got, err := binxml.Unmarshal(z.Bytes())
		if err != nil || !reflect.DeepEqual(got, c.Node) {
			t.Errorf("%s: %v", c.Name, err)
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	bigAttrs := make([]binxml.Attr, 32768)
	for i := range bigAttrs {
		bigAttrs[i] = binxml.A("k", "v")
	}
	cases := []struct {
		name string
		n    binxml.Node
		want error
		path string
	}{
		{"empty tag", binxml.Node{}, binxml.ErrInvalidNode, "<empty>"},
		{"empty key", binxml.Node{Tag: "iq", Attrs: []binxml.Attr{binxml.A("", "x")}}, binxml.ErrInvalidNode, "iq"},
		{"children and content", binxml.Node{Tag: "iq", Children: []binxml.Node{}, Content: []byte{}}, binxml.ErrInvalidNode, "iq"},
		{"pn device > 255", attrJID(jid.NewAD("1", 256, jid.DefaultUserServer)), binxml.ErrInvalidNode, "x"},
		{"hosted device > 255", attrJID(jid.NewAD("1", 300, jid.HostedServer)), binxml.ErrInvalidNode, "x"},
		{"agent on lid", attrJID(jid.JID{User: "1", RawAgent: 2, Server: jid.LIDServer}), binxml.ErrInvalidNode, "x"},
		{"agent 1", attrJID(jid.JID{User: "1", RawAgent: 1, Server: jid.DefaultUserServer}), binxml.ErrInvalidNode, "x"},
		{"agent 128", attrJID(jid.JID{User: "1", RawAgent: 128, Server: jid.DefaultUserServer}), binxml.ErrInvalidNode, "x"},
		{"integrator on pn", attrJID(jid.JID{User: "1", Integrator: 2, Server: jid.DefaultUserServer}), binxml.ErrInvalidNode, "x"},
		{"device on group", attrJID(jid.NewAD("1", 2, jid.GroupServer)), binxml.ErrInvalidNode, "x"},
		{"too many attrs", binxml.Node{Tag: "x", Attrs: bigAttrs}, binxml.ErrLimit, "x"},
		{"too many children", binxml.Node{Tag: "x", Children: make([]binxml.Node, 65536)}, binxml.ErrLimit, "x"},
		{"bad grandchild", binxml.Node{Tag: "iq", Children: []binxml.Node{
			{Tag: "a"}, {Tag: "b", Children: []binxml.Node{{Tag: "c"}, {Tag: "d"}, {}}},
		}}, binxml.ErrInvalidNode, "iq/b[1]/[2]"},
	}
	for _, c := range cases {
		dst := []byte("keep")
		out, err := binxml.DictV3.AppendMarshal(dst, c.n)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
			continue
		}
		var ee *binxml.EncodeError
		if !errors.As(err, &ee) || ee.Path != c.path {
			t.Errorf("%s: err %v, path %q want %q", c.name, err, ee.Path, c.path)
		}
		if string(out) != "keep" {
			t.Errorf("%s: dst = %q", c.name, out)
		}
		if !strings.HasPrefix(err.Error(), "binxml: ") {
			t.Errorf("%s: message %q", c.name, err)
		}
	}
}

func attrJID(j jid.JID) binxml.Node {
	return binxml.Node{Tag: "x", Attrs: []binxml.Attr{binxml.AJ("jid", j)}}
}

func TestCorpusRoundTrip(t *testing.T) {
	for _, d := range []*binxml.Dictionary{binxml.DictV3, binxml.DictV2} {
		for _, c := range binxmltest.Corpus() {
			enc, err := d.Marshal(c.Node)
			if err != nil {
				t.Fatalf("v%d %s: %v", d.Version, c.Name, err)
			}
			dec, err := d.Unmarshal(enc)
			if err != nil {
				t.Fatalf("v%d %s: %v", d.Version, c.Name, err)
			}
			if !reflect.DeepEqual(dec, c.Node) {
				t.Errorf("v%d %s: round trip differs:\n%s\n%s", d.Version, c.Name, dec, c.Node)
			}
		}
	}
}

// TestContentAliasing documents that Content aliases the frame, capped so
// that appending to it cannot overwrite the frame.
func TestContentAliasing(t *testing.T) {
	frame, _ := binxml.Marshal(binxml.Node{Tag: "enc", Content: []byte{1, 2, 3}, Attrs: []binxml.Attr{binxml.A("k", "raw value")}})
	frame = append(frame, 0xEE)[:len(frame)] // spare capacity after the frame
	n, err := binxml.Unmarshal(frame)
	if err != nil {
		t.Fatal(err)
	}
	frame[len(frame)-1] = 9
	if n.Content[2] != 9 {
		t.Error("content does not alias the frame")
	}
	_ = append(n.Content, 7)
	if frame[:cap(frame)][len(frame)] != 0xEE {
		t.Error("append to content overwrote the frame's spare capacity")
	}
	for i := range frame {
		frame[i] = 0
	}
	if n.Attr("k") != "raw value" || n.Tag != "enc" {
		t.Error("strings alias the frame")
	}
}

// randNode builds a random node that the encoder accepts.
func randNode(r *rand.Rand, depth int) binxml.Node {
	n := binxml.Node{Tag: randString(r)}
	for n.Tag == "" {
		n.Tag = randString(r)
	}
	for range r.IntN(5) {
		k := randString(r)
		if k == "" {
			k = "k"
		}
		if r.IntN(3) == 0 {
			n.Attrs = append(n.Attrs, binxml.AJ(k, randJID(r)))
		} else {
			n.Attrs = append(n.Attrs, binxml.A(k, randString(r)))
		}
	}
	switch r.IntN(4) {
	case 0:
		if depth < 6 {
			n.Children = make([]binxml.Node, r.IntN(4))
			for i := range n.Children {
				n.Children[i] = randNode(r, depth+1)
			}
		}
	case 1:
		n.Content = make([]byte, []int{0, 1, 40, 255, 256, 700}[r.IntN(6)])
		for i := range n.Content {
			n.Content[i] = byte(r.Uint32())
		}
	}
	return n
}

var sampleTokens = []string{"iq", "type", "s.whatsapp.net", "passive", "active", "xmlns", "md", "pair-device", "ref", "0", "1"}

func randString(r *rand.Rand) string {
	switch r.IntN(7) {
	case 0:
		return sampleTokens[r.IntN(len(sampleTokens))]
	case 1:
		return ""
	case 2: // nibble
		return randFrom(r, "0123456789-.", r.IntN(140))
	case 3: // hex
		return randFrom(r, "0123456789ABCDEF", r.IntN(140))
	case 4: // arbitrary bytes, invalid UTF-8 included
		b := make([]byte, r.IntN(300))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return string(b)
	default:
		return randFrom(r, "abcdefghijklmnopqrstuvwxyz-_.:@", 1+r.IntN(20))
	}
}

func randFrom(r *rand.Rand, alphabet string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

func randJID(r *rand.Rand) jid.JID {
	user := randFrom(r, "0123456789", r.IntN(16))
	if r.IntN(8) == 0 {
		user = randString(r)
	}
	servers := []string{jid.DefaultUserServer, jid.LIDServer, jid.GroupServer, jid.BroadcastServer,
		jid.HostedServer, jid.HostedLIDServer, jid.MessengerServer, jid.InteropServer, jid.BotServer, "custom.example"}
	j := jid.JID{User: user, Server: servers[r.IntN(len(servers))]}
	switch j.Server {
	case jid.DefaultUserServer:
		if r.IntN(4) == 0 {
			j.RawAgent = []uint8{2, 3, 127, 200, 255}[r.IntN(5)]
		}
		fallthrough
	case jid.LIDServer, jid.HostedServer, jid.HostedLIDServer:
		j.Device = uint16(r.IntN(256))
	case jid.MessengerServer:
		j.Device = uint16(r.Uint32())
	case jid.InteropServer:
		j.Device, j.Integrator = uint16(r.Uint32()), uint16(r.Uint32())
	}
	return j
}

func TestRandomRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		n := randNode(r, 0)
		d := []*binxml.Dictionary{binxml.DictV3, binxml.DictV2}[i%2]
		enc, err := d.Marshal(n)
		if err != nil {
			t.Fatalf("#%d: Marshal(%s): %v", i, n, err)
		}
		dec, err := d.Unmarshal(enc)
		if err != nil {
			t.Fatalf("#%d: Unmarshal(%x): %v", i, enc, err)
		}
		if !reflect.DeepEqual(dec, n) {
			t.Fatalf("#%d: round trip differs:\n got %#v\nwant %#v", i, dec, n)
		}
		again, err := d.Marshal(dec)
		if err != nil || !bytes.Equal(again, enc) {
			t.Fatalf("#%d: re-encode differs", i)
		}
	}
}

// TestAttrHelpers exercises the accessors on decoded nodes.
func TestAttrHelpers(t *testing.T) {
	n, err := binxml.Unmarshal(must(binxml.Marshal(binxmltest.PairSuccess())))
	if err != nil {
		t.Fatal(err)
	}
	ps, ok := n.Child("pair-success")
	if !ok {
		t.Fatal("no pair-success")
	}
	dev, _ := ps.Child("device")
	if j, ok := dev.AttrJID("lid"); !ok || j != jid.NewAD("123456789012345", 3, jid.LIDServer) {
		t.Errorf("lid = %v", j)
	}
	if dev.Attr("jid") != "15551234567:3@s.whatsapp.net" {
		t.Errorf("jid = %q", dev.Attr("jid"))
	}
	if _, ok := n.AttrOK("nope"); ok {
		t.Error("AttrOK found a missing key")
	}
	if got := len(ps.ChildrenByTag("device")); got != 1 || !ps.HasContent() || dev.HasContent() {
		t.Errorf("ChildrenByTag/HasContent wrong")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestNestedJIDTags: a JID whose user is a JID tag is refused at once,
// without recursing once per byte (1 MiB of 0xFA would otherwise need a
// very deep stack).
func TestNestedJIDTags(t *testing.T) {
	frame := append(unhex(t, "00f8031911"), bytes.Repeat([]byte{0xfa}, 1<<20)...)
	if _, err := binxml.Unmarshal(frame); !errors.Is(err, binxml.ErrMalformed) {
		t.Errorf("err = %v", err)
	}
	frame = append(unhex(t, "00f8031911"), bytes.Repeat([]byte{0xf7, 0, 0}, 1<<18)...)
	if _, err := binxml.Unmarshal(frame); !errors.Is(err, binxml.ErrMalformed) {
		t.Errorf("err = %v", err)
	}
}

func TestNodeAndAttrBudget(t *testing.T) {
	// 5 lists of 65535 empty <iq/> children: 327675 nodes > MaxNodes.
	list := append([]byte{0xf8, 0x02, 0x19, 0xf9, 0xff, 0xff}, bytes.Repeat([]byte{0xf8, 0x01, 0x19}, 0xffff)...)
	frame := append([]byte{0x00, 0xf8, 0x02, 0x19, 0xf8, 0x05}, bytes.Repeat(list, 5)...)
	if _, err := binxml.Unmarshal(frame); !errors.Is(err, binxml.ErrLimit) {
		t.Errorf("nodes: err = %v", err)
	}
	// 4 of them fit.
	frame = append([]byte{0x00, 0xf8, 0x02, 0x19, 0xf8, 0x04}, bytes.Repeat(list, 4)...)
	if _, err := binxml.Unmarshal(frame); err != nil {
		t.Errorf("262144 nodes: %v", err)
	}
	// 9 nodes with 32767 attributes each: 294903 > MaxAttrs.
	attrs := append([]byte{0xf9, 0xff, 0xff, 0x19}, bytes.Repeat([]byte{0x04, 0x29}, 0x7fff)...)
	frame = append([]byte{0x00, 0xf8, 0x02, 0x19, 0xf8, 0x09}, bytes.Repeat(attrs, 9)...)
	if _, err := binxml.Unmarshal(frame); !errors.Is(err, binxml.ErrLimit) {
		t.Errorf("attrs: err = %v", err)
	}
}

// TestHostileAttributes: the codec is byte-faithful, so invalid UTF-8 and
// control characters in tags, keys and values decode as the bytes they are
// (whatsmeow does the same), in time and memory linear in the input; the
// XML-ish form escapes them to one line of valid UTF-8, and AttrJID refuses
// JIDs whose raw user or server bytes hold junk, so none of it is taken for
// an address.
func TestHostileAttributes(t *testing.T) {
	junkJID := func(user, server string) binxml.Attr { return binxml.AJ("jid", jid.JID{User: user, Server: server}) }
	n := binxml.Node{Tag: "iq\xff", Attrs: []binxml.Attr{
		binxml.A("id", "\xff\xfe\x00\n<x>"),
		binxml.A("k\xc3\x28", "v"),
		binxml.A("name", "\xed\xa0\x80 surrogate"),
		junkJID("1555@evil:3", jid.DefaultUserServer),
		binxml.AJ("lid", jid.JID{User: "\xff", Device: 1, Server: jid.LIDServer}),
		binxml.AJ("from", jid.JID{User: "1\n2", Server: "s.whatsapp.net\x00x"}),
	}}
	frame, err := binxml.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := binxml.Unmarshal(frame)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(dec, n) {
		t.Fatalf("not byte-faithful:\n got %#v\nwant %#v", dec, n)
	}
	s := dec.String()
	if !utf8.ValidString(s) || strings.ContainsAny(s, "\n\x00") {
		t.Errorf("String() is not one line of valid UTF-8: %q", s)
	}
	for _, key := range []string{"jid", "lid", "from"} {
		if j, ok := dec.AttrJID(key); ok {
			t.Errorf("AttrJID(%q) accepted junk %#v", key, j)
		}
	}
	if j, ok := (binxml.Node{Tag: "x", Attrs: []binxml.Attr{binxml.AJ("jid", jid.NewAD("1555", 3, jid.DefaultUserServer))}}).AttrJID("jid"); !ok || j.User != "1555" {
		t.Errorf("AttrJID refused a valid JID: %#v %v", j, ok)
	}

	// 1 MiB of invalid UTF-8 in one value: linear cost, no blow-up.
	big := binxml.Node{Tag: "iq", Attrs: []binxml.Attr{binxml.A("v", strings.Repeat("\xff\x00", 1<<19))}}
	frame, err = binxml.Marshal(big)
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	dec, err = binxml.Unmarshal(frame)
	runtime.ReadMemStats(&after)
	if err != nil || dec.Attr("v") != big.Attrs[0].Value {
		t.Fatalf("1 MiB value: %v", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 3*uint64(len(frame)) {
		t.Errorf("decoding %d bytes allocated %d", len(frame), alloc)
	}
	if s := dec.String(); !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
		t.Error("String() of the 1 MiB value is not clean")
	}
}

// TestMarshalOwnsItsBuffer: Marshal encodes through a reused scratch
// buffer, so each result must be a copy of its own, equal to
// AppendMarshal's, and unchanged by later and concurrent calls.
func TestMarshalOwnsItsBuffer(t *testing.T) {
	nodes := []binxml.Node{
		{Tag: "iq", Attrs: []binxml.Attr{binxml.A("id", "1"), binxml.A("type", "get")}},
		{Tag: "message", Content: bytes.Repeat([]byte{0xab}, 3000)},
		{Tag: "iq", Children: []binxml.Node{{Tag: "list", Content: bytes.Repeat([]byte{1}, 40<<10)}}}, // past the kept scratch size
	}
	var got [][]byte
	for round := range 3 {
		for i, n := range nodes {
			b, err := binxml.Marshal(n)
			if err != nil {
				t.Fatal(err)
			}
			want, err := binxml.DictV3.AppendMarshal(nil, n)
			if err != nil || !bytes.Equal(b, want) {
				t.Fatalf("round %d node %d: Marshal differs from AppendMarshal (%v)", round, i, err)
			}
			got = append(got, b)
		}
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				for _, n := range nodes {
					if _, err := binxml.Marshal(n); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	for k, b := range got {
		want, _ := binxml.DictV3.AppendMarshal(nil, nodes[k%len(nodes)])
		if !bytes.Equal(b, want) {
			t.Fatalf("result %d changed after later calls", k)
		}
	}
}
