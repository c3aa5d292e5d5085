package bench

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"testing"

	"go.mau.fi/libsignal/ecc"
	"go.mau.fi/util/random"
	"go.mau.fi/whatsmeow/proto/waAdv"
	wmkeys "go.mau.fi/whatsmeow/util/keys"
	xpbkdf2 "golang.org/x/crypto/pbkdf2"
	"google.golang.org/protobuf/proto"

	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/pairing"
)

// The pair-code KDF parameters (PROTOCOL.md, pair code): PBKDF2-HMAC-SHA256,
// 2<<16 = 131072 iterations, 32-byte salt, 32-byte key.
const (
	pairCodeIter    = 131072
	pairCodeSaltLen = 32
)

var linkingBase32 = base32.NewEncoding("123456789ABCDEFGHJKLMNPQRSTVWXYZ")

// whatsmeowCompanionKey reproduces whatsmeow's unexported
// generateCompanionEphemeralKey step by step with the libraries it uses:
// a fresh key pair, salt, IV and code, x/crypto's PBKDF2, AES-CTR.
func whatsmeowCompanionKey() (*wmkeys.KeyPair, []byte, string) {
	kp := wmkeys.NewKeyPair()
	salt := random.Bytes(32)
	iv := random.Bytes(16)
	code := linkingBase32.EncodeToString(random.Bytes(5))
	key := xpbkdf2.Key([]byte(code), salt, 2<<16, 32, sha256.New)
	blk, _ := aes.NewCipher(key)
	enc := bytes.Clone(kp.Pub[:])
	cipher.NewCTR(blk, iv).XORKeyStream(enc, enc)
	out := make([]byte, 80)
	copy(out[0:32], salt)
	copy(out[32:48], iv)
	copy(out[48:80], enc)
	return kp, out, code
}

// walinkCompanionKey is the same production with walink: key pair, code,
// wrapped key.
func walinkCompanionKey() (keys.KeyPair, []byte, string, error) {
	kp, err := keys.NewKeyPair(rand.Reader)
	if err != nil {
		return kp, nil, "", err
	}
	code, err := pairing.NewCode(rand.Reader)
	if err != nil {
		return kp, nil, "", err
	}
	wrapped, err := pairing.WrapKey(rand.Reader, code, kp.Public)
	return kp, wrapped, code, err
}

// TestPairCodeInterop: each side unwraps the other's wrapped key with the
// code, so both do the same work.
func TestPairCodeInterop(t *testing.T) {
	kp, wrapped, code := whatsmeowCompanionKey()
	pub, err := pairing.UnwrapKey(code, wrapped)
	if err != nil || !bytes.Equal(pub.Bytes(), kp.Pub[:]) {
		t.Fatalf("walink unwrapping whatsmeow's key: %v", err)
	}
	wkp, wwrapped, wcode, err := walinkCompanionKey()
	if err != nil {
		t.Fatal(err)
	}
	key := xpbkdf2.Key([]byte(wcode), wwrapped[:32], 2<<16, 32, sha256.New)
	blk, _ := aes.NewCipher(key)
	dec := bytes.Clone(wwrapped[48:80])
	cipher.NewCTR(blk, wwrapped[32:48]).XORKeyStream(dec, dec)
	if !bytes.Equal(dec, wkp.Public.Bytes()) {
		t.Fatal("whatsmeow's steps do not unwrap walink's key")
	}
}

// BenchmarkPairCode: producing the companion_hello key material. The limit
// is one raw PBKDF2 (crypto/pbkdf2) with the same parameters, which is
// >99% of the work.
func BenchmarkPairCode(b *testing.B) {
	b.Run("op=produce/impl=pbkdf2", func(b *testing.B) {
		salt := make([]byte, pairCodeSaltLen)
		b.ReportAllocs()
		for b.Loop() {
			k, err := pbkdf2.Key(sha256.New, "1AB2C3DE", salt, pairCodeIter, 32)
			if err != nil {
				b.Fatal(err)
			}
			sinkBytes = k
		}
	})
	b.Run("op=produce/impl=walink", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, _, err := walinkCompanionKey(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("op=produce/impl=whatsmeow", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, w, _ := whatsmeowCompanionKey()
			sinkBytes = w
		}
	})
}

type pairFixture struct {
	companion keys.KeyPair
	wmCompan  *wmkeys.KeyPair
	advSecret [32]byte
	container []byte
}

func newPairFixture(tb testing.TB) pairFixture {
	var f pairFixture
	var err error
	if f.companion, err = keys.NewKeyPair(rand.Reader); err != nil {
		tb.Fatal(err)
	}
	f.wmCompan = wmkeys.NewKeyPairFromPrivateKey(f.companion.Private.Array())
	account, err := keys.NewKeyPair(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	rand.Read(f.advSecret[:])
	f.container, err = pairing.SignDeviceIdentity(rand.Reader, account, f.companion.Public, f.advSecret,
		pairing.DeviceIdentity{RawID: 12345678, Timestamp: 1752021890, KeyIndex: 3})
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

var (
	errHMAC = errors.New("hmac mismatch")
	errSig  = errors.New("account signature mismatch")
)

// whatsmeowVerifyPair reproduces whatsmeow's Client.handlePair crypto and
// parsing, without the store and the network: parse the HMAC container,
// check the HMAC, parse the signed identity and its details, verify the
// account signature, make the device signature, marshal the reply.
func whatsmeowVerifyPair(advSecret []byte, ikp *wmkeys.KeyPair, container []byte) ([]byte, error) {
	var hc waAdv.ADVSignedDeviceIdentityHMAC
	if err := proto.Unmarshal(container, &hc); err != nil {
		return nil, err
	}
	h := hmac.New(sha256.New, advSecret)
	if hc.GetAccountType() == waAdv.ADVEncryptionType_HOSTED {
		h.Write([]byte{6, 5})
	}
	h.Write(hc.Details)
	if !bytes.Equal(h.Sum(nil), hc.HMAC) {
		return nil, errHMAC
	}
	var di waAdv.ADVSignedDeviceIdentity
	if err := proto.Unmarshal(hc.Details, &di); err != nil {
		return nil, err
	}
	var details waAdv.ADVDeviceIdentity
	if err := proto.Unmarshal(di.Details, &details); err != nil {
		return nil, err
	}
	if len(di.AccountSignatureKey) != 32 || len(di.AccountSignature) != 64 {
		return nil, errSig
	}
	prefix := []byte{6, 0}
	if details.GetDeviceType() == waAdv.ADVEncryptionType_HOSTED {
		prefix = []byte{6, 5}
	}
	msg := concat(prefix, di.Details, ikp.Pub[:])
	if !ecc.VerifySignature(ecc.NewDjbECPublicKey([32]byte(di.AccountSignatureKey)), msg, [64]byte(di.AccountSignature)) {
		return nil, errSig
	}
	sig := ecc.CalculateSignature(ecc.NewDjbECPrivateKey(*ikp.Priv), concat([]byte{6, 1}, di.Details, ikp.Pub[:], di.AccountSignatureKey))
	di.DeviceSignature = sig[:]
	di.AccountSignatureKey = nil
	return proto.Marshal(&di)
}

func concat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// TestPairSuccessInterop: both verify the same container and make device
// signatures that the other side's check accepts.
func TestPairSuccessInterop(t *testing.T) {
	f := newPairFixture(t)
	v, err := pairing.VerifyPairSuccess(rand.Reader, f.advSecret, f.companion, f.container)
	if err != nil {
		t.Fatal(err)
	}
	reply, err := whatsmeowVerifyPair(f.advSecret[:], f.wmCompan, f.container)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pairing.VerifyDeviceSignature(reply, f.companion.Public, v.AccountKey, false); err != nil {
		t.Fatalf("walink rejects the whatsmeow-made device signature: %v", err)
	}
	if _, err := pairing.VerifyDeviceSignature(v.Reply, f.companion.Public, v.AccountKey, false); err != nil {
		t.Fatalf("walink rejects its own device signature: %v", err)
	}
	bad := bytes.Clone(f.container)
	bad[len(bad)-1] ^= 1
	if _, err := whatsmeowVerifyPair(f.advSecret[:], f.wmCompan, bad); err == nil {
		t.Fatal("reproduced whatsmeow path accepted a corrupted container")
	}
}

// BenchmarkPairSuccess: pair-success verification + device signature. The
// floor is one XEdDSA verify + one XEdDSA sign (measured as impl=xeddsa
// with walink's keys package).
func BenchmarkPairSuccess(b *testing.B) {
	f := newPairFixture(b)
	b.Run("op=verify+sign/impl=xeddsa", func(b *testing.B) {
		msg := make([]byte, 200)
		sig, err := f.companion.Private.Sign(rand.Reader, msg)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if !keys.Verify(f.companion.Public, msg, sig[:]) {
				b.Fatal("verify")
			}
			if _, err := f.companion.Private.Sign(rand.Reader, msg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("op=verify+sign/impl=walink", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := pairing.VerifyPairSuccess(rand.Reader, f.advSecret, f.companion, f.container); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("op=verify+sign/impl=whatsmeow", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := whatsmeowVerifyPair(f.advSecret[:], f.wmCompan, f.container); err != nil {
				b.Fatal(err)
			}
		}
	})
}
