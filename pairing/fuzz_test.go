package pairing

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/waproto"
)

// FuzzParseQR: never panics, and parse → render → parse is stable.
// Seeds are in testdata/fuzz/FuzzParseQR.
func FuzzParseQR(f *testing.F) {
	f.Add("2@abc,Z21YagF8jmHzofyjzMUE2xOWCOq2xi4w6UQYTbPp+DM=,tQo1elRhrGG9Sh1PAyTow/Z1GsPDxW9BS+r834CGDA0=,0WZybhAhNUIdYspGJIJEU1zZlM2KodxwapCJBgIwH54=")
	f.Fuzz(func(t *testing.T, s string) {
		q, err := ParseQR(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, keys.ErrKeySize) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		r := q.String()
		q2, err := ParseQR(r)
		if err != nil {
			t.Fatalf("re-parse of %q: %v", r, err)
		}
		want := q
		if want.ClientType == "" {
			want.ClientType = ClientTypeChrome
		}
		if q2 != want {
			t.Fatalf("unstable: %#v → %q → %#v", q, r, q2)
		}
		if q2.String() != r {
			t.Fatalf("render unstable")
		}
	})
}

// fuzzKeys are fixed so the fuzzer explores parsing, not key generation.
var fuzzCompanion, fuzzAccount = func() (keys.KeyPair, keys.KeyPair) {
	c, _ := keys.KeyPairFromPrivate(bytes.Repeat([]byte{7}, 32))
	a, _ := keys.KeyPairFromPrivate(bytes.Repeat([]byte{9}, 32))
	return c, a
}()

var fuzzAdv = [32]byte{1, 2, 3}

// FuzzVerifyPairSuccess feeds arbitrary containers, and arbitrary signed
// identities wrapped with a valid HMAC so the fuzzer gets past the HMAC.
// It must never panic, must only accept signatures the account key made,
// and whatever it accepts the server check must accept too.
// Seeds are in testdata/fuzz/FuzzVerifyPairSuccess.
func FuzzVerifyPairSuccess(f *testing.F) {
	good, err := SignDeviceIdentity(rand.Reader, fuzzAccount, fuzzCompanion.Public, fuzzAdv, DeviceIdentity{RawID: 1, Timestamp: 2, KeyIndex: 3})
	if err != nil {
		f.Fatal(err)
	}
	var c waproto.ADVSignedDeviceIdentityHMAC
	if err := proto.Unmarshal(good, &c); err != nil {
		f.Fatal(err)
	}
	f.Add(good, false, false)
	f.Add(c.GetDetails(), true, false)
	f.Add(c.GetDetails(), true, true)
	f.Fuzz(func(t *testing.T, data []byte, wrap, hosted bool) {
		container := data
		if wrap {
			ct := waproto.ADVEncryptionType_E2EE
			m := &waproto.ADVSignedDeviceIdentityHMAC{Details: data}
			if hosted {
				ct = waproto.ADVEncryptionType_HOSTED
				m.AccountType = ct.Enum()
			}
			m.HMAC = advHMAC(&fuzzAdv, ct, data)
			container, _ = proto.Marshal(m)
		}
		ver, err := VerifyPairSuccess(rand.Reader, fuzzAdv, fuzzCompanion, container)
		if err != nil {
			if ver != nil {
				t.Fatal("result with error")
			}
			if code, text := ErrorReply(err); code == 0 || text == "" {
				t.Fatalf("no error reply for %v", err)
			}
			return
		}
		if !ver.AccountKey.Equal(fuzzAccount.Public) {
			// Only fuzzAccount's signatures exist in the corpus; anything else is a forgery.
			t.Fatalf("accepted a signature by another key %v", ver.AccountKey)
		}
		id, err := VerifyDeviceSignature(ver.Reply, fuzzCompanion.Public, ver.AccountKey, false)
		if err != nil || id != ver.Identity {
			t.Fatalf("server refuses an accepted reply: %v", err)
		}
		if _, err := VerifyDeviceSignature(ver.Account, fuzzCompanion.Public, ver.AccountKey, false); err != nil {
			t.Fatalf("server refuses the stored account: %v", err)
		}
	})
}

// FuzzUnwrapAndOpen: arbitrary wrapped keys and bundles never panic.
func FuzzUnwrapAndOpen(f *testing.F) {
	f.Add([]byte("12345678"), make([]byte, 80))
	f.Add([]byte("1234-5678"), make([]byte, 156))
	f.Fuzz(func(t *testing.T, code, data []byte) {
		if len(data) == WrappedKeySize {
			_, _ = UnwrapKey(string(code), data)
		}
		_, err := PrimaryOpenBundle(fuzzAccount.Private, fuzzAccount, fuzzCompanion.Public, fuzzCompanion.Public, data)
		if err == nil {
			t.Fatal("random bundle opened")
		}
	})
}
