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

func ExampleOpen_insecure() {
	dir, err := os.MkdirTemp("", "walink-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "walink.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		log.Fatal(err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		log.Fatal(err)
	}

	_, err = sqlite.Open(context.Background(), path)
	var ie *sqlite.InsecureFileError
	fmt.Println(errors.As(err, &ie), errors.Is(err, sqlite.ErrInsecure), fmt.Sprintf("%#o", ie.Mode))
	// Output: true true 0666
}
