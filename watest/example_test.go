package watest_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/walinkdev/walink/watest"
)

// Start a local WhatsApp, tune a knob, and look at a phone. A client would
// now connect to s.URL() trusting s.RootKey(), and the test would pass the
// QR string it shows to Phone.ScanQR.
func ExampleStart() {
	ctx := context.Background()
	sc := watest.DefaultScenario()
	sc.QRRefresh = false // link on the first scan
	s, err := watest.Start(ctx, watest.Config{Scenario: &sc})
	if err != nil {
		panic(err)
	}
	defer s.Close()

	fmt.Println(strings.HasPrefix(s.URL(), "ws://127.0.0.1:"), strings.HasSuffix(s.URL(), "/ws/chat"))
	fmt.Println(len(s.RootKey().String()))
	phone := s.Phone("15551234567")
	fmt.Println(phone.JID(), len(phone.Devices()))
	// Output:
	// true true
	// 64
	// 15551234567@s.whatsapp.net 0
}
