package noise

import (
	"bytes"
	"crypto/rand"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/waproto"
)

// FuzzHandshakeMessage: handshakeMessage.parse accepts what proto.Unmarshal
// into a waproto.HandshakeMessage accepts and reads the same parts and
// fields, present-but-empty and absent told apart.
func FuzzHandshakeMessage(f *testing.F) {
	for _, m := range realMessages(f) {
		f.Add(m)
	}
	tag := func(b []byte, num protowire.Number, typ protowire.Type) []byte {
		return protowire.AppendTag(b, num, typ)
	}
	bytesField := func(b []byte, num protowire.Number, v []byte) []byte {
		return protowire.AppendBytes(tag(b, num, protowire.BytesType), v)
	}
	hello := bytesField(bytesField(nil, 1, make([]byte, 32)), 2, nil)
	for _, seed := range [][]byte{
		nil,
		{0},
		bytesField(nil, 2, nil),
		bytesField(nil, 2, hello),
		bytesField(bytesField(nil, 2, hello), 2, bytesField(nil, 3, []byte{1})), // merged
		bytesField(bytesField(nil, 3, hello), 4, []byte{0xff}),                  // another part malformed
		protowire.AppendVarint(tag(nil, 2, protowire.VarintType), 5),            // a part of the wrong type
		bytesField(nil, 2, protowire.AppendVarint(tag(nil, 4, protowire.VarintType), 1)),
		bytesField(nil, 2, protowire.AppendVarint(tag(nil, 1, protowire.VarintType), 1)),
		tag(tag(nil, 9, protowire.StartGroupType), 9, protowire.EndGroupType),
		tag(nil, 9, protowire.EndGroupType),
		tag(nil, protowire.MaxValidNumber+1, protowire.VarintType),
		protowire.AppendFixed32(tag(nil, 1<<29-1, protowire.Fixed32Type), 0),
		{0x12, 0x80},
		{0x16},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var want waproto.HandshakeMessage
		werr := proto.Unmarshal(b, &want)
		var got handshakeMessage
		gerr := got.parse(b)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("%x: proto.Unmarshal: %v, parse: %v", b, werr, gerr)
		}
		if werr != nil {
			return
		}
		check := func(name string, present bool, p *messagePart, fields ...[]byte) {
			t.Helper()
			if (p != nil) != present {
				t.Fatalf("%x: %s present %v, parse says %v", b, name, present, p != nil)
			}
			for i, w := range fields {
				g := p.field(protowire.Number(i + 1))
				if (g == nil) != (w == nil) || !bytes.Equal(g, w) {
					t.Fatalf("%x: %s field %d = %x (nil %v), want %x (nil %v)", b, name, i+1, g, g == nil, w, w == nil)
				}
			}
		}
		ch, sh, cf := want.GetClientHello(), want.GetServerHello(), want.GetClientFinish()
		check("client hello", ch != nil, got.part(fieldClientHello), ch.GetEphemeral(), ch.GetStatic(), ch.GetPayload())
		check("server hello", sh != nil, got.part(fieldServerHello), sh.GetEphemeral(), sh.GetStatic(), sh.GetPayload())
		check("client finish", cf != nil, got.part(fieldClientFinish), cf.GetStatic(), cf.GetPayload(), cf.GetExtendedCiphertext())
	})
}

// realMessages are the messages of an XX and an IK handshake.
func realMessages(tb testing.TB) [][]byte {
	kp := func() keys.KeyPair {
		k, err := keys.NewKeyPair(rand.Reader)
		if err != nil {
			tb.Fatal(err)
		}
		return k
	}
	cs, ss := kp(), kp()
	in, _ := NewInitiator(InitiatorConfig{Static: cs, Rand: rand.Reader, InsecureSkipVerify: true})
	r, _ := NewResponder(ResponderConfig{Static: ss, Rand: rand.Reader})
	m1, _ := in.ClientHello()
	r.ReadClientHello(m1)
	m2, _ := r.ServerHello([]byte("chain"))
	in.ReadServerHello(m2)
	m3, _, _ := in.ClientFinish([]byte("payload"))
	in, _ = NewInitiator(InitiatorConfig{Static: cs, Rand: rand.Reader, InsecureSkipVerify: true, Resume: &CertInfo{LeafKey: ss.Public}})
	r, _ = NewResponder(ResponderConfig{Static: ss, Rand: rand.Reader})
	ik1, _ := in.ResumeHello([]byte("payload"))
	r.ReadClientHello(ik1)
	ik2, _ := r.ServerHello(nil)
	return [][]byte{m1, m2, m3, ik1, ik2}
}

// TestReadDoesNotModifyMessage: reading a message leaves the caller's
// bytes as they were (the fields alias them).
func TestReadDoesNotModifyMessage(t *testing.T) {
	kp := func() keys.KeyPair { k, _ := keys.NewKeyPair(rand.Reader); return k }
	cs, ss := kp(), kp()
	in, _ := NewInitiator(InitiatorConfig{Static: cs, Rand: rand.Reader, InsecureSkipVerify: true})
	r, _ := NewResponder(ResponderConfig{Static: ss, Rand: rand.Reader})
	m1, _ := in.ClientHello()
	c1 := bytes.Clone(m1)
	if err := r.ReadClientHello(m1); err != nil || !bytes.Equal(m1, c1) {
		t.Fatalf("client hello: %v, changed %v", err, !bytes.Equal(m1, c1))
	}
	m2, _ := r.ServerHello([]byte("chain"))
	c2 := bytes.Clone(m2)
	if _, chain, err := in.ReadServerHello(m2); err != nil || !bytes.Equal(m2, c2) || string(chain) != "chain" {
		t.Fatalf("server hello: %v, changed %v, chain %q", err, !bytes.Equal(m2, c2), chain)
	}
	m3, _, _ := in.ClientFinish([]byte("payload"))
	c3 := bytes.Clone(m3)
	if _, p, _, err := r.ReadClientFinish(m3); err != nil || !bytes.Equal(m3, c3) || string(p) != "payload" {
		t.Fatalf("client finish: %v, changed %v, payload %q", err, !bytes.Equal(m3, c3), p)
	}
}
