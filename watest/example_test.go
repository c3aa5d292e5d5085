package watest_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
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

// The knobs as command-line flags, as `walink sim` takes them.
func ExampleScenario_RegisterFlags() {
	sc := watest.DefaultScenario()
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	sc.RegisterFlags(fs)
	_ = fs.Parse([]string{"--qr-refresh=false", "--min-client-version", "2.3000.1031080782", "--fault-drop-after", "after-515"})
	fmt.Println(sc.QRRefresh, sc.MinClientVersion, sc.Faults.DropAfter, sc.Validate() == nil)
	// Output: false 2.3000.1031080782 after-515 true
}

// RunSim is `walink sim`: the first line on out is
// {"ws_url": …, "root_public_key": …, "control_url": …, "version_url": …};
// it serves until
// ctx ends.
func ExampleRunSim() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := watest.RunSim(ctx, os.Stdout, watest.Config{Addr: "127.0.0.1:0"}); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
}

// Gate an account behind the passkey step and let its phone stand in for
// the user's authenticator.
func ExamplePhone_Assert() {
	sc := watest.DefaultScenario()
	sc.Passkey = watest.PasskeyBoth // after a QR scan and after companion_finish
	s, err := watest.Start(context.Background(), watest.Config{Scenario: &sc})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	phone := s.Phone("15551234567")
	// The options a companion got in passkey_prologue_request.
	options := []byte(`{"challenge":"Y2hhbGxlbmdl","rpId":"whatsapp.com","userVerification":"required"}`)
	assertion, err := phone.Assert(options)
	fmt.Println(err, len(assertion) > 0, phone.Passkey().SignCount)
	// Output: <nil> true 1
}
