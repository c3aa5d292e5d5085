package noise_test

import (
	"bytes"
	"testing"

	"github.com/walinkdev/walink/noise"
)

// FuzzFrameDecoder feeds arbitrary bytes in arbitrary pieces. The decoder
// must not panic, and re-encoding what it returns must give back exactly
// the bytes it consumed (decode → encode → decode stability).
func FuzzFrameDecoder(f *testing.F) {
	f.Add([]byte{0, 0, 1, 0xaa, 0, 0, 0}, uint8(1), false)
	f.Add([]byte("WA\x06\x03\x00\x00\x02hi"), uint8(3), true)
	f.Add([]byte("ED\x00\x01\x00\x00\x01zWA\x06\x02\x00\x00\x00"), uint8(2), true)
	f.Add([]byte{0xff, 0xff, 0xff}, uint8(0), false)
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8, intro bool) {
		d := noise.NewDecoder(noise.DecoderConfig{Intro: intro, MaxFrame: 1 << 16})
		step := int(chunk) + 1
		var bodies [][]byte
		var failed bool
		for i := 0; i < len(data) && !failed; i += step {
			d.Write(data[i:min(i+step, len(data))])
			for {
				b, err := d.Next()
				if err != nil {
					failed = true
					break
				}
				if b == nil {
					break
				}
				bodies = append(bodies, bytes.Clone(b))
			}
		}
		if failed {
			return
		}
		var re []byte
		if intro {
			if h, ok := d.Header(); ok {
				re, _ = noise.AppendIntro(nil, h, d.RoutingInfo())
			}
		}
		for _, b := range bodies {
			re, _ = noise.AppendFrame(re, b)
		}
		if consumed := len(data) - d.Buffered(); !bytes.Equal(re, data[:consumed]) {
			t.Fatalf("re-encoded %x, consumed %x", re, data[:consumed])
		}
	})
}

// FuzzReadServerHello: any message 2 is refused or accepted without a
// panic; the vector message (seeded) is the only kind that succeeds.
func FuzzReadServerHello(f *testing.F) {
	v := loadVec(f)
	f.Add(v.msg2)
	f.Add(v.msg1)
	f.Add([]byte{0x1a, 0x00})
	f.Fuzz(func(t *testing.T, msg []byte) {
		in := v.initiator(t)
		if _, err := in.ClientHello(); err != nil {
			t.Fatal(err)
		}
		rs, _, err := in.ReadServerHello(msg)
		if err == nil && !rs.Equal(v.serverStatic.Public) {
			t.Fatalf("accepted a server hello with static %v", rs)
		}
	})
}

// FuzzReadClientFinish: any message 3 after the vector's messages 1 and 2
// is refused or accepted without a panic.
func FuzzReadClientFinish(f *testing.F) {
	v := loadVec(f)
	f.Add(v.msg3)
	f.Add(v.msg2)
	f.Add([]byte{0x22, 0x00})
	f.Fuzz(func(t *testing.T, msg []byte) {
		r := v.responder(t)
		if err := r.ReadClientHello(v.msg1); err != nil {
			t.Fatal(err)
		}
		if _, err := r.ServerHello(v.chain); err != nil {
			t.Fatal(err)
		}
		cs, _, _, err := r.ReadClientFinish(msg)
		if err == nil && !cs.Equal(v.clientStatic.Public) {
			t.Fatalf("accepted a client finish with static %v", cs)
		}
	})
}

// FuzzVerifyCertChain: arbitrary chains never panic and never verify.
func FuzzVerifyCertChain(f *testing.F) {
	v := loadVec(f)
	f.Add(v.chain)
	f.Fuzz(func(t *testing.T, chain []byte) {
		err := noise.VerifyCertChain(chain, v.root.Public, v.serverStatic.Public, vecTime)
		if err == nil && !bytes.Equal(chain, v.chain) {
			// Another valid encoding would need a forged signature over
			// changed details; only unknown trailing fields could pass.
			t.Logf("accepted a different chain encoding %x", chain)
		}
	})
}

// FuzzReadIKClientHello: any client hello to an IK-accepting responder is
// refused, falls back, or (only for the genuine one) resumes with the
// vector client's key and payload; never a panic.
func FuzzReadIKClientHello(f *testing.F) {
	v := loadVec(f)
	in := v.ikInitiator(f, v.serverStatic.Public)
	msg1, err := in.ResumeHello(ikPayload)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(msg1)
	f.Add(v.msg1)
	f.Add([]byte{0x12, 0x03, 0x12, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, msg []byte) {
		r := v.ikResponder(t, v.serverStatic, noise.IKAccept)
		if err := r.ReadClientHello(msg); err != nil || r.Mode() != noise.ModeIK {
			return
		}
		if _, err := r.ServerHello(v.chain); err != nil {
			t.Fatal(err)
		}
		cs, payload, _, err := r.Resumed()
		if err != nil {
			t.Fatal(err)
		}
		if !cs.Equal(v.clientStatic.Public) || !bytes.Equal(payload, ikPayload) {
			t.Fatalf("resumed a forged hello: %v %q", cs, payload)
		}
	})
}

// FuzzReadIKServerHello: any answer to a resume is refused or accepted
// without a panic; an accepted one names the cached server key.
func FuzzReadIKServerHello(f *testing.F) {
	v := loadVec(f)
	in := v.ikInitiator(f, v.serverStatic.Public)
	r := v.ikResponder(f, v.serverStatic, noise.IKAccept)
	msg1, _ := in.ResumeHello(ikPayload)
	if err := r.ReadClientHello(msg1); err != nil {
		f.Fatal(err)
	}
	msg2, err := r.ServerHello(v.chain)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(msg2)
	f.Add(v.msg2)
	f.Fuzz(func(t *testing.T, msg []byte) {
		in := v.ikInitiator(t, v.serverStatic.Public)
		if _, err := in.ResumeHello(ikPayload); err != nil {
			t.Fatal(err)
		}
		rs, _, err := in.ReadServerHello(msg)
		if err == nil && !rs.Equal(v.serverStatic.Public) {
			t.Fatalf("accepted a server hello with static %v", rs)
		}
	})
}
