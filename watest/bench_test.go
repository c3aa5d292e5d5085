package watest

import (
	"context"
	"strconv"
	"testing"

	"github.com/walinkdev/walink/binxml"
)

// BenchmarkLogin measures one returning companion: WebSocket, Noise XX,
// login payload, success, close.
func BenchmarkLogin(b *testing.B) {
	sc := DefaultScenario()
	sc.QRRefresh, sc.FirstStanzaDelayMS, sc.LingerMS = false, 0, 100
	s, err := Start(context.Background(), Config{Scenario: &sc})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	c := newCompanion(b)
	w, err := c.connect(ctx, s, c.registrationPayload())
	if err != nil {
		b.Fatal(err)
	}
	refs := w.pairDevice()
	res := scanAsync(ctx, s.Phone(testNumber), c.qr(refs[0]))
	c.answerPairSuccess(w, c.advSecret, false)
	if r := <-res; r.err != nil {
		b.Fatal(r.err)
	}
	w.close()
	payload := c.loginPayload()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w, err := c.connect(ctx, s, payload)
		if err != nil {
			b.Fatal(err)
		}
		if n := w.expect("success", func(n binxml.Node) bool { return true }); n.Tag != "success" {
			b.Fatalf("got %s", xmlString(n))
		}
		w.close()
	}
}

// BenchmarkQRLink measures a whole QR link: registration handshake,
// pair-device, scan, pair-success, device signature check, 515.
func BenchmarkQRLink(b *testing.B) {
	sc := DefaultScenario()
	sc.QRRefresh, sc.FirstStanzaDelayMS, sc.LingerMS = false, 0, 100
	s, err := Start(context.Background(), Config{Scenario: &sc})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// A phone has 255 device numbers; spread the links.
		phone := s.Phone(strconv.Itoa(15550000000 + i/200))
		c := newCompanion(b)
		w, err := c.connect(ctx, s, c.registrationPayload())
		if err != nil {
			b.Fatal(err)
		}
		refs := w.pairDevice()
		res := scanAsync(ctx, phone, c.qr(refs[0]))
		select {
		case r := <-res:
			b.Fatalf("iteration %d: scan: %v; events: %v", i, r.err, lastEvents(s, 8))
		case n := <-w.nodes:
			w.nodes <- n
		}
		c.answerPairSuccess(w, c.advSecret, false)
		if r := <-res; r.err != nil {
			b.Fatal(r.err)
		}
		w.close()
	}
}

func lastEvents(s *Server, n int) []string {
	evs := s.Events()
	var out []string
	for _, e := range evs[max(0, len(evs)-n):] {
		out = append(out, e.Dir+" "+e.XML+e.Note)
	}
	return out
}
