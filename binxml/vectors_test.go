package binxml_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/internal/vectors"
	"github.com/walinkdev/walink/jid"
)

// vectorNodes are the nodes behind vectors.json binary_node.encode, built
// by hand from each vector's xml so the test does not trust our decoder.
var vectorNodes = map[string]binxml.Node{
	"single_token_tag_and_attr": {Tag: "iq", Attrs: []binxml.Attr{binxml.A("type", "get")}},
	"double_byte_token":         {Tag: "active", Attrs: []binxml.Attr{binxml.A("xmlns", "passive")}},
	"server_jid":                {Tag: "iq", Attrs: []binxml.Attr{binxml.AJ("to", jid.ServerJID)}},
	"user_jid":                  {Tag: "user", Attrs: []binxml.Attr{binxml.AJ("jid", jid.New("15551234567", jid.DefaultUserServer))}},
	"ad_jid_pn":                 {Tag: "device", Attrs: []binxml.Attr{binxml.AJ("jid", jid.NewAD("15551234567", 3, jid.DefaultUserServer))}},
	"ad_jid_lid":                {Tag: "device", Attrs: []binxml.Attr{binxml.AJ("lid", jid.NewAD("123456789012345", 7, jid.LIDServer))}},
	"fb_jid":                    {Tag: "to", Attrs: []binxml.Attr{binxml.AJ("jid", jid.NewAD("100000000000001", 2, jid.MessengerServer))}},
	"nibble_even":               {Tag: "iq", Attrs: []binxml.Attr{binxml.A("id", "123.45-1")}},
	"nibble_odd":                {Tag: "iq", Attrs: []binxml.Attr{binxml.A("id", "123.45-10")}},
	"hex_even":                  {Tag: "message", Attrs: []binxml.Attr{binxml.A("id", "3EB0A1B2C3D4")}},
	"hex_odd":                   {Tag: "message", Attrs: []binxml.Attr{binxml.A("id", "3EB0A")}},
	"raw_string":                {Tag: "biz", Attrs: []binxml.Attr{binxml.A("name", "hello world")}},
	"binary8_content":           {Tag: "ref", Content: []byte("2@AbCdEf123")},
	"binary20_content":          {Tag: "enc", Content: bytes.Repeat([]byte{0xab}, 300)},
	"nested_list": {Tag: "pair-device-sign", Children: []binxml.Node{
		{Tag: "device-identity", Attrs: []binxml.Attr{binxml.A("key-index", "3")}, Content: []byte{0x0a, 0x02, 0x08, 0x01}},
	}},
	"empty_child_list_and_no_attrs": {Tag: "iq", Children: []binxml.Node{{Tag: "ping"}}},
}

func encodeVectors(t *testing.T) []map[string]any {
	t.Helper()
	v := vectors.Load(t)
	raw := vectors.Get(t, v, "binary_node", "encode").([]any)
	out := make([]map[string]any, len(raw))
	for i, r := range raw {
		out[i] = r.(map[string]any)
	}
	return out
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEncodeVectors(t *testing.T) {
	vs := encodeVectors(t)
	if len(vs) != len(vectorNodes) {
		t.Errorf("%d vectors, %d nodes in the test", len(vs), len(vectorNodes))
	}
	for _, v := range vs {
		name := v["name"].(string)
		t.Run(name, func(t *testing.T) {
			n, ok := vectorNodes[name]
			if !ok {
				t.Fatalf("no node for vector %q", name)
			}
			want := mustHex(t, v["hex_with_flag_byte"].(string))
			got, err := binxml.Marshal(n)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Marshal:\n got %x\nwant %x", got, want)
			}
			dec, err := binxml.Unmarshal(want)
			if err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			if !reflect.DeepEqual(dec, n) {
				t.Errorf("Unmarshal:\n got %#v\nwant %#v", dec, n)
			}
			if s := dec.String(); s != v["decoded_back_by_whatsmeow"].(string) {
				t.Errorf("String() = %s, want %s", s, v["decoded_back_by_whatsmeow"])
			}
			// The no-flags entry points agree with the frame ones.
			node, err := binxml.DictV3.EncodeNode(n)
			if err != nil || !bytes.Equal(node, want[1:]) {
				t.Errorf("EncodeNode = %x, %v", node, err)
			}
			if dn, err := binxml.DictV3.DecodeNode(want[1:]); err != nil || !reflect.DeepEqual(dn, n) {
				t.Errorf("DecodeNode = %v, %v", dn, err)
			}
			// Appending keeps what dst held.
			app, err := binxml.DictV3.AppendMarshal([]byte("xy"), n)
			if err != nil || !bytes.Equal(app, append([]byte("xy"), want...)) {
				t.Errorf("AppendMarshal = %x, %v", app, err)
			}
		})
	}
}

// TestBaileysFBJID: Baileys turns msgr JIDs into AD_JID; we must read that
// form too (cross_checks records its bytes).
func TestBaileysFBJID(t *testing.T) {
	v := vectors.Load(t)
	h := vectors.Str(t, v, "cross_checks", "binary_nodes_baileys_7_0_0_rc14", "fb_jid", "baileys_reencode")
	n, err := binxml.Unmarshal(mustHex(t, h))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := n.AttrJID("jid")
	// AD_JID has no msgr domain, so the server comes back as s.whatsapp.net.
	if want := jid.NewAD("100000000000001", 2, jid.DefaultUserServer); got != want {
		t.Errorf("jid = %#v, want %#v", got, want)
	}
}

func TestDecodeCompressed(t *testing.T) {
	v := vectors.Load(t)
	frame := mustHex(t, vectors.Str(t, v, "binary_node", "decode_compressed", "hex"))
	n, err := binxml.Unmarshal(frame)
	if err != nil {
		t.Fatal(err)
	}
	want := binxml.Node{Tag: "ib", Children: []binxml.Node{{Tag: "offline", Attrs: []binxml.Attr{binxml.A("count", "0")}}}}
	if !reflect.DeepEqual(n, want) {
		t.Errorf("got %#v", n)
	}
	if s := n.String(); s != vectors.Str(t, v, "binary_node", "decode_compressed", "decoded_xml") {
		t.Errorf("String() = %s", s)
	}
}

func TestDecodeRealSuccess(t *testing.T) {
	v := vectors.Load(t)
	data := mustHex(t, vectors.Str(t, v, "binary_node", "decode_real_success_node", "hex_no_flag"))
	n, err := binxml.DictV3.DecodeNode(data)
	if err != nil {
		t.Fatal(err)
	}
	if n.Tag != "success" {
		t.Errorf("tag %q", n.Tag)
	}
	// "lid=100000000000001:42@lid (types.JID)" / "props=27 (string)".
	for _, line := range vectors.Get(t, v, "binary_node", "decode_real_success_node", "decoded_attrs").([]any) {
		s := line.(string)
		kv, typ, _ := strings.Cut(s, " (")
		key, val, _ := strings.Cut(kv, "=")
		a := attrByKey(n, key)
		if a == nil {
			t.Errorf("missing %s", key)
			continue
		}
		if a.String() != val || a.IsJID() != strings.HasPrefix(typ, "types.JID") {
			t.Errorf("%s = %q (jid %v), want %s", key, a.String(), a.IsJID(), s)
		}
	}
	if j, _ := n.AttrJID("lid"); j != jid.NewAD("100000000000001", 42, jid.LIDServer) {
		t.Errorf("lid = %#v", j)
	}
	// whatsmeow prints attributes sorted; we keep wire order.
	sorted := n
	sorted.Attrs = slices.Clone(n.Attrs)
	slices.SortFunc(sorted.Attrs, func(a, b binxml.Attr) int { return strings.Compare(a.Key, b.Key) })
	if s := sorted.String(); s != vectors.Str(t, v, "binary_node", "decode_real_success_node", "decoded_xml") {
		t.Errorf("String() = %s", s)
	}
	// Re-encoding reproduces the captured bytes exactly.
	enc, err := binxml.DictV3.EncodeNode(n)
	if err != nil || !bytes.Equal(enc, data) {
		t.Errorf("re-encode:\n got %x\nwant %x (%v)", enc, data, err)
	}
}

func attrByKey(n binxml.Node, key string) *binxml.Attr {
	for i := range n.Attrs {
		if n.Attrs[i].Key == key {
			return &n.Attrs[i]
		}
	}
	return nil
}

// TestServerAsToken: Baileys writes to="s.whatsapp.net" as the bare token
// 0x03, whatsmeow as JID_PAIR FA 00 03; both must decode.
func TestServerAsToken(t *testing.T) {
	for _, h := range []string{"00f803191103", "00f8031911fa0003"} {
		n, err := binxml.Unmarshal(mustHex(t, h))
		if err != nil {
			t.Fatalf("%s: %v", h, err)
		}
		if n.Attr("to") != "s.whatsapp.net" {
			t.Errorf("%s: to = %q", h, n.Attr("to"))
		}
		if j, ok := n.AttrJID("to"); !ok || j != jid.ServerJID {
			t.Errorf("%s: AttrJID = %#v, %v", h, j, ok)
		}
	}
}

func TestDictionaryFor(t *testing.T) {
	for _, v := range []byte{2, 3} {
		d, err := binxml.DictionaryFor(v)
		if err != nil || d.Version != v {
			t.Errorf("DictionaryFor(%d) = %v, %v", v, d, err)
		}
	}
	for _, v := range []byte{0, 1, 4, 6, 255} {
		if _, err := binxml.DictionaryFor(v); !errors.Is(err, binxml.ErrUnknownDictionary) {
			t.Errorf("DictionaryFor(%d) err = %v", v, err)
		}
	}
	// A bare Dictionary literal behaves like the built-in one.
	a, err1 := (&binxml.Dictionary{Version: 3}).Marshal(vectorNodes["double_byte_token"])
	b, err2 := binxml.Marshal(vectorNodes["double_byte_token"])
	if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
		t.Errorf("literal dictionary: %x %v / %x %v", a, err1, b, err2)
	}
	if _, err := (&binxml.Dictionary{Version: 9}).Marshal(vectorNodes["server_jid"]); !errors.Is(err, binxml.ErrUnknownDictionary) {
		t.Errorf("unknown literal: %v", err)
	}
}

// TestDictV2 checks the version 2 tables: different codes for the same
// strings, and round trips.
func TestDictV2(t *testing.T) {
	tables := vectors.LoadFile(t, "tokens-v2.json")
	single := tables["single_byte"].([]any)
	for i := 1; i < len(single); i++ {
		s := single[i].(string)
		_, b, double, ok := binxml.DictV2.Lookup(s)
		if !ok || double || int(b) != i {
			t.Fatalf("v2 Lookup(%q) = %d %v %v, want %d", s, b, double, ok, i)
		}
		enc, err := binxml.DictV2.EncodeNode(binxml.Node{Tag: s})
		if err != nil || !bytes.Equal(enc, []byte{0xf8, 1, byte(i)}) {
			t.Fatalf("v2 encode %q = %x, %v", s, enc, err)
		}
	}
	doubles := tables["double_byte"].([]any)
	for n, d := range doubles {
		for i, s := range d.([]any) {
			enc, err := binxml.DictV2.EncodeNode(binxml.Node{Tag: s.(string)})
			if err != nil || !bytes.Equal(enc, []byte{0xf8, 1, 0xec + byte(n), byte(i)}) {
				t.Fatalf("v2 encode %q = %x, %v", s, enc, err)
			}
			dec, err := binxml.DictV2.DecodeNode(enc)
			if err != nil || dec.Tag != s.(string) {
				t.Fatalf("v2 decode %x = %v, %v", enc, dec, err)
			}
		}
	}
	// "iq" is 0x19 in v3 and 0x1e in v2.
	n := binxml.Node{Tag: "iq", Attrs: []binxml.Attr{binxml.A("type", "get")}}
	v2, _ := binxml.DictV2.Marshal(n)
	v3, _ := binxml.DictV3.Marshal(n)
	if bytes.Equal(v2, v3) {
		t.Errorf("v2 and v3 encodings agree: %x", v2)
	}
	if got, err := binxml.DictV2.Unmarshal(v2); err != nil || !reflect.DeepEqual(got, n) {
		t.Errorf("v2 round trip = %v, %v", got, err)
	}
}

func TestDictV3Tables(t *testing.T) {
	tables := vectors.LoadFile(t, "tokens.json")
	for i, s := range tables["single_byte"].([]any) {
		got, ok := binxml.DictV3.Token(byte(i))
		if i == 0 {
			if ok {
				t.Error("token 0 exists")
			}
			continue
		}
		if !ok || got != s.(string) {
			t.Fatalf("Token(%d) = %q, want %q", i, got, s)
		}
	}
	for n, d := range tables["double_byte"].([]any) {
		for i, s := range d.([]any) {
			got, ok := binxml.DictV3.DoubleToken(byte(n), byte(i))
			if !ok || got != s.(string) {
				t.Fatalf("DoubleToken(%d, %d) = %q, want %q", n, i, got, s)
			}
			dn, di, double, ok := binxml.DictV3.Lookup(s.(string))
			if !ok || !double || int(dn) != n || int(di) != i {
				t.Fatalf("Lookup(%q) = %d %d %v %v", s, dn, di, double, ok)
			}
		}
	}
}

// baileysForm renders a decoded node the way vectors.json records Baileys'
// decoding: {"tag", "attrs", "content": "hex:…" | [children]}.
func baileysForm(n binxml.Node) map[string]any {
	attrs := map[string]any{}
	for _, a := range n.Attrs {
		attrs[a.Key] = a.String()
	}
	m := map[string]any{"tag": n.Tag, "attrs": attrs}
	switch {
	case n.Children != nil:
		kids := make([]any, len(n.Children))
		for i, c := range n.Children {
			kids[i] = baileysForm(c)
		}
		m["content"] = kids
	case n.Content != nil:
		m["content"] = "hex:" + hex.EncodeToString(n.Content)
	}
	return m
}

// TestBaileysCrossChecks: every binary node vector decodes to what Baileys
// 7.0.0-rc14 decoded from the same bytes (cross_checks), and Baileys'
// re-encoding is byte-identical to the vector wherever it says so.
func TestBaileysCrossChecks(t *testing.T) {
	v := vectors.Load(t)
	cc := vectors.Get(t, v, "cross_checks", "binary_nodes_baileys_7_0_0_rc14").(map[string]any)
	vs := encodeVectors(t)
	seen := 0
	for _, e := range vs {
		name := e["name"].(string)
		t.Run(name, func(t *testing.T) {
			c, ok := cc[name].(map[string]any)
			if !ok {
				t.Fatalf("no Baileys cross-check for %q", name)
			}
			seen++
			var want any
			if err := json.Unmarshal([]byte(c["baileys_decoded"].(string)), &want); err != nil {
				t.Fatal(err)
			}
			n, err := binxml.Unmarshal(mustHex(t, e["hex_with_flag_byte"].(string)))
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := json.Marshal(baileysForm(n)); !sameAsBaileys(jsonRoundTrip(t, b), want) {
				t.Errorf("decoded %s\nBaileys %s", b, c["baileys_decoded"])
			}
			if c["baileys_reencode_identical"] != true && name != "fb_jid" {
				t.Errorf("Baileys does not re-encode %q identically; only fb_jid is expected to differ", name)
			}
		})
	}
	if seen != len(vs) {
		t.Errorf("%d of %d vectors cross-checked", seen, len(vs))
	}
	// The compressed frame, too.
	var want any
	if err := json.Unmarshal([]byte(cc["decode_compressed"].(string)), &want); err != nil {
		t.Fatal(err)
	}
	n, err := binxml.Unmarshal(mustHex(t, vectors.Str(t, v, "binary_node", "decode_compressed", "hex")))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(baileysForm(n)); !sameAsBaileys(jsonRoundTrip(t, b), want) {
		t.Errorf("compressed: decoded %s, Baileys %s", b, cc["decode_compressed"])
	}
}

func jsonRoundTrip(t *testing.T, b []byte) any {
	t.Helper()
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// sameAsBaileys compares our rendering with Baileys' record, allowing for
// two differences of presentation only: Baileys writes a bare server JID as
// "@s.whatsapp.net" (both parse to the same JID), and the record keeps the
// first 20 bytes of longer content (binary20_content has 300).
func sameAsBaileys(got, want any) bool {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				return false
			}
			if k == "attrs" {
				ga, gok := gv.(map[string]any)
				wa, wok := wv.(map[string]any)
				if !gok || !wok || len(ga) != len(wa) {
					return false
				}
				for ak, av := range wa {
					gs, _ := ga[ak].(string)
					ws, _ := av.(string)
					if gs == ws {
						continue
					}
					gj, err1 := jid.Parse(gs)
					wj, err2 := jid.Parse(ws)
					if err1 != nil || err2 != nil || gj != wj {
						return false
					}
				}
				continue
			}
			if !sameAsBaileys(gv, wv) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !sameAsBaileys(g[i], w[i]) {
				return false
			}
		}
		return true
	case string:
		g, ok := got.(string)
		if !ok {
			return false
		}
		const recorded = len("hex:") + 2*20
		if strings.HasPrefix(w, "hex:") && len(w) == recorded && len(g) > recorded {
			return strings.HasPrefix(g, w)
		}
		return g == w
	default:
		return reflect.DeepEqual(got, want)
	}
}
