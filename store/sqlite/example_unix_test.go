//go:build unix

package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/walinkdev/walink/store/sqlite"
)

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
