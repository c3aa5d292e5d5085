package noise_test

import (
	"crypto/rand"
	"fmt"
	"time"

	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/noise"
)

// A client and a server handshake in memory; a real client sends msg1
// after AppendIntro and every message inside AppendFrame.
func Example() {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	must := func(k keys.KeyPair, err error) keys.KeyPair {
		if err != nil {
			panic(err)
		}
		return k
	}
	root, inter := must(keys.NewKeyPair(rand.Reader)), must(keys.NewKeyPair(rand.Reader))
	server, client := must(keys.NewKeyPair(rand.Reader)), must(keys.NewKeyPair(rand.Reader))
	chain, _ := noise.NewCertChain(rand.Reader, root.Private, inter, server.Public, noise.CertOptions{
		IntermediateSerial: 7, LeafSerial: 1, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
	})

	in, _ := noise.NewInitiator(noise.InitiatorConfig{
		Static: client, Rand: rand.Reader, RootKey: root.Public,
		Time: func() time.Time { return now },
	})
	r, _ := noise.NewResponder(noise.ResponderConfig{Static: server, Rand: rand.Reader})

	msg1, _ := in.ClientHello()
	_ = r.ReadClientHello(msg1)
	msg2, _ := r.ServerHello(chain)
	serverKey, _, err := in.ReadServerHello(msg2)
	fmt.Println("server verified:", err == nil && serverKey.Equal(server.Public))
	msg3, clientCipher, _ := in.ClientFinish([]byte("client payload"))
	clientKey, payload, serverCipher, _ := r.ReadClientFinish(msg3)
	fmt.Println("client key known:", clientKey.Equal(client.Public), string(payload))

	frame, _ := clientCipher.Seal(nil, []byte{0x00, 0xf8, 0x01})
	plain, _ := serverCipher.Open(nil, frame)
	fmt.Printf("%x\n", plain)
	// Output:
	// server verified: true
	// client key known: true client payload
	// 00f801
}

// The server's first read: the decoder strips the connection header and
// returns it, so it can be used as the prologue.
func ExampleDecoder() {
	wire, _ := noise.AppendIntro(nil, noise.HeaderV3, nil)
	wire, _ = noise.AppendFrame(wire, []byte("msg1"))
	d := noise.NewDecoder(noise.DecoderConfig{Intro: true})
	d.Write(wire[:5]) // partial
	body, _ := d.Next()
	fmt.Printf("%q\n", body)
	d.Write(wire[5:])
	body, _ = d.Next()
	hdr, _ := d.Header()
	fmt.Printf("%q % x\n", body, hdr)
	// Output:
	// ""
	// "msg1" 57 41 06 03
}

// A registered client resumes with IK using the chain it cached from its
// last handshake; the server accepts because the cached key is its own.
// Had the server rotated its key, ReadServerHello would have continued as
// XXfallback and ClientFinish would have returned a message 3 to send.
func ExampleInitiator_ResumeHello() {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	must := func(k keys.KeyPair, err error) keys.KeyPair {
		if err != nil {
			panic(err)
		}
		return k
	}
	root, inter := must(keys.NewKeyPair(rand.Reader)), must(keys.NewKeyPair(rand.Reader))
	server, client := must(keys.NewKeyPair(rand.Reader)), must(keys.NewKeyPair(rand.Reader))
	chain, _ := noise.NewCertChain(rand.Reader, root.Private, inter, server.Public, noise.CertOptions{
		IntermediateSerial: 7, LeafSerial: 1, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
	})
	cached, _ := noise.ParseCertChain(chain, root.Public, server.Public, now) // from the last XX

	in, _ := noise.NewInitiator(noise.InitiatorConfig{
		Static: client, Rand: rand.Reader, RootKey: root.Public,
		Time: func() time.Time { return now }, Resume: cached,
	})
	r, _ := noise.NewResponder(noise.ResponderConfig{Static: server, Rand: rand.Reader})

	msg1, _ := in.ResumeHello([]byte("login payload"))
	_ = r.ReadClientHello(msg1)
	msg2, _ := r.ServerHello(chain)
	_, _, err := in.ReadServerHello(msg2)
	msg3, _, _ := in.ClientFinish(nil)
	_, payload, _, _ := r.Resumed()
	fmt.Println(in.Mode(), r.Mode(), err == nil, msg3 == nil, string(payload))
	// Output:
	// IK IK true true login payload
}
