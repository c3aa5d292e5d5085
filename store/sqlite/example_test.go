package sqlite_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/store"
	"github.com/walinkdev/walink/store/sqlite"
)

func ExampleOpen() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "walink-example") // mode 0700
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	st, err := sqlite.Open(ctx, filepath.Join(dir, "walink.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()

	// A new companion: keys first, pairing fills in the rest later.
	noise, err := keys.NewKeyPair(rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	if err := st.PutDevice(ctx, &store.Device{NoiseKey: noise, NextPreKeyID: 1}); err != nil {
		log.Fatal(err)
	}
	devs, err := st.Devices(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(devs), devs[0].Paired())

	_, err = st.Device(ctx, keys.PublicKey{})
	fmt.Println(errors.Is(err, store.ErrNotFound))
	// Output:
	// 1 false
	// true
}
