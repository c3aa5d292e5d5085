package jid

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParseValid(t *testing.T) {
	cases := []struct {
		in   string
		want JID
		out  string // canonical String(); "" = same as in
	}{
		{"s.whatsapp.net", ServerJID, ""},
		{"@s.whatsapp.net", ServerJID, "s.whatsapp.net"},
		{"g.us", JID{Server: GroupServer}, ""},
		{"15551234567@s.whatsapp.net", New("15551234567", DefaultUserServer), ""},
		{"15551234567:3@s.whatsapp.net", NewAD("15551234567", 3, DefaultUserServer), ""},
		{"15551234567:0@s.whatsapp.net", New("15551234567", DefaultUserServer), "15551234567@s.whatsapp.net"},
		{"15551234567:65535@s.whatsapp.net", NewAD("15551234567", 65535, DefaultUserServer), ""},
		{"15551234567.2:3@s.whatsapp.net", JID{User: "15551234567", RawAgent: 2, Device: 3, Server: DefaultUserServer}, ""},
		{"15551234567.2@s.whatsapp.net", JID{User: "15551234567", RawAgent: 2, Server: DefaultUserServer}, "15551234567.2:0@s.whatsapp.net"},
		{"123456789012345:42@lid", NewAD("123456789012345", 42, LIDServer), ""},
		{"120363025246125486@g.us", New("120363025246125486", GroupServer), ""},
		{"15551234567-1446993433@g.us", New("15551234567-1446993433", GroupServer), ""},
		{"status@broadcast", New("status", BroadcastServer), ""},
		{"120363144038483540@newsletter", New("120363144038483540", NewsletterServer), ""},
		{"15551234567@c.us", New("15551234567", LegacyUserServer), ""},
		{"15551234567:1@hosted", NewAD("15551234567", 1, HostedServer), ""},
		{"100000000000001:99@hosted.lid", NewAD("100000000000001", 99, HostedLIDServer), ""},
		{"100000000000001:2@msgr", NewAD("100000000000001", 2, MessengerServer), ""},
		{"7-100000000000001:2@interop", JID{User: "100000000000001", Device: 2, Integrator: 7, Server: InteropServer}, ""},
		{"100000000000001@interop", New("100000000000001", InteropServer), ""},
		{"0-1-2@interop", New("1-2", InteropServer), ""},
		{"867051314767696@bot", New("867051314767696", BotServer), ""},
	}
	for _, c := range cases {
		got, err := Parse(c.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.in, err)
			continue
		}
		if got != c.want {
			t.Errorf("Parse(%q) = %#v, want %#v", c.in, got, c.want)
		}
		out := c.out
		if out == "" {
			out = c.in
		}
		if s := got.String(); s != out {
			t.Errorf("Parse(%q).String() = %q, want %q", c.in, s, out)
		}
		if again, err := Parse(got.String()); err != nil || again != got {
			t.Errorf("Parse(String()) of %q = %#v, %v", c.in, again, err)
		}
	}
}

func TestParseInvalid(t *testing.T) {
	bad := []string{
		"",
		"@",
		"user@",
		"a@b@s.whatsapp.net",
		":3@s.whatsapp.net",
		".1:3@s.whatsapp.net",
		"1555:@s.whatsapp.net",
		"1555:x@s.whatsapp.net",
		"1555:-1@s.whatsapp.net",
		"1555:+1@s.whatsapp.net",
		"1555:65536@s.whatsapp.net",
		"1555:000001@s.whatsapp.net",
		"1555:1:2@s.whatsapp.net",
		"1555.@s.whatsapp.net",
		"1555.256:1@s.whatsapp.net",
		"1555.1.2:1@s.whatsapp.net",
		"15 55@s.whatsapp.net",
		"1555@S.WHATSAPP.NET",
		"1555@.whatsapp.net",
		"1555@s.whatsapp.net.",
		"1555@s whatsapp",
		"15\x0055@s.whatsapp.net",
		"1555@s.whatsapp.net\n",
		"\xff\xfe@s.whatsapp.net",
		"héllo@s.whatsapp.net",
		"x-1@interop",
		"70000-1@interop",
		strings.Repeat("1", 600) + "@s.whatsapp.net",
	}
	for _, s := range bad {
		j, err := Parse(s)
		if err == nil {
			t.Errorf("Parse(%q) = %#v, want error", s, j)
			continue
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(%q) error %v does not wrap ErrInvalid", s, err)
		}
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("Parse(%q) error %T is not *ParseError", s, err)
		}
		if !strings.HasPrefix(err.Error(), "jid: ") {
			t.Errorf("error %q lacks package prefix", err)
		}
	}
}

func TestHelpers(t *testing.T) {
	ad := JID{User: "1555", RawAgent: 2, Device: 3, Server: DefaultUserServer}
	if !ad.IsAD() || ad.ToNonAD() != New("1555", DefaultUserServer) {
		t.Errorf("IsAD/ToNonAD wrong for %v", ad)
	}
	if New("1555", DefaultUserServer).IsAD() {
		t.Error("non-AD JID reports IsAD")
	}
	if got := New("1555", DefaultUserServer).ADString(); got != "1555:0@s.whatsapp.net" {
		t.Errorf("ADString = %q", got)
	}
	if got := ad.ADString(); got != "1555.2:3@s.whatsapp.net" {
		t.Errorf("ADString = %q", got)
	}
	if !ServerJID.IsServer() || New("1", "lid").IsServer() || (JID{}).IsServer() {
		t.Error("IsServer wrong")
	}
	if !(JID{}).IsEmpty() || ServerJID.IsEmpty() {
		t.Error("IsEmpty wrong")
	}
	if w := New("1", LIDServer).WithDevice(5); w != NewAD("1", 5, LIDServer) {
		t.Errorf("WithDevice = %v", w)
	}
	if !New("1", HostedLIDServer).IsUserServer() || New("1", GroupServer).IsUserServer() {
		t.Error("IsUserServer wrong")
	}
	if !KnownServer(BotServer) || KnownServer("example.com") {
		t.Error("KnownServer wrong")
	}
	// ToNonAD keeps the integrator: it is part of the account, not the device.
	ij := JID{User: "1", Device: 2, Integrator: 3, Server: InteropServer}
	if ij.ToNonAD() != (JID{User: "1", Integrator: 3, Server: InteropServer}) {
		t.Errorf("ToNonAD(interop) = %#v", ij.ToNonAD())
	}
}

func TestText(t *testing.T) {
	type wrap struct {
		A JID `json:"a"`
		B JID `json:"b"`
	}
	in := wrap{A: NewAD("15551234567", 3, DefaultUserServer)}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"a":"15551234567:3@s.whatsapp.net","b":""}` {
		t.Errorf("json = %s", b)
	}
	var out wrap
	if err := json.Unmarshal(b, &out); err != nil || out != in {
		t.Errorf("json round trip = %#v, %v", out, err)
	}
	if err := json.Unmarshal([]byte(`{"a":"x@y@z"}`), &out); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad json jid: err = %v", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"s.whatsapp.net", "15551234567@s.whatsapp.net", "15551234567:3@s.whatsapp.net",
		"15551234567.2:3@s.whatsapp.net", "123456789012345:42@lid", "7-1:2@interop",
		"status@broadcast", "@s.whatsapp.net", "a@b@c", "1:65536@lid", "\xff@x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		j, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse(%q) error %v does not wrap ErrInvalid", s, err)
			}
			return
		}
		if err := j.Validate(); err != nil {
			t.Fatalf("Parse(%q) = %#v, which Validate refuses: %v", s, j, err)
		}
		out := j.String()
		j2, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(%q) ok = %#v but Parse(String()=%q) failed: %v", s, j, out, err)
		}
		if j2 != j {
			t.Fatalf("unstable: %q -> %#v -> %q -> %#v", s, j, out, j2)
		}
		if j2.String() != out {
			t.Fatalf("String unstable: %q vs %q", out, j2.String())
		}
	})
}

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_, _ = Parse("15551234567.2:3@s.whatsapp.net")
	}
}

func BenchmarkString(b *testing.B) {
	j := NewAD("15551234567", 3, DefaultUserServer)
	b.ReportAllocs()
	for b.Loop() {
		_ = j.String()
	}
}

// TestValidate: JIDs built from raw wire fields are accepted exactly when
// they round-trip through String and Parse.
func TestValidate(t *testing.T) {
	good := []JID{
		ServerJID,
		New("15551234567", DefaultUserServer),
		NewAD("15551234567", 3, DefaultUserServer),
		NewAD("123456789012345", 42, LIDServer),
		{User: "1555", RawAgent: 2, Device: 3, Server: DefaultUserServer},
		{User: "1", Device: 2, Integrator: 7, Server: InteropServer},
		New("status", BroadcastServer),
	}
	for _, j := range good {
		if err := j.Validate(); err != nil {
			t.Errorf("Validate(%#v) = %v", j, err)
		}
	}
	bad := []JID{
		{},
		{User: "1555"}, // no server
		{User: "\xff\xfe", Server: DefaultUserServer},         // invalid UTF-8
		{User: "1555@evil", Server: DefaultUserServer},        // '@' in the user
		{User: "1555:9", Server: DefaultUserServer},           // ':' in the user
		{User: "15\x0055", Server: DefaultUserServer},         // NUL
		{User: "1555", Server: "s.whatsapp.net\n"},            // control character
		{User: "1555", Server: "S.WHATSAPP.NET"},              // upper case
		{User: "héllo", Server: DefaultUserServer},            // non-ASCII
		{Device: 3, Server: DefaultUserServer},                // device without a user
		{User: "1", Integrator: 7, Server: DefaultUserServer}, // integrator outside interop
		{User: strings.Repeat("1", 1<<20), Server: DefaultUserServer},
	}
	for _, j := range bad {
		err := j.Validate()
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("Validate(%.80q) = %v, want ErrInvalid", j.User+"@"+j.Server, err)
		}
		var pe *ParseError
		if err != nil && (!errors.As(err, &pe) || len(pe.Input) > 64) {
			t.Errorf("error %v: not a *ParseError with a bounded input", err)
		}
	}
}
