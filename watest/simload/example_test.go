package simload_test

import (
	"context"
	"fmt"

	"github.com/walinkdev/walink/watest"
	"github.com/walinkdev/walink/watest/simload"
)

// Link two companions to a local WhatsApp and keep them online until the
// fleet is closed.
func ExampleLink() {
	ctx := context.Background()
	s, err := watest.Start(ctx, watest.Config{})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	fleet, rep, err := simload.Link(ctx, simload.Config{
		ServerURL: s.URL(), ServerRoot: s.RootKey(), ControlURL: s.ControlURL(),
		Devices: 2,
	})
	if err != nil {
		panic(err)
	}
	defer fleet.Close()
	fmt.Printf("linked %d, failed %d, online %d\n", rep.Linked, rep.Failed, fleet.Online())
	fmt.Println(len(s.Phone("15550000001").Devices()), "device on the second phone")
	// Output:
	// linked 2, failed 0, online 2
	// 1 device on the second phone
}
