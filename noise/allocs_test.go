package noise

import (
	"bytes"
	"crypto/rand"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/waproto"
)

// TestHandshakeAllocs: beyond what the crypto needs (DH outputs, AES-GCM
// states; SHA-256 runs on the stack), a handshake allocates only its two state
// structs, the three messages, the two decrypted payloads and the
// transport Ciphers: messages are written by hand with the ciphertexts
// sealed into them and read in place, and keys are hashed, sealed and
// opened in the state's own arrays.
func TestHandshakeAllocs(t *testing.T) {
	kp := func() keys.KeyPair {
		k, err := keys.NewKeyPair(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	cs, ce, ss, se := kp(), kp(), kp(), kp()
	chain := bytes.Repeat([]byte{7}, 300)
	payload := bytes.Repeat([]byte{9}, 200)
	handshake := func() {
		in, err := NewInitiator(InitiatorConfig{Static: cs, Ephemeral: &ce, InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		r, err := NewResponder(ResponderConfig{Static: ss, Ephemeral: &se})
		if err != nil {
			t.Fatal(err)
		}
		m1, err := in.ClientHello()
		if err != nil {
			t.Fatal(err)
		}
		if err := r.ReadClientHello(m1); err != nil {
			t.Fatal(err)
		}
		m2, err := r.ServerHello(chain)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := in.ReadServerHello(m2); err != nil {
			t.Fatal(err)
		}
		m3, _, err := in.ClientFinish(payload)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := r.ReadClientFinish(m3); err != nil {
			t.Fatal(err)
		}
	}
	handshake()

	dh := testing.AllocsPerRun(20, func() { ce.Private.ECDH(se.Public) })
	gcm := testing.AllocsPerRun(20, func() { newGCM(chain[:keyLen]) })
	const (
		dhs      = 6 // ee, es, se on each side
		aeads    = 6 // three MixKeys a side; the transport directions are built on first use
		structs  = 4 // Initiator, Responder, two Ciphers
		messages = 3
		// The decrypted certificate chain and client payload; messages
		// are read in place.
		plaintexts = 2
	)
	budget := dhs*dh + aeads*gcm + structs + messages + plaintexts
	if n := testing.AllocsPerRun(50, handshake); n > budget {
		t.Errorf("handshake: %v allocations, want at most %v", n, budget)
	} else {
		t.Logf("handshake: %v allocations, budget %v", n, budget)
	}
}

// TestMessagesMatchProto: the hand-written messages are the bytes
// proto.Marshal makes of the same HandshakeMessage, for payload sizes
// whose lengths take one, two and three varint bytes.
func TestMessagesMatchProto(t *testing.T) {
	kp := func() keys.KeyPair {
		k, err := keys.NewKeyPair(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	cs, ss := kp(), kp()
	remarshal := func(name string, msg []byte) {
		t.Helper()
		var hm waproto.HandshakeMessage
		if err := proto.Unmarshal(msg, &hm); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want, err := proto.Marshal(&hm)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(msg, want) {
			t.Fatalf("%s = %x\nproto.Marshal: %x", name, msg, want)
		}
	}
	for _, n := range []int{0, 1, 100, 111, 112, 200, 20000} {
		chain, payload := bytes.Repeat([]byte{7}, n), bytes.Repeat([]byte{9}, n+3)
		in, _ := NewInitiator(InitiatorConfig{Static: cs, Rand: rand.Reader, InsecureSkipVerify: true})
		r, _ := NewResponder(ResponderConfig{Static: ss, Rand: rand.Reader})
		m1, err := in.ClientHello()
		if err != nil {
			t.Fatal(err)
		}
		remarshal("client hello", m1)
		if err := r.ReadClientHello(m1); err != nil {
			t.Fatal(err)
		}
		m2, err := r.ServerHello(chain)
		if err != nil {
			t.Fatal(err)
		}
		remarshal("server hello", m2)
		if _, got, err := in.ReadServerHello(m2); err != nil || !bytes.Equal(got, chain) {
			t.Fatalf("chain %x, %v", got, err)
		}
		m3, _, err := in.ClientFinish(payload)
		if err != nil {
			t.Fatal(err)
		}
		remarshal("client finish", m3)
		if _, got, _, err := r.ReadClientFinish(m3); err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("payload %x, %v", got, err)
		}

		// IK: the resume hello and the accepting server hello.
		info := &CertInfo{LeafKey: ss.Public}
		in, _ = NewInitiator(InitiatorConfig{Static: cs, Rand: rand.Reader, InsecureSkipVerify: true, Resume: info})
		r, _ = NewResponder(ResponderConfig{Static: ss, Rand: rand.Reader})
		m1, err = in.ResumeHello(payload)
		if err != nil {
			t.Fatal(err)
		}
		remarshal("IK client hello", m1)
		if err := r.ReadClientHello(m1); err != nil || r.Mode() != ModeIK {
			t.Fatalf("IK hello: %v, mode %v", err, r.Mode())
		}
		m2, err = r.ServerHello(chain)
		if err != nil {
			t.Fatal(err)
		}
		remarshal("IK server hello", m2)
	}
}

// TestCipherBuildsOnFirstUse: a new Cipher holds no AES-GCM state; each
// direction builds its own on first use, and a bad key is still refused
// by NewCipher.
func TestCipherBuildsOnFirstUse(t *testing.T) {
	if _, err := NewCipher(make([]byte, 31), make([]byte, 32)); err == nil {
		t.Error("NewCipher took a 31-byte send key")
	}
	if _, err := NewCipher(make([]byte, 32), make([]byte, 33)); err == nil {
		t.Error("NewCipher took a 33-byte receive key")
	}
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	var a, b *Cipher
	if n := testing.AllocsPerRun(20, func() { a, _ = NewCipher(k1, k2) }); n != 1 {
		t.Errorf("NewCipher: %v allocations, want 1 (the Cipher)", n)
	}
	b, _ = NewCipher(k2, k1)
	if !a.Released() {
		t.Error("a new Cipher holds AES-GCM state")
	}
	ct, err := a.Seal(nil, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Released() || a.recv.aead != nil {
		t.Error("Seal built other than the sending state")
	}
	pt, err := b.Open(nil, ct)
	if err != nil || string(pt) != "hello" {
		t.Fatalf("Open = %q, %v", pt, err)
	}
	if b.send.aead != nil {
		t.Error("Open built the sending state")
	}
}

// TestAppendMessages: the Append forms write after dst's bytes exactly the
// messages the plain forms return (same keys, so the same bytes), end in
// the same ciphers, and allocate no message when dst has room.
func TestAppendMessages(t *testing.T) {
	kp := func() keys.KeyPair {
		k, err := keys.NewKeyPair(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	cs, ce, ss, se := kp(), kp(), kp(), kp()
	chain := bytes.Repeat([]byte{7}, 300)
	payload := bytes.Repeat([]byte{9}, 200)
	start := func() (*Initiator, *Responder) {
		in, err := NewInitiator(InitiatorConfig{Static: cs, Ephemeral: &ce, InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		r, err := NewResponder(ResponderConfig{Static: ss, Ephemeral: &se})
		if err != nil {
			t.Fatal(err)
		}
		return in, r
	}
	check := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	in, r := start()
	m1, err := in.ClientHello()
	check(err)
	check(r.ReadClientHello(m1))
	m2, err := r.ServerHello(chain)
	check(err)
	_, _, err = in.ReadServerHello(m2)
	check(err)
	m3, c1, err := in.ClientFinish(payload)
	check(err)
	_, _, s1, err := r.ReadClientFinish(m3)
	check(err)

	prefix := []byte("xyz")
	buf := make([]byte, 0, 1024)
	in, r = start()
	a1, err := in.AppendClientHello(append(buf[:0], prefix...))
	check(err)
	check(r.ReadClientHello(a1[len(prefix):]))
	a2, err := r.AppendServerHello(append(make([]byte, 0, 1024), prefix...), chain)
	check(err)
	_, _, err = in.ReadServerHello(a2[len(prefix):])
	check(err)
	a3, c2, err := in.AppendClientFinish(append(make([]byte, 0, 1024), prefix...), payload)
	check(err)
	_, _, s2, err := r.ReadClientFinish(a3[len(prefix):])
	check(err)
	for i, p := range [][2][]byte{{m1, a1}, {m2, a2}, {m3, a3}} {
		if !bytes.HasPrefix(p[1], prefix) || !bytes.Equal(p[1][len(prefix):], p[0]) {
			t.Errorf("message %d: Append form %x, plain %x", i+1, p[1], p[0])
		}
	}
	// Both handshakes ended with the same keys.
	for _, c := range []struct{ seal, open *Cipher }{{c1, s2}, {c2, s1}, {s1, c2}} {
		ct, err := c.seal.Seal(nil, []byte("frame"))
		check(err)
		if _, err := c.open.Open(nil, ct); err != nil {
			t.Errorf("cross-open: %v", err)
		}
	}

	// With room in dst, no message is allocated.
	hello := func(appendForm bool) func() {
		return func() {
			in, _ := start()
			if appendForm {
				_, err = in.AppendClientHello(buf[:0])
			} else {
				_, err = in.ClientHello()
			}
		}
	}
	plain, appended := testing.AllocsPerRun(20, hello(false)), testing.AllocsPerRun(20, hello(true))
	check(err)
	if appended != plain-1 {
		t.Errorf("AppendClientHello: %v allocations, ClientHello %v", appended, plain)
	}

	// A failed Append returns dst as it was.
	if got, err := in.AppendClientHello(prefix); err == nil || !bytes.Equal(got, prefix) {
		t.Errorf("AppendClientHello out of order: %q, %v", got, err)
	}
}
