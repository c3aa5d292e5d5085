package noise_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/noise"
	"github.com/walinkdev/walink/waproto"
)

func certReason(t *testing.T, err error) noise.CertReason {
	t.Helper()
	if err == nil {
		return 0
	}
	var ce *noise.CertError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v is not a *CertError", err)
	}
	if !errors.Is(err, noise.ErrBadCertificate) {
		t.Fatalf("error %v does not wrap ErrBadCertificate", err)
	}
	return ce.Reason
}

func TestVerifyVectorChain(t *testing.T) {
	v := loadVec(t)
	info, err := noise.ParseCertChain(v.chain, v.root.Public, v.serverStatic.Public, vecTime)
	if err != nil {
		t.Fatal(err)
	}
	if !info.IntermediateKey.Equal(v.intermediate.Public) || !info.LeafKey.Equal(v.serverStatic.Public) {
		t.Errorf("info keys = %v %v", info.IntermediateKey, info.LeafKey)
	}
	if info.IntermediateSerial != 1 || info.LeafSerial != 2 {
		t.Errorf("serials = %d %d", info.IntermediateSerial, info.LeafSerial)
	}
	if info.LeafNotAfter.Unix() != 1_900_000_000 || info.IntermediateNotAfter.Unix() != 2_000_000_000 || info.LeafNotBefore.Unix() != 1_700_000_000 {
		t.Errorf("windows = %+v", info)
	}

	cases := []struct {
		name   string
		root   keys.PublicKey
		static keys.PublicKey
		now    time.Time
		want   noise.CertReason
	}{
		{"ok", v.root.Public, v.serverStatic.Public, vecTime, 0},
		{"ok at leaf notBefore", v.root.Public, v.serverStatic.Public, time.Unix(1_700_000_000, 0), 0},
		{"ok at leaf notAfter", v.root.Public, v.serverStatic.Public, time.Unix(1_900_000_000, 999), 0},
		{"real root", noise.WhatsAppRootKey, v.serverStatic.Public, vecTime, noise.CertBadRootSignature},
		{"other root", v.intermediate.Public, v.serverStatic.Public, vecTime, noise.CertBadRootSignature},
		{"leaf not static", v.root.Public, v.clientStatic.Public, vecTime, noise.CertLeafKeyMismatch},
		{"leaf expired", v.root.Public, v.serverStatic.Public, time.Unix(1_900_000_001, 0), noise.CertExpired},
		{"both expired", v.root.Public, v.serverStatic.Public, time.Unix(2_100_000_000, 0), noise.CertExpired},
		{"not yet valid", v.root.Public, v.serverStatic.Public, time.Unix(1_699_999_999, 0), noise.CertNotYetValid},
		{"before 1970", v.root.Public, v.serverStatic.Public, time.Unix(-5, 0), noise.CertNotYetValid},
	}
	for _, c := range cases {
		err := noise.VerifyCertChain(v.chain, c.root, c.static, c.now)
		if got := certReason(t, err); got != c.want {
			t.Errorf("%s: reason %v (%v), want %v", c.name, got, err, c.want)
		}
	}
}

func TestVerifyChainFlippedBits(t *testing.T) {
	v := loadVec(t)
	for i := range v.chain {
		for _, bit := range []byte{0x01, 0x40} {
			c := bytes.Clone(v.chain)
			c[i] ^= bit
			err := noise.VerifyCertChain(c, v.root.Public, v.serverStatic.Public, vecTime)
			if err == nil {
				t.Fatalf("byte %d bit %02x: accepted", i, bit)
			}
			certReason(t, err)
		}
	}
}

// forge builds a chain from explicit details, signing properly, so each
// semantic check can be hit on its own.
func forge(t *testing.T, root keys.PrivateKey, inter keys.KeyPair, id, ld *waproto.CertChain_NoiseCertificate_Details) []byte {
	t.Helper()
	sign := func(k keys.PrivateKey, d *waproto.CertChain_NoiseCertificate_Details) *waproto.CertChain_NoiseCertificate {
		b, err := proto.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := k.Sign(rand.Reader, b)
		if err != nil {
			t.Fatal(err)
		}
		return &waproto.CertChain_NoiseCertificate{Details: b, Signature: sig[:]}
	}
	b, err := proto.Marshal(&waproto.CertChain{Leaf: sign(inter.Private, ld), Intermediate: sign(root, id)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVerifyChainSemantics(t *testing.T) {
	root, inter, leaf := mustKP(t), mustKP(t), mustKP(t)
	now := time.Unix(1_800_000_000, 0)
	det := func(serial, issuer uint32, key keys.PublicKey) *waproto.CertChain_NoiseCertificate_Details {
		return &waproto.CertChain_NoiseCertificate_Details{
			Serial: proto.Uint32(serial), IssuerSerial: proto.Uint32(issuer), Key: key.Bytes(),
			NotBefore: proto.Uint64(1_700_000_000), NotAfter: proto.Uint64(1_900_000_000),
		}
	}
	check := func(name string, chain []byte, want noise.CertReason) {
		t.Helper()
		err := noise.VerifyCertChain(chain, root.Public, leaf.Public, now)
		if got := certReason(t, err); got != want {
			t.Errorf("%s: reason %v (%v), want %v", name, got, err, want)
		}
	}
	check("ok", forge(t, root.Private, inter, det(7, 0, inter.Public), det(3, 7, leaf.Public)), 0)
	check("issuer mismatch", forge(t, root.Private, inter, det(7, 0, inter.Public), det(3, 8, leaf.Public)), noise.CertIssuerMismatch)
	check("intermediate issuer", forge(t, root.Private, inter, det(7, 1, inter.Public), det(3, 7, leaf.Public)), noise.CertIntermediateIssuer)
	// The intermediate certifies a different key than the one that signed
	// the leaf.
	check("leaf signed by other key", forge(t, root.Private, inter, det(7, 0, leaf.Public), det(3, 7, leaf.Public)), noise.CertBadSignature)
	check("leaf key", forge(t, root.Private, inter, det(7, 0, inter.Public), det(3, 7, inter.Public)), noise.CertLeafKeyMismatch)
	noWindow := det(3, 7, leaf.Public)
	noWindow.NotAfter = nil
	check("no notAfter", forge(t, root.Private, inter, det(7, 0, inter.Public), noWindow), noise.CertExpired)
	check("empty", nil, noise.CertMalformed)
	check("garbage", []byte{0xff, 0xff}, noise.CertMalformed)
	only, _ := proto.Marshal(&waproto.CertChain{Leaf: &waproto.CertChain_NoiseCertificate{Details: []byte{1}, Signature: make([]byte, 64)}})
	check("no intermediate", only, noise.CertMalformed)
	short, _ := proto.Marshal(&waproto.CertChain{
		Leaf:         &waproto.CertChain_NoiseCertificate{Details: []byte{1}, Signature: make([]byte, 64)},
		Intermediate: &waproto.CertChain_NoiseCertificate{Details: []byte{1}, Signature: make([]byte, 63)},
	})
	check("short signature", short, noise.CertMalformed)
}

func TestNewCertChain(t *testing.T) {
	root, inter, leaf := mustKP(t), mustKP(t), mustKP(t)
	nb := time.Unix(1_700_000_000, 0)
	chain, err := noise.NewCertChain(rand.Reader, root.Private, inter, leaf.Public, noise.CertOptions{
		IntermediateSerial: 7, LeafSerial: 42, NotBefore: nb, NotAfter: nb.Add(24 * time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	info, err := noise.ParseCertChain(chain, root.Public, leaf.Public, nb.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if info.IntermediateSerial != 7 || info.LeafSerial != 42 || !info.LeafNotBefore.Equal(nb) {
		t.Errorf("info = %+v", info)
	}
	if err := noise.VerifyCertChain(chain, root.Public, leaf.Public, nb.Add(25*time.Hour)); certReason(t, err) != noise.CertExpired {
		t.Errorf("after window: %v", err)
	}
	if _, err := noise.NewCertChain(rand.Reader, root.Private, inter, leaf.Public, noise.CertOptions{}); err == nil {
		t.Error("empty window accepted")
	}
}

// The initiator refuses a server whose chain leads to another root, with a
// *CertError, and cannot continue.
func TestInitiatorRefusesForeignRoot(t *testing.T) {
	v := loadVec(t)
	eph := v.clientEph
	in, err := noise.NewInitiator(noise.InitiatorConfig{
		Static: v.clientStatic, Ephemeral: &eph, Time: func() time.Time { return vecTime },
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.ClientHello(); err != nil {
		t.Fatal(err)
	}
	_, _, err = in.ReadServerHello(v.msg2)
	if certReason(t, err) != noise.CertBadRootSignature {
		t.Fatalf("got %v", err)
	}
	if _, _, err := in.ClientFinish(nil); !errors.Is(err, noise.ErrHandshakeState) {
		t.Fatalf("ClientFinish after refusal: %v", err)
	}
}

func TestCertErrorText(t *testing.T) {
	err := &noise.CertError{Reason: noise.CertExpired, Cert: "leaf"}
	if got := err.Error(); got != "noise: bad server certificate: certificate expired (leaf)" {
		t.Errorf("Error() = %q", got)
	}
	if s := noise.CertReason(99).String(); s != "CertReason(99)" {
		t.Errorf("String() = %q", s)
	}
}
