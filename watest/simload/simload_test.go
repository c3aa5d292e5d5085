package simload_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/watest"
	"github.com/walinkdev/walink/watest/simload"
)

// TestLinkFleet links a few companions over real sockets, keeps some
// online, and checks the server agrees: every phone has its device with
// all pre-keys, and the online ones answer a server ping.
func TestLinkFleet(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sc := watest.DefaultScenario()
	sc.FirstStanzaDelayMS = 0
	s, err := watest.Start(ctx, watest.Config{Scenario: &sc})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var progress []simload.Progress
	f, rep, err := simload.Link(ctx, simload.Config{
		ServerURL: s.URL(), ServerRoot: s.RootKey(), ControlURL: s.ControlURL(),
		Devices: 6, Online: 4, Parallel: 3, Rate: 100, PreKeys: 50, Keepalive: 50 * time.Millisecond,
		FirstNumber: 15557000000,
		Progress:    func(p simload.Progress) { progress = append(progress, p) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if rep.Linked != 6 || rep.Failed != 0 || rep.Online != 4 || rep.P50 <= 0 || rep.P50 > rep.P90 || rep.P90 > rep.P99 || rep.P99 > rep.Max {
		t.Fatalf("report %+v", rep)
	}
	if last := progress[len(progress)-1]; last.Linked != 6 {
		t.Fatalf("last progress %+v", last)
	}
	for i := 0; i < 6; i++ {
		number := strconv.Itoa(15557000000 + i)
		devs := s.Phone(number).Devices()
		if len(devs) != 1 || devs[0].Platform != "Chrome (walink-sim-load)" {
			t.Fatalf("phone %s: %+v", number, devs)
		}
		err := s.Ping(ctx, devs[0].JID)
		if online := i < 4; online != (err == nil) {
			t.Fatalf("ping %s (online %v): %v", devs[0].JID, online, err)
		}
	}
	// Keepalive pings reach the server.
	if _, err := s.AwaitNode(ctx, func(e watest.Event) bool {
		return e.Dir == watest.DirIn && e.Tag == "iq" && e.Node.Attr("xmlns") == "w:p"
	}); err != nil {
		t.Fatal(err)
	}
	if got := f.Online(); got != 4 {
		t.Fatalf("online %d", got)
	}
	// A kicked companion counts as dropped.
	if err := s.Kick(ctx, jid.NewAD("15557000000", 1, jid.DefaultUserServer), "replaced"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for f.Online() != 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := f.Online(); got != 3 {
		t.Fatalf("online after kick %d", got)
	}
}
