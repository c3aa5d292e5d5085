package passkey_test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/pairing/passkey"
)

// The confirmation code both sides show, from the worked example of
// PASSKEY.md §9.
func ExampleConfirmationCode() {
	h := func(s string) (b [32]byte) { hex.Decode(b[:], []byte(s)); return }
	fmt.Println(passkey.ConfirmationCode(
		h("f71aae2a6873cf7515fcbf5d19bac63453c01747e0bdbfd460b7bb585f862cd1"), // companion nonce
		h("eaea75081f0c661a4216c92243b562bcede90dadbd4f4c9d452d87e7e76dab44"), // primary ephemeral key
		h("bcb1b8fdc4aa9223d06e3fe288529a33ff6f0061e755d265f4cfe84c20e91892"), // primary nonce
	))
	// Output: PM4B-XG3Z
}

// A session embeds a Flow: every node goes through HandleNode, the API
// calls become SendResponse and Confirm, and the Output says what to send
// and emit.
func ExampleFlow() {
	noise, _ := keys.NewKeyPair(rand.Reader)
	identity, _ := keys.NewKeyPair(rand.Reader)
	ids := 0
	f, err := passkey.NewFlow(passkey.FlowConfig{
		Rand:  rand.Reader,
		NewID: func() string { ids++; return "52.136-" + strconv.Itoa(ids) },
		Noise: noise.Public, Identity: identity.Public,
	})
	if err != nil {
		panic(err)
	}
	now := time.Unix(1_790_000_000, 0)
	var qrAdvSecret [32]byte // the adv secret in the QR the phone scanned

	options := passkey.NewRequestOptions([]byte("a random challenge"), "whatsapp.com", 10*time.Minute, nil, "required")
	out, mine := f.HandleNode(now, passkey.PrologueRequest("1", "", options.JSON()), qrAdvSecret)
	req := out.Events[0].(passkey.RequestEvent)
	fmt.Println(mine, req.Options.RPID(), req.Deadline.Sub(now), out.AdvSecret != nil, f.Active())

	// The app's authenticator answered; the flow first asks for a ref.
	out, err = f.SendResponse(now, passkey.Assertion{
		ID: "AQID", RawID: []byte{1, 2, 3}, Type: "public-key",
		Response: passkey.AssertionResponse{ClientDataJSON: []byte("{}"), AuthenticatorData: make([]byte, 37), Signature: []byte{1}},
	})
	fmt.Println(err, out.Send[0].Children[0].Tag, f.Deadline().Sub(now))
	// Output:
	// true whatsapp.com 11m0s true true
	// <nil> ref 1m15s
}
