package noise_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/walinkdev/walink/internal/vectors"
	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/noise"
)

// vec holds the noise_xx known-answer vector.
type vec struct {
	m                                                  map[string]any
	clientStatic, clientEph, serverStatic, serverEph   keys.KeyPair
	root, intermediate                                 keys.KeyPair
	chain, msg1, msg1Wire, msg2, msg3, msg3Wire, cpReg []byte
}

func loadVec(t testing.TB) *vec {
	t.Helper()
	m := vectors.Load(t)
	h := func(p ...string) []byte { return vectors.Hex(t, m, append([]string{"noise_xx"}, p...)...) }
	kp := func(name string) keys.KeyPair {
		k, err := keys.KeyPairFromPrivate(h(name, "priv"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(k.Public.Bytes(), h(name, "pub")) {
			t.Fatalf("%s: public key does not match private", name)
		}
		return k
	}
	return &vec{
		m:            m,
		clientStatic: kp("client_static_noise"),
		clientEph:    kp("client_ephemeral"),
		serverStatic: kp("server_static"),
		serverEph:    kp("server_ephemeral"),
		root:         kp("test_root"),
		intermediate: kp("test_intermediate"),
		chain:        h("cert_chain"),
		msg1:         h("msg1_client_hello_proto"),
		msg1Wire:     h("msg1_wire_first_ws_message"),
		msg2:         h("msg2_server_hello_proto"),
		msg3:         h("msg3_client_finish_proto"),
		msg3Wire:     h("msg3_wire"),
		cpReg:        h("client_payload_registration"),
	}
}

func (v *vec) hex(t testing.TB, name string) []byte {
	return vectors.Hex(t, v.m, "noise_xx", name)
}

// vecTime lies inside both certificates of the vector chain.
var vecTime = time.Unix(1_800_000_000, 0)

func (v *vec) initiator(t testing.TB) *noise.Initiator {
	t.Helper()
	eph := v.clientEph
	in, err := noise.NewInitiator(noise.InitiatorConfig{
		Static:    v.clientStatic,
		Ephemeral: &eph,
		RootKey:   v.root.Public,
		Time:      func() time.Time { return vecTime },
	})
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func (v *vec) responder(t testing.TB) *noise.Responder {
	t.Helper()
	eph := v.serverEph
	r, err := noise.NewResponder(noise.ResponderConfig{Static: v.serverStatic, Ephemeral: &eph})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

type traceStep struct{ h, ck string }

func recorder(dst *[]traceStep) func(string, []byte, []byte) {
	return func(_ string, h, ck []byte) {
		*dst = append(*dst, traceStep{hex.EncodeToString(h), hex.EncodeToString(ck)})
	}
}

func (v *vec) checkTrace(t *testing.T, who string, got []traceStep) {
	t.Helper()
	want := vectors.Get(t, v.m, "noise_xx", "state_trace").([]any)
	if len(got) != len(want) {
		t.Fatalf("%s: %d trace steps, want %d", who, len(got), len(want))
	}
	for i, w := range want {
		w := w.(map[string]any)
		if got[i].h != w["h"] || got[i].ck != w["ck"] {
			t.Errorf("%s: step %d (%s):\n h  %s\n want %s\n ck %s\n want %s", who, i, w["after"], got[i].h, w["h"], got[i].ck, w["ck"])
		}
	}
}

func TestVectorInitiator(t *testing.T) {
	v := loadVec(t)
	in := v.initiator(t)
	var trace []traceStep
	in.SetTrace(recorder(&trace))
	var k1, k2 []byte
	in.SetSplitTrace(func(a, b []byte) { k1, k2 = bytes.Clone(a), bytes.Clone(b) })

	msg1, err := in.ClientHello()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(msg1, v.msg1) {
		t.Fatalf("msg1 = %x\nwant %x", msg1, v.msg1)
	}
	wire, err := noise.AppendIntro(nil, noise.HeaderV3, nil)
	if err != nil {
		t.Fatal(err)
	}
	if wire, err = noise.AppendFrame(wire, msg1); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(wire, v.msg1Wire) {
		t.Fatalf("msg1 wire = %x\nwant %x", wire, v.msg1Wire)
	}

	rs, chain, err := in.ReadServerHello(v.msg2)
	if err != nil {
		t.Fatal(err)
	}
	if !rs.Equal(v.serverStatic.Public) {
		t.Errorf("server static = %v, want %v", rs, v.serverStatic.Public)
	}
	if !bytes.Equal(chain, v.chain) {
		t.Errorf("cert chain = %x\nwant %x", chain, v.chain)
	}

	msg3, c, err := in.ClientFinish(v.cpReg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(msg3, v.msg3) {
		t.Fatalf("msg3 = %x\nwant %x", msg3, v.msg3)
	}
	wire3, _ := noise.AppendFrame(nil, msg3)
	if !bytes.Equal(wire3, v.msg3Wire) {
		t.Fatalf("msg3 wire = %x\nwant %x", wire3, v.msg3Wire)
	}
	v.checkTrace(t, "initiator", trace)
	if want := v.hex(t, "final_client_write_key"); !bytes.Equal(k1, want) {
		t.Errorf("client write key = %x\nwant %x", k1, want)
	}
	if want := v.hex(t, "final_client_read_key"); !bytes.Equal(k2, want) {
		t.Errorf("client read key = %x\nwant %x", k2, want)
	}
	v.checkClientTransport(t, c)

	// The vector's final keys make the same cipher.
	c2, err := noise.NewCipher(v.hex(t, "final_client_write_key"), v.hex(t, "final_client_read_key"))
	if err != nil {
		t.Fatal(err)
	}
	v.checkClientTransport(t, c2)

	if _, _, err := in.ClientFinish(nil); !errors.Is(err, noise.ErrHandshakeState) {
		t.Errorf("second ClientFinish: %v, want ErrHandshakeState", err)
	}
}

func (v *vec) checkClientTransport(t *testing.T, c *noise.Cipher) {
	t.Helper()
	ct, err := c.Seal(nil, v.hex(t, "transport_c2s_frame0_plain"))
	if err != nil {
		t.Fatal(err)
	}
	if want := v.hex(t, "transport_c2s_frame0_ct"); !bytes.Equal(ct, want) {
		t.Errorf("c2s frame 0 = %x\nwant %x", ct, want)
	}
	pt, err := c.Open(nil, v.hex(t, "transport_s2c_frame0_ct"))
	if err != nil {
		t.Fatal(err)
	}
	if want := v.hex(t, "transport_s2c_frame0_plain"); !bytes.Equal(pt, want) {
		t.Errorf("s2c frame 0 = %x\nwant %x", pt, want)
	}
	if _, err := c.Open(nil, v.hex(t, "transport_s2c_frame1_ct")); err != nil {
		t.Errorf("s2c frame 1: %v", err)
	}
}

func TestVectorResponder(t *testing.T) {
	v := loadVec(t)
	r := v.responder(t)
	var trace []traceStep
	r.SetTrace(recorder(&trace))
	var k1, k2 []byte
	r.SetSplitTrace(func(a, b []byte) { k1, k2 = bytes.Clone(a), bytes.Clone(b) })

	if err := r.ReadClientHello(v.msg1); err != nil {
		t.Fatal(err)
	}
	msg2, err := r.ServerHello(v.chain)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(msg2, v.msg2) {
		t.Fatalf("msg2 = %x\nwant %x", msg2, v.msg2)
	}
	cs, payload, c, err := r.ReadClientFinish(v.msg3)
	if err != nil {
		t.Fatal(err)
	}
	if !cs.Equal(v.clientStatic.Public) {
		t.Errorf("client static = %v, want %v", cs, v.clientStatic.Public)
	}
	if !bytes.Equal(payload, v.cpReg) {
		t.Errorf("payload = %x\nwant %x", payload, v.cpReg)
	}
	v.checkTrace(t, "responder", trace)
	if !bytes.Equal(k1, v.hex(t, "final_client_write_key")) || !bytes.Equal(k2, v.hex(t, "final_client_read_key")) {
		t.Errorf("responder split keys = %x %x", k1, k2)
	}

	ct, err := c.Seal(nil, v.hex(t, "transport_s2c_frame0_plain"))
	if err != nil {
		t.Fatal(err)
	}
	if want := v.hex(t, "transport_s2c_frame0_ct"); !bytes.Equal(ct, want) {
		t.Errorf("s2c frame 0 = %x\nwant %x", ct, want)
	}
	pt, err := c.Open(nil, v.hex(t, "transport_c2s_frame0_ct"))
	if err != nil {
		t.Fatal(err)
	}
	if want := v.hex(t, "transport_c2s_frame0_plain"); !bytes.Equal(pt, want) {
		t.Errorf("c2s frame 0 = %x\nwant %x", pt, want)
	}
}

// pair runs a fresh handshake between an Initiator and a Responder with
// random keys and a freshly minted chain.
type pair struct {
	in     *noise.Initiator
	r      *noise.Responder
	chain  []byte
	client keys.KeyPair
}

func newPair(t testing.TB, now time.Time, hdr [4]byte) *pair {
	t.Helper()
	client := mustKP(t)
	server := mustKP(t)
	root := mustKP(t)
	inter := mustKP(t)
	chain, err := noise.NewCertChain(rand.Reader, root.Private, inter, server.Public, noise.CertOptions{
		IntermediateSerial: 7, LeafSerial: 9,
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	in, err := noise.NewInitiator(noise.InitiatorConfig{
		Static: client, Rand: rand.Reader, RootKey: root.Public, Prologue: hdr,
		Time: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := noise.NewResponder(noise.ResponderConfig{Static: server, Rand: rand.Reader, Prologue: hdr})
	if err != nil {
		t.Fatal(err)
	}
	return &pair{in: in, r: r, chain: chain, client: client}
}

func mustKP(t testing.TB) keys.KeyPair {
	t.Helper()
	k, err := keys.NewKeyPair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestHandshakeRoundTrip(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for _, hdr := range [][4]byte{noise.HeaderV3, noise.HeaderV2} {
		p := newPair(t, now, hdr)
		msg1, err := p.in.ClientHello()
		if err != nil {
			t.Fatal(err)
		}
		if err := p.r.ReadClientHello(msg1); err != nil {
			t.Fatal(err)
		}
		msg2, err := p.r.ServerHello(p.chain)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := p.in.ReadServerHello(msg2); err != nil {
			t.Fatal(err)
		}
		msg3, cc, err := p.in.ClientFinish([]byte("payload"))
		if err != nil {
			t.Fatal(err)
		}
		cs, payload, sc, err := p.r.ReadClientFinish(msg3)
		if err != nil {
			t.Fatal(err)
		}
		if !cs.Equal(p.client.Public) || string(payload) != "payload" {
			t.Fatalf("responder got %v %q", cs, payload)
		}
		for i := range 3 {
			ct, _ := cc.Seal(nil, []byte{byte(i)})
			pt, err := sc.Open(nil, ct)
			if err != nil || !bytes.Equal(pt, []byte{byte(i)}) {
				t.Fatalf("c2s %d: %x %v", i, pt, err)
			}
			ct, _ = sc.Seal(nil, []byte{byte(i), 1})
			pt, err = cc.Open(nil, ct)
			if err != nil || !bytes.Equal(pt, []byte{byte(i), 1}) {
				t.Fatalf("s2c %d: %x %v", i, pt, err)
			}
		}
	}
}

// A prologue mismatch (client sent v2, server hashes v3) must fail.
func TestPrologueMismatch(t *testing.T) {
	v := loadVec(t)
	eph := v.serverEph
	r, err := noise.NewResponder(noise.ResponderConfig{Static: v.serverStatic, Ephemeral: &eph, Prologue: noise.HeaderV2})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.ReadClientHello(v.msg1); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ServerHello(v.chain); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := r.ReadClientFinish(v.msg3); !errors.Is(err, noise.ErrDecrypt) {
		t.Fatalf("got %v, want ErrDecrypt", err)
	}
}

// Every flipped bit in message 2 is refused by the initiator.
func TestFlipServerHello(t *testing.T) {
	v := loadVec(t)
	for i := range v.msg2 {
		for _, bit := range []byte{0x01, 0x80} {
			m := bytes.Clone(v.msg2)
			m[i] ^= bit
			in := v.initiator(t)
			if _, err := in.ClientHello(); err != nil {
				t.Fatal(err)
			}
			if _, _, err := in.ReadServerHello(m); err == nil {
				t.Fatalf("byte %d bit %02x: accepted", i, bit)
			}
			if _, _, err := in.ClientFinish(nil); !errors.Is(err, noise.ErrHandshakeState) {
				t.Fatalf("byte %d: ClientFinish after failure: %v", i, err)
			}
		}
	}
}

// Every flipped bit in messages 1 and 3 is refused by the responder. A
// changed message 1 changes h, so the refusal comes at message 3.
func TestFlipClientMessages(t *testing.T) {
	v := loadVec(t)
	run := func(m1, m3 []byte) error {
		r := v.responder(t)
		if err := r.ReadClientHello(m1); err != nil {
			return err
		}
		if _, err := r.ServerHello(v.chain); err != nil {
			t.Fatal(err)
		}
		_, _, _, err := r.ReadClientFinish(m3)
		return err
	}
	if err := run(v.msg1, v.msg3); err != nil {
		t.Fatal(err)
	}
	for i := range v.msg1 {
		m := bytes.Clone(v.msg1)
		m[i] ^= 0x01
		if err := run(m, v.msg3); err == nil {
			t.Fatalf("msg1 byte %d: accepted", i)
		}
	}
	for i := range v.msg3 {
		m := bytes.Clone(v.msg3)
		m[i] ^= 0x01
		if err := run(v.msg1, m); err == nil {
			t.Fatalf("msg3 byte %d: accepted", i)
		}
	}
}

func TestFlipTransportFrames(t *testing.T) {
	v := loadVec(t)
	for _, name := range []string{"transport_s2c_frame0_ct"} {
		frame := v.hex(t, name)
		for i := range frame {
			c, err := noise.NewCipher(v.hex(t, "final_client_write_key"), v.hex(t, "final_client_read_key"))
			if err != nil {
				t.Fatal(err)
			}
			m := bytes.Clone(frame)
			m[i] ^= 0x01
			if _, err := c.Open(nil, m); !errors.Is(err, noise.ErrDecrypt) {
				t.Fatalf("%s byte %d: %v, want ErrDecrypt", name, i, err)
			}
			// Terminal: even the genuine frame is now refused.
			if _, err := c.Open(nil, frame); !errors.Is(err, noise.ErrCipherBroken) {
				t.Fatalf("after failure: %v, want ErrCipherBroken", err)
			}
			if _, err := c.Seal(nil, nil); !errors.Is(err, noise.ErrCipherBroken) {
				t.Fatalf("seal after failure: %v, want ErrCipherBroken", err)
			}
		}
	}
	// Server side: flipped client frames.
	frame := v.hex(t, "transport_c2s_frame0_ct")
	for i := range frame {
		c, _ := noise.NewCipher(v.hex(t, "final_client_read_key"), v.hex(t, "final_client_write_key"))
		m := bytes.Clone(frame)
		m[i] ^= 0x80
		if _, err := c.Open(nil, m); !errors.Is(err, noise.ErrDecrypt) {
			t.Fatalf("c2s byte %d: %v", i, err)
		}
	}
}

func TestCallOrder(t *testing.T) {
	v := loadVec(t)
	in := v.initiator(t)
	if _, _, err := in.ReadServerHello(v.msg2); !errors.Is(err, noise.ErrHandshakeState) {
		t.Errorf("ReadServerHello first: %v", err)
	}
	if _, _, err := in.ClientFinish(nil); !errors.Is(err, noise.ErrHandshakeState) {
		t.Errorf("ClientFinish first: %v", err)
	}
	r := v.responder(t)
	if _, err := r.ServerHello(v.chain); !errors.Is(err, noise.ErrHandshakeState) {
		t.Errorf("ServerHello first: %v", err)
	}
	if _, _, _, err := r.ReadClientFinish(v.msg3); !errors.Is(err, noise.ErrHandshakeState) {
		t.Errorf("ReadClientFinish first: %v", err)
	}
}

func TestBadMessages(t *testing.T) {
	v := loadVec(t)
	r := v.responder(t)
	// An IK client hello (static present) is refused, not misread.
	ik := append(bytes.Clone(v.msg1[:2]), v.msg1[2:]...)
	ik = append(ik, 0x12, 0x01, 0x00) // static = 00, inside clientHello
	ik[1] += 3
	// Under IKAccept it is a malformed IK hello (a 1-byte static).
	if err := r.ReadClientHello(ik); !errors.Is(err, noise.ErrBadMessage) {
		t.Errorf("IK hello: %v, want ErrBadMessage", err)
	}
	eph := v.serverEph
	refuse, err := noise.NewResponder(noise.ResponderConfig{Static: v.serverStatic, Ephemeral: &eph, IK: noise.IKRefuse})
	if err != nil {
		t.Fatal(err)
	}
	if err := refuse.ReadClientHello(ik); !errors.Is(err, noise.ErrUnsupported) {
		t.Errorf("IK hello under IKRefuse: %v, want ErrUnsupported", err)
	}
	for _, m := range [][]byte{nil, {0xff}, v.msg2, v.msg3, {0x12, 0x02, 0x0a, 0x00}} {
		if err := v.responder(t).ReadClientHello(m); !errors.Is(err, noise.ErrBadMessage) {
			t.Errorf("ReadClientHello(%x): %v, want ErrBadMessage", m, err)
		}
	}
	for _, m := range [][]byte{nil, v.msg1, v.msg3} {
		in := v.initiator(t)
		in.ClientHello()
		if _, _, err := in.ReadServerHello(m); !errors.Is(err, noise.ErrBadMessage) {
			t.Errorf("ReadServerHello(%x): %v, want ErrBadMessage", m, err)
		}
	}
	// A low-order server ephemeral fails the DH.
	in := v.initiator(t)
	in.ClientHello()
	m := bytes.Clone(v.msg2)
	copy(m[5:37], make([]byte, 32))
	if _, _, err := in.ReadServerHello(m); !errors.Is(err, keys.ErrLowOrder) {
		t.Errorf("zero ephemeral: %v, want keys.ErrLowOrder", err)
	}
}

func TestConfigErrors(t *testing.T) {
	kp := mustKP(t)
	for _, cfg := range []noise.InitiatorConfig{
		{},
		{Static: kp, Time: time.Now},
		{Static: kp, Rand: rand.Reader},
	} {
		if _, err := noise.NewInitiator(cfg); !errors.Is(err, noise.ErrBadConfig) {
			t.Errorf("NewInitiator(%+v) accepted", cfg)
		}
	}
	if _, err := noise.NewInitiator(noise.InitiatorConfig{Static: kp, Rand: rand.Reader, InsecureSkipVerify: true}); err != nil {
		t.Error(err)
	}
	if _, err := noise.NewResponder(noise.ResponderConfig{Static: kp}); !errors.Is(err, noise.ErrBadConfig) {
		t.Error("NewResponder without Rand accepted")
	}
}
