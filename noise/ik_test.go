package noise_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/noise"
	"github.com/walinkdev/walink/waproto"
)

// There are no published IK vectors. The known-answer tests below fix every
// key (those of vectors.json noise_xx) and recompute each step of
// CHANGES-2026 §7 with a reference written straight from the text, on the
// standard library only (crypto/ecdh, crypto/hkdf, AES-GCM), sharing no code
// with the package. Initiator and responder must both match it at every
// h/ck step, and the messages they exchange must be its ciphertexts.

// refState is the reference SymmetricState (PROTOCOL.md §3.1).
type refState struct {
	t     *testing.T
	h, ck [32]byte
	k     []byte
	n     uint32
	steps []traceStep
}

func newRef(t *testing.T, name string, prologue []byte) *refState {
	r := &refState{t: t}
	if len(name) == 32 {
		copy(r.h[:], name) // "…\0\0\0\0", used raw
	} else {
		r.h = sha256.Sum256([]byte(name)) // XXfallback: 36 bytes, hashed
	}
	r.ck = r.h
	r.mixHash(prologue)
	return r
}

func (r *refState) snap() {
	r.steps = append(r.steps, traceStep{hex.EncodeToString(r.h[:]), hex.EncodeToString(r.ck[:])})
}

func (r *refState) mixHash(b []byte) {
	r.h = sha256.Sum256(append(r.h[:], b...))
	r.snap()
}

func (r *refState) mixKey(priv, pub []byte) {
	sk, err := ecdh.X25519().NewPrivateKey(priv)
	if err != nil {
		r.t.Fatal(err)
	}
	pk, err := ecdh.X25519().NewPublicKey(pub)
	if err != nil {
		r.t.Fatal(err)
	}
	dh, err := sk.ECDH(pk)
	if err != nil {
		r.t.Fatal(err)
	}
	out, err := hkdf.Key(sha256.New, dh, r.ck[:], "", 64)
	if err != nil {
		r.t.Fatal(err)
	}
	copy(r.ck[:], out[:32])
	r.k, r.n = out[32:], 0
	r.snap()
}

func (r *refState) gcm() (cipher.AEAD, []byte) {
	b, err := aes.NewCipher(r.k)
	if err != nil {
		r.t.Fatal(err)
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		r.t.Fatal(err)
	}
	nonce := make([]byte, 12)
	binary.BigEndian.PutUint32(nonce[8:], r.n)
	r.n++
	return g, nonce
}

func (r *refState) encrypt(p []byte) []byte {
	g, nonce := r.gcm()
	c := g.Seal(nil, nonce, p, r.h[:])
	r.mixHash(c)
	return c
}

func (r *refState) decrypt(c []byte) []byte {
	g, nonce := r.gcm()
	p, err := g.Open(nil, nonce, c, r.h[:])
	if err != nil {
		r.t.Fatalf("reference decrypt: %v", err)
	}
	r.mixHash(c)
	return p
}

func (r *refState) split() (k1, k2 []byte) {
	out, err := hkdf.Key(sha256.New, nil, r.ck[:], "", 64)
	if err != nil {
		r.t.Fatal(err)
	}
	return out[:32], out[32:]
}

func priv(k keys.KeyPair) []byte { return k.Private.Bytes() }

// namedRecorder keeps step names too, so a fallback trace can be cut at
// its second "init".
type namedStep struct {
	name string
	traceStep
}

func namedRecorder(dst *[]namedStep) func(string, []byte, []byte) {
	return func(name string, h, ck []byte) {
		*dst = append(*dst, namedStep{name, traceStep{hex.EncodeToString(h), hex.EncodeToString(ck)}})
	}
}

// fromLastInit drops the steps of an abandoned IK attempt.
func fromLastInit(s []namedStep) []traceStep {
	start := 0
	for i, st := range s {
		if st.name == "init" {
			start = i
		}
	}
	var out []traceStep
	for _, st := range s[start:] {
		out = append(out, st.traceStep)
	}
	return out
}

func compareTrace(t *testing.T, who string, got, want []traceStep) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d steps, want %d", who, len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%s step %d:\n h  %s\n want %s\n ck %s\n want %s", who, i, got[i].h, want[i].h, got[i].ck, want[i].ck)
		}
	}
}

var ikPayload = []byte("ik login payload")

// resumeInfo is what a client cached from an XX handshake with this chain.
func resumeInfo(t testing.TB, chain []byte, root, leaf keys.PublicKey, now time.Time) *noise.CertInfo {
	t.Helper()
	info, err := noise.ParseCertChain(chain, root, leaf, now)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func (v *vec) ikInitiator(t testing.TB, cached keys.PublicKey) *noise.Initiator {
	t.Helper()
	eph := v.clientEph
	info := resumeInfo(t, v.chain, v.root.Public, v.serverStatic.Public, vecTime)
	info.LeafKey = cached
	in, err := noise.NewInitiator(noise.InitiatorConfig{
		Static: v.clientStatic, Ephemeral: &eph, RootKey: v.root.Public,
		Time: func() time.Time { return vecTime }, Resume: info,
	})
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func (v *vec) ikResponder(t testing.TB, static keys.KeyPair, policy noise.IKPolicy) *noise.Responder {
	t.Helper()
	eph := v.serverEph
	r, err := noise.NewResponder(noise.ResponderConfig{Static: static, Ephemeral: &eph, IK: policy})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func decodeHS(t *testing.T, b []byte) *waproto.HandshakeMessage {
	t.Helper()
	var hm waproto.HandshakeMessage
	if err := proto.Unmarshal(b, &hm); err != nil {
		t.Fatal(err)
	}
	return &hm
}

// TestIKKnownAnswer: an accepted resume, every step against the reference.
func TestIKKnownAnswer(t *testing.T) {
	v := loadVec(t)
	prologue := noise.HeaderV3[:]
	e, s, re, rs := v.clientEph, v.clientStatic, v.serverEph, v.serverStatic

	// CHANGES-2026 §7, client view; the server mirrors each step.
	ref := newRef(t, noise.ProtocolIK, prologue) // h = ck = name (32 bytes); MixHash(prologue)
	ref.mixHash(rs.Public.Bytes())               // pre-message: MixHash(rs), rs = cached leaf key
	ref.mixHash(e.Public.Bytes())                // e: MixHash(e.pub), message-1 payload not hashed
	ref.mixKey(priv(e), rs.Public.Bytes())       // es: MixKey(DH(e, rs))
	c1 := ref.encrypt(s.Public.Bytes())          // s: c1 = EncryptAndHash(s.pub)
	ref.mixKey(priv(s), rs.Public.Bytes())       // ss: MixKey(DH(s, rs))
	c2 := ref.encrypt(ikPayload)                 // c2 = EncryptAndHash(login payload)
	ref.mixHash(re.Public.Bytes())               // accepted: MixHash(re)
	ref.mixKey(priv(e), re.Public.Bytes())       // ee: MixKey(DH(e, re))
	ref.mixKey(priv(s), re.Public.Bytes())       // se: MixKey(DH(s, re))
	c3 := ref.encrypt(v.chain)                   // payload = EncryptAndHash(chain)
	k1, k2 := ref.split()                        // client writes with k1

	in := v.ikInitiator(t, rs.Public)
	var itrace, rtrace []namedStep
	in.SetTrace(namedRecorder(&itrace))
	r := v.ikResponder(t, rs, noise.IKAccept)
	r.SetTrace(namedRecorder(&rtrace))
	var ik1, ik2, rk1, rk2 []byte
	in.SetSplitTrace(func(a, b []byte) { ik1, ik2 = bytes.Clone(a), bytes.Clone(b) })
	r.SetSplitTrace(func(a, b []byte) { rk1, rk2 = bytes.Clone(a), bytes.Clone(b) })

	msg1, err := in.ResumeHello(ikPayload)
	if err != nil {
		t.Fatal(err)
	}
	ch := decodeHS(t, msg1).GetClientHello()
	if !bytes.Equal(ch.GetEphemeral(), e.Public.Bytes()) || !bytes.Equal(ch.GetStatic(), c1) || !bytes.Equal(ch.GetPayload(), c2) {
		t.Fatalf("client hello fields differ from the reference")
	}
	if err := r.ReadClientHello(msg1); err != nil {
		t.Fatal(err)
	}
	if r.Mode() != noise.ModeIK {
		t.Fatalf("responder mode %v, want IK", r.Mode())
	}
	msg2, err := r.ServerHello(v.chain)
	if err != nil {
		t.Fatal(err)
	}
	sh := decodeHS(t, msg2).GetServerHello()
	if sh.Static != nil || !bytes.Equal(sh.GetEphemeral(), re.Public.Bytes()) || !bytes.Equal(sh.GetPayload(), c3) {
		t.Fatalf("server hello differs from the reference: %x", msg2)
	}
	cs, payload, sc, err := r.Resumed()
	if err != nil {
		t.Fatal(err)
	}
	if !cs.Equal(s.Public) || !bytes.Equal(payload, ikPayload) {
		t.Fatalf("responder got %v %q", cs, payload)
	}
	gotRS, chain, err := in.ReadServerHello(msg2)
	if err != nil {
		t.Fatal(err)
	}
	if !gotRS.Equal(rs.Public) || !bytes.Equal(chain, v.chain) || in.Mode() != noise.ModeIK {
		t.Fatalf("initiator: rs %v, mode %v", gotRS, in.Mode())
	}
	if in.ServerCert() == nil || !in.ServerCert().LeafKey.Equal(rs.Public) {
		t.Fatalf("ServerCert = %+v", in.ServerCert())
	}
	msg3, cc, err := in.ClientFinish([]byte("ignored"))
	if err != nil || msg3 != nil || cc == nil {
		t.Fatalf("ClientFinish after IK: %x %v %v", msg3, cc, err)
	}
	compareTrace(t, "initiator", fromLastInit(itrace), ref.steps)
	compareTrace(t, "responder", fromLastInit(rtrace), ref.steps)
	if !bytes.Equal(ik1, k1) || !bytes.Equal(ik2, k2) || !bytes.Equal(rk1, k1) || !bytes.Equal(rk2, k2) {
		t.Fatalf("split keys differ from the reference")
	}
	// Pinned, so the reference and the package cannot drift together.
	if got := hex.EncodeToString(ref.h[:]); got != ikFinalH {
		t.Errorf("final h = %s, pinned %s", got, ikFinalH)
	}
	checkCiphers(t, cc, sc)
}

// Final handshake hashes of the two known-answer runs (regression pins).
const (
	ikFinalH         = "931690c8dca7b9a7c5ebaff3f75df739e8439b2fb57fbd3a77d2896e4d166a4f"
	ikFallbackFinalH = "c532cc222524251fdbb02b9c35895350f93759f1702c70293a61311d4fbd5bdc"
)

func checkCiphers(t *testing.T, client, server *noise.Cipher) {
	t.Helper()
	for i := range 3 {
		ct, err := client.Seal(nil, []byte{byte(i)})
		if err != nil {
			t.Fatal(err)
		}
		if pt, err := server.Open(nil, ct); err != nil || !bytes.Equal(pt, []byte{byte(i)}) {
			t.Fatalf("c2s %d: %x %v", i, pt, err)
		}
		ct, err = server.Seal(nil, []byte{byte(i), 1})
		if err != nil {
			t.Fatal(err)
		}
		if pt, err := client.Open(nil, ct); err != nil || !bytes.Equal(pt, []byte{byte(i), 1}) {
			t.Fatalf("s2c %d: %x %v", i, pt, err)
		}
	}
}

// TestIKFallbackKnownAnswer: the client cached a static key the server no
// longer has; the server answers as XXfallback, checked step by step.
func TestIKFallbackKnownAnswer(t *testing.T) {
	v := loadVec(t)
	prologue := noise.HeaderV3[:]
	e, s, re, rs := v.clientEph, v.clientStatic, v.serverEph, v.serverStatic
	stale := v.intermediate.Public // any other key

	ref := newRef(t, noise.ProtocolXXFallback, prologue) // h = ck = SHA-256(name); MixHash(prologue)
	ref.mixHash(e.Public.Bytes())                        // pre-message: the e.pub already sent
	ref.mixHash(re.Public.Bytes())                       // then XX message 2: MixHash(re)
	ref.mixKey(priv(e), re.Public.Bytes())               // ee
	cs := ref.encrypt(rs.Public.Bytes())                 // server static
	ref.mixKey(priv(e), rs.Public.Bytes())               // es
	cp := ref.encrypt(v.chain)                           // cert chain
	cc := ref.encrypt(s.Public.Bytes())                  // XX message 3: client static
	ref.mixKey(priv(s), re.Public.Bytes())               // se
	cf := ref.encrypt([]byte("xx login payload"))        // payload
	k1, k2 := ref.split()

	in := v.ikInitiator(t, stale)
	var itrace, rtrace []namedStep
	in.SetTrace(namedRecorder(&itrace))
	r := v.ikResponder(t, rs, noise.IKAccept)
	r.SetTrace(namedRecorder(&rtrace))
	var ik1, rk1 []byte
	in.SetSplitTrace(func(a, _ []byte) { ik1 = bytes.Clone(a) })
	r.SetSplitTrace(func(a, _ []byte) { rk1 = bytes.Clone(a) })

	msg1, err := in.ResumeHello(ikPayload)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.ReadClientHello(msg1); err != nil {
		t.Fatal(err)
	}
	if r.Mode() != noise.ModeXXFallback {
		t.Fatalf("responder mode %v, want XXfallback", r.Mode())
	}
	msg2, err := r.ServerHello(v.chain)
	if err != nil {
		t.Fatal(err)
	}
	sh := decodeHS(t, msg2).GetServerHello()
	if !bytes.Equal(sh.GetStatic(), cs) || !bytes.Equal(sh.GetPayload(), cp) {
		t.Fatal("server hello differs from the reference")
	}
	gotRS, _, err := in.ReadServerHello(msg2)
	if err != nil {
		t.Fatal(err)
	}
	if !gotRS.Equal(rs.Public) || in.Mode() != noise.ModeXXFallback {
		t.Fatalf("initiator: rs %v mode %v", gotRS, in.Mode())
	}
	if in.ServerCert() == nil || !in.ServerCert().LeafKey.Equal(rs.Public) {
		t.Fatal("ServerCert should be the new chain")
	}
	msg3, ccipher, err := in.ClientFinish([]byte("xx login payload"))
	if err != nil {
		t.Fatal(err)
	}
	fin := decodeHS(t, msg3).GetClientFinish()
	if !bytes.Equal(fin.GetStatic(), cc) || !bytes.Equal(fin.GetPayload(), cf) {
		t.Fatal("client finish differs from the reference")
	}
	gotCS, payload, scipher, err := r.ReadClientFinish(msg3)
	if err != nil {
		t.Fatal(err)
	}
	if !gotCS.Equal(s.Public) || string(payload) != "xx login payload" {
		t.Fatalf("responder got %v %q", gotCS, payload)
	}
	compareTrace(t, "initiator", fromLastInit(itrace), ref.steps)
	compareTrace(t, "responder", fromLastInit(rtrace), ref.steps)
	if !bytes.Equal(ik1, k1) || !bytes.Equal(rk1, k1) || bytes.Equal(k1, k2) {
		t.Fatal("split keys differ from the reference")
	}
	if got := hex.EncodeToString(ref.h[:]); got != ikFallbackFinalH {
		t.Errorf("final h = %s, pinned %s", got, ikFallbackFinalH)
	}
	checkCiphers(t, ccipher, scipher)
}

// ikPair sets up random keys and a chain; cached is what the client
// believes the server static is.
type ikPair struct {
	client, server, root, inter keys.KeyPair
	chain                       []byte
	now                         time.Time
	info                        *noise.CertInfo
}

func newIKPair(t testing.TB) *ikPair {
	t.Helper()
	p := &ikPair{client: mustKP(t), server: mustKP(t), root: mustKP(t), inter: mustKP(t), now: time.Unix(1_800_000_000, 0)}
	var err error
	p.chain, err = noise.NewCertChain(rand.Reader, p.root.Private, p.inter, p.server.Public, noise.CertOptions{
		IntermediateSerial: 7, LeafSerial: 9, NotBefore: p.now.Add(-time.Hour), NotAfter: p.now.Add(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	p.info = resumeInfo(t, p.chain, p.root.Public, p.server.Public, p.now)
	return p
}

func (p *ikPair) initiator(t testing.TB, info *noise.CertInfo) *noise.Initiator {
	t.Helper()
	in, err := noise.NewInitiator(noise.InitiatorConfig{
		Static: p.client, Rand: rand.Reader, RootKey: p.root.Public,
		Time: func() time.Time { return p.now }, Resume: info,
	})
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func (p *ikPair) responder(t testing.TB, policy noise.IKPolicy) *noise.Responder {
	t.Helper()
	r, err := noise.NewResponder(noise.ResponderConfig{Static: p.server, Rand: rand.Reader, IK: policy})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// run drives a resume to the end and returns both modes and what the
// server received.
func (p *ikPair) run(t *testing.T, in *noise.Initiator, r *noise.Responder) (cm, sm noise.Mode, payload []byte) {
	t.Helper()
	msg1, err := in.ResumeHello(ikPayload)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.ReadClientHello(msg1); err != nil {
		t.Fatal(err)
	}
	msg2, err := r.ServerHello(p.chain)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := in.ReadServerHello(msg2); err != nil {
		t.Fatal(err)
	}
	msg3, cc, err := in.ClientFinish([]byte("finish payload"))
	if err != nil {
		t.Fatal(err)
	}
	var sc *noise.Cipher
	var cs keys.PublicKey
	if msg3 == nil {
		cs, payload, sc, err = r.Resumed()
	} else {
		cs, payload, sc, err = r.ReadClientFinish(msg3)
	}
	if err != nil {
		t.Fatal(err)
	}
	if !cs.Equal(p.client.Public) {
		t.Fatalf("server saw client %v", cs)
	}
	checkCiphers(t, cc, sc)
	return in.Mode(), r.Mode(), payload
}

func TestIKRoundTrips(t *testing.T) {
	p := newIKPair(t)
	stale := *p.info
	stale.LeafKey = mustKP(t).Public
	for _, tc := range []struct {
		name    string
		info    *noise.CertInfo
		policy  noise.IKPolicy
		mode    noise.Mode
		payload string
	}{
		{"accept", p.info, noise.IKAccept, noise.ModeIK, string(ikPayload)},
		{"stale static", &stale, noise.IKAccept, noise.ModeXXFallback, "finish payload"},
		{"server forces fallback", p.info, noise.IKFallback, noise.ModeXXFallback, "finish payload"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cm, sm, payload := p.run(t, p.initiator(t, tc.info), p.responder(t, tc.policy))
			if cm != tc.mode || sm != tc.mode || string(payload) != tc.payload {
				t.Fatalf("modes %v/%v payload %q, want %v %q", cm, sm, payload, tc.mode, tc.payload)
			}
		})
	}
	t.Run("refuse", func(t *testing.T) {
		msg1, err := p.initiator(t, p.info).ResumeHello(ikPayload)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.responder(t, noise.IKRefuse).ReadClientHello(msg1); !errors.Is(err, noise.ErrUnsupported) {
			t.Fatalf("got %v, want ErrUnsupported", err)
		}
	})
	t.Run("xx unaffected by policy", func(t *testing.T) {
		in := p.initiator(t, nil)
		r := p.responder(t, noise.IKRefuse)
		msg1, _ := in.ClientHello()
		if err := r.ReadClientHello(msg1); err != nil || r.Mode() != noise.ModeXX {
			t.Fatalf("XX hello: %v mode %v", err, r.Mode())
		}
	})
}

// The client's certificate checks hold in every mode.
func TestIKCertChecks(t *testing.T) {
	p := newIKPair(t)
	expired := *p.info
	expired.LeafNotAfter = p.now.Add(-time.Second)
	early := *p.info
	early.IntermediateNotBefore = p.now.Add(time.Second)
	for _, tc := range []struct {
		info   *noise.CertInfo
		reason noise.CertReason
		cert   string
	}{{&expired, noise.CertExpired, "leaf"}, {&early, noise.CertNotYetValid, "intermediate"}} {
		_, err := p.initiator(t, tc.info).ResumeHello(ikPayload)
		var ce *noise.CertError
		if !errors.As(err, &ce) || ce.Reason != tc.reason || ce.Cert != tc.cert {
			t.Errorf("ResumeHello with %s %s: %v", tc.cert, tc.reason, err)
		}
	}
	if _, err := p.initiator(t, nil).ResumeHello(ikPayload); !errors.Is(err, noise.ErrBadConfig) {
		t.Errorf("ResumeHello without a cache: %v", err)
	}

	// Accepted resume, but the chain in it is under another root.
	other := mustKP(t)
	bad, err := noise.NewCertChain(rand.Reader, other.Private, p.inter, p.server.Public, noise.CertOptions{
		NotBefore: p.now.Add(-time.Hour), NotAfter: p.now.Add(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, chain := range [][]byte{bad, p.chain} {
		in := p.initiator(t, p.info)
		r := p.responder(t, noise.IKAccept)
		msg1, _ := in.ResumeHello(ikPayload)
		if err := r.ReadClientHello(msg1); err != nil {
			t.Fatal(err)
		}
		msg2, _ := r.ServerHello(chain)
		_, _, err := in.ReadServerHello(msg2)
		if bytes.Equal(chain, bad) {
			var ce *noise.CertError
			if !errors.As(err, &ce) || ce.Reason != noise.CertBadRootSignature {
				t.Errorf("accept with a foreign chain: %v", err)
			}
			if _, _, err := in.ClientFinish(nil); !errors.Is(err, noise.ErrHandshakeState) {
				t.Errorf("ClientFinish after a cert failure: %v", err)
			}
		} else if err != nil {
			t.Errorf("accept with the right chain: %v", err)
		}
	}

	// An empty payload in an accepted resume keeps the cached chain.
	in := p.initiator(t, p.info)
	r := p.responder(t, noise.IKAccept)
	msg1, _ := in.ResumeHello(ikPayload)
	r.ReadClientHello(msg1)
	msg2, _ := r.ServerHello(nil)
	if _, chain, err := in.ReadServerHello(msg2); err != nil || chain != nil || in.ServerCert() != p.info {
		t.Errorf("empty resume payload: %x %v", chain, err)
	}
}

func TestIKCallOrder(t *testing.T) {
	p := newIKPair(t)
	r := p.responder(t, noise.IKAccept)
	if _, _, _, err := r.Resumed(); !errors.Is(err, noise.ErrHandshakeState) {
		t.Errorf("Resumed first: %v", err)
	}
	in := p.initiator(t, p.info)
	msg1, _ := in.ResumeHello(ikPayload)
	if _, err := in.ClientHello(); !errors.Is(err, noise.ErrHandshakeState) {
		t.Errorf("ClientHello after ResumeHello: %v", err)
	}
	r.ReadClientHello(msg1)
	msg2, _ := r.ServerHello(p.chain)
	if _, _, _, err := r.ReadClientFinish(nil); !errors.Is(err, noise.ErrHandshakeState) {
		t.Errorf("ReadClientFinish after an IK accept: %v", err)
	}
	if _, _, _, err := r.Resumed(); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := r.Resumed(); !errors.Is(err, noise.ErrHandshakeState) {
		t.Errorf("second Resumed: %v", err)
	}
	in.ReadServerHello(msg2)
	in.ClientFinish(nil)
	if _, _, err := in.ClientFinish(nil); !errors.Is(err, noise.ErrHandshakeState) {
		t.Errorf("second ClientFinish: %v", err)
	}
}

// flips yields every message with one bit flipped, low and high bit of
// each byte.
func flips(m []byte, f func(i int, bit byte, m []byte)) {
	for i := range m {
		for _, bit := range []byte{0x01, 0x80} {
			c := bytes.Clone(m)
			c[i] ^= bit
			f(i, bit, c)
		}
	}
}

// TestIKFlips: no flipped bit in any IK or fallback message is accepted.
// A flipped IK client hello may legitimately make the server fall back
// (it cannot tell an altered hello from one for another key), but its
// payload must never be accepted, and the fallback must then fail or
// carry only what the client sent in message 3.
func TestIKFlips(t *testing.T) {
	v := loadVec(t)
	rs := v.serverStatic
	good := func(cached keys.PublicKey) (msg1, msg2, msg3 []byte) {
		in := v.ikInitiator(t, cached)
		r := v.ikResponder(t, rs, noise.IKAccept)
		msg1, _ = in.ResumeHello(ikPayload)
		if err := r.ReadClientHello(msg1); err != nil {
			t.Fatal(err)
		}
		msg2, _ = r.ServerHello(v.chain)
		if _, _, err := in.ReadServerHello(msg2); err != nil {
			t.Fatal(err)
		}
		msg3, _, _ = in.ClientFinish([]byte("xx login payload"))
		return msg1, msg2, msg3
	}

	t.Run("ik client hello", func(t *testing.T) {
		msg1, _, _ := good(rs.Public)
		flips(msg1, func(i int, bit byte, m []byte) {
			r := v.ikResponder(t, rs, noise.IKAccept)
			if err := r.ReadClientHello(m); err != nil {
				return
			}
			if r.Mode() == noise.ModeIK {
				t.Fatalf("byte %d bit %02x: IK accepted", i, bit)
			}
			// Fallback: finish it with the genuine client.
			in := v.ikInitiator(t, rs.Public)
			in.ResumeHello(ikPayload)
			msg2, err := r.ServerHello(v.chain)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := in.ReadServerHello(msg2); err != nil {
				return // the altered ephemeral broke the transcript
			}
			msg3, _, err := in.ClientFinish([]byte("xx login payload"))
			if err != nil {
				t.Fatal(err)
			}
			_, payload, _, err := r.ReadClientFinish(msg3)
			if err == nil && string(payload) != "xx login payload" {
				t.Fatalf("byte %d bit %02x: server got %q", i, bit, payload)
			}
		})
	})
	t.Run("ik server hello", func(t *testing.T) {
		msg1, msg2, _ := good(rs.Public)
		flips(msg2, func(i int, bit byte, m []byte) {
			in := v.ikInitiator(t, rs.Public)
			if _, err := in.ResumeHello(ikPayload); err != nil {
				t.Fatal(err)
			}
			_ = msg1
			if _, _, err := in.ReadServerHello(m); err == nil {
				t.Fatalf("byte %d bit %02x: accepted", i, bit)
			}
		})
	})
	stale := v.intermediate.Public
	t.Run("fallback server hello", func(t *testing.T) {
		_, msg2, _ := good(stale)
		flips(msg2, func(i int, bit byte, m []byte) {
			in := v.ikInitiator(t, stale)
			in.ResumeHello(ikPayload)
			if _, _, err := in.ReadServerHello(m); err == nil {
				t.Fatalf("byte %d bit %02x: accepted", i, bit)
			}
		})
	})
	t.Run("fallback client finish", func(t *testing.T) {
		msg1, _, msg3 := good(stale)
		flips(msg3, func(i int, bit byte, m []byte) {
			r := v.ikResponder(t, rs, noise.IKAccept)
			r.ReadClientHello(msg1)
			r.ServerHello(v.chain)
			if _, _, _, err := r.ReadClientFinish(m); err == nil {
				t.Fatalf("byte %d bit %02x: accepted", i, bit)
			}
		})
	})
}

func TestParseIKPolicy(t *testing.T) {
	for s, want := range map[string]noise.IKPolicy{"": noise.IKAccept, "accept": noise.IKAccept, "fallback": noise.IKFallback, "refuse": noise.IKRefuse} {
		if got, err := noise.ParseIKPolicy(s); err != nil || got != want {
			t.Errorf("ParseIKPolicy(%q) = %v, %v", s, got, err)
		}
		if s != "" && want.String() != s {
			t.Errorf("%v.String() = %q", want, want.String())
		}
	}
	if _, err := noise.ParseIKPolicy("maybe"); !errors.Is(err, noise.ErrBadConfig) {
		t.Errorf("ParseIKPolicy(maybe): %v", err)
	}
	if noise.ModeXXFallback.String() != "XXfallback" || noise.ModeIK.String() != "IK" || noise.ModeXX.String() != "XX" {
		t.Error("Mode strings")
	}
}
