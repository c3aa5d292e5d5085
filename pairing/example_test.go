package pairing_test

import (
	"bytes"
	"crypto/rand"
	"fmt"

	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/pairing"
)

func ExampleParseQR() {
	q, err := pairing.ParseQR("2@ref,Z21YagF8jmHzofyjzMUE2xOWCOq2xi4w6UQYTbPp+DM=,tQo1elRhrGG9Sh1PAyTow/Z1GsPDxW9BS+r834CGDA0=,0WZybhAhNUIdYspGJIJEU1zZlM2KodxwapCJBgIwH54=")
	if err != nil {
		panic(err)
	}
	fmt.Println(q.Ref, q.Identity)
	// Output: 2@ref b50a357a5461ac61bd4a1d4f0324e8c3f6751ac3c3c56f414beafcdf80860c0d
}

func ExampleQR_String() {
	q := pairing.QR{Ref: "2@ref", ClientType: pairing.ClientTypeChrome}
	fmt.Println(q.String())
	// Output: https://wa.me/settings/linked_devices#2@ref,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,1
}

func ExampleNewCode() {
	// A fixed reader for the example; use crypto/rand.Reader for real codes.
	code, _ := pairing.NewCode(bytes.NewReader([]byte{0x00, 0x44, 0x32, 0x14, 0xc7}))
	shown, _ := pairing.FormatCode(code)
	fmt.Println(code, shown)
	// Output: 12345678 1234-5678
}

func ExampleNormalizeCode() {
	c, err := pairing.NormalizeCode("abcd-efgh")
	fmt.Println(c, err)
	// Output: ABCDEFGH <nil>
}

func ExampleValidatePlatformDisplay() {
	fmt.Println(pairing.ValidatePlatformDisplay("Chrome (Linux)"))
	fmt.Println(pairing.ValidatePlatformDisplay("Chrome (Plan 9)"))
	// Output:
	// <nil>
	// pairing: invalid platform display: unknown OS "Plan 9"
}

// The pair-code flow end to end, both roles.
func ExampleCompanionFinish() {
	newKP := func() keys.KeyPair { k, _ := keys.NewKeyPair(rand.Reader); return k }
	compEph, compID, primEph, primID := newKP(), newKP(), newKP(), newKP()

	code, _ := pairing.NewCode(rand.Reader)
	// companion_hello carries the companion's wrapped ephemeral key.
	w1, _ := pairing.WrapKey(rand.Reader, code, compEph.Public)
	// The phone, with the code typed in, unwraps it and answers with its own.
	seenByPhone, _ := pairing.UnwrapKey(code, w1)
	w2, _ := pairing.WrapKey(rand.Reader, code, primEph.Public)
	// primary_hello: the companion unwraps and builds the key bundle.
	seenByCompanion, _ := pairing.UnwrapKey(code, w2)
	bundle, advC, _ := pairing.CompanionFinish(rand.Reader, compEph.Private, compID, seenByCompanion, primID.Public)
	// companion_finish: the phone opens it and gets the same adv secret.
	advP, err := pairing.PrimaryOpenBundle(primEph.Private, primID, seenByPhone, compID.Public, bundle)
	fmt.Println(len(bundle), err, advC == advP)
	// Output: 156 <nil> true
}

// pair-success from both sides: the phone signs, the companion verifies and
// answers, the server checks the answer.
func ExampleVerifyPairSuccess() {
	account, _ := keys.NewKeyPair(rand.Reader)
	companion, _ := keys.NewKeyPair(rand.Reader)
	var adv [32]byte
	rand.Read(adv[:])

	container, _ := pairing.SignDeviceIdentity(rand.Reader, account, companion.Public, adv,
		pairing.DeviceIdentity{RawID: 1234567, Timestamp: 1700000000, KeyIndex: 3})
	v, err := pairing.VerifyPairSuccess(rand.Reader, adv, companion, container)
	if err != nil {
		code, text := pairing.ErrorReply(err) // send <error code text/>
		fmt.Println(code, text)
		return
	}
	id, err := pairing.VerifyDeviceSignature(v.Reply, companion.Public, account.Public, false)
	fmt.Println(v.Identity.KeyIndexAttr(), id.RawID, err)

	adv[0] ^= 1
	_, err = pairing.VerifyPairSuccess(rand.Reader, adv, companion, container)
	fmt.Println(pairing.ErrorReply(err))
	// Output:
	// 3 1234567 <nil>
	// 401 hmac-mismatch
}
