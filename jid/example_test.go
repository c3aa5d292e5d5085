package jid_test

import (
	"fmt"

	"github.com/walinkdev/walink/jid"
)

func ExampleParse() {
	j, err := jid.Parse("15551234567:3@s.whatsapp.net")
	if err != nil {
		panic(err)
	}
	fmt.Println(j.User, j.Device, j.Server)
	fmt.Println(j.ToNonAD())
	// Output:
	// 15551234567 3 s.whatsapp.net
	// 15551234567@s.whatsapp.net
}
