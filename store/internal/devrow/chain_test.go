package devrow

import (
	"bytes"
	"errors"
	"testing"

	"github.com/walinkdev/walink/store"
	"github.com/walinkdev/walink/store/storetest"
)

func TestChainRoundTrip(t *testing.T) {
	c := storetest.NewServerChain(t, 3)
	b := EncodeChain(c)
	if len(b) != chainLen || b[0] != ChainV1 {
		t.Fatalf("encoding: %d bytes, first %#x", len(b), b[0])
	}
	got, err := DecodeChain(b)
	if err != nil || storetest.ChainDiff(c, got) != "" {
		t.Fatalf("round trip: %v %s", err, storetest.ChainDiff(c, got))
	}
}

func TestChainSealedRoundTrip(t *testing.T) {
	c := storetest.NewServerChain(t, 4)
	d := storetest.NewDevice(t, 4, true)
	d.ServerChain = c
	for name, sec := range map[string]Secrets{"clear": {}, "sealed": {C: testCipher{}}} {
		r, err := Encode(d, sec)
		if err != nil {
			t.Fatal(err)
		}
		if name == "sealed" && (r.ServerChain[0] != SealedV1 || bytes.Contains(r.ServerChain, c.LeafKey.Bytes())) {
			t.Fatalf("sealed chain in the clear")
		}
		back, err := r.Decode(sec)
		if err != nil || storetest.ChainDiff(c, back.ServerChain) != "" {
			t.Fatalf("%s: %v", name, err)
		}
		if name == "sealed" {
			if _, err := r.Decode(Secrets{}); err == nil {
				t.Fatal("a sealed chain opened without the cipher")
			}
		}
	}
	d.ServerChain = store.ServerChain{}
	if r, err := Encode(d, Secrets{}); err != nil || r.ServerChain != nil {
		t.Fatalf("zero chain stored as %v (%v)", r.ServerChain, err)
	}
}

// testCipher is a reversible stand-in for seal.Cipher: XOR with the
// associated data's length byte, plus a marker, enough to tell sealed from
// clear and to bind nothing (the real ciphers are tested in store/seal).
type testCipher struct{}

func (testCipher) Seal(pt, aad []byte) ([]byte, error) {
	out := append([]byte{0xAA}, pt...)
	for i := 1; i < len(out); i++ {
		out[i] ^= byte(len(aad))
	}
	return out, nil
}

func (testCipher) Open(ct, aad []byte) ([]byte, error) {
	if len(ct) == 0 || ct[0] != 0xAA {
		return nil, errBadTestCipher
	}
	out := bytes.Clone(ct[1:])
	for i := range out {
		out[i] ^= byte(len(aad))
	}
	return out, nil
}

var errBadTestCipher = errors.New("test cipher: not sealed by it")

// FuzzDecodeChain: a stored chain column of any content decodes to a
// chain with a leaf key or fails; what decodes re-encodes to the same
// bytes.
func FuzzDecodeChain(f *testing.F) {
	f.Add(EncodeChain(storetest.NewServerChain(f, 1)))
	f.Add([]byte{ChainV1})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeChain(b)
		if err != nil {
			return
		}
		if c.IsZero() || !bytes.Equal(EncodeChain(c), b) {
			t.Fatalf("decoded %x to a chain that does not re-encode", b)
		}
	})
}
