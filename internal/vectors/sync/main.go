// Command sync copies the protocol JSON files from the project's shared
// protocol facts into the module's testdata/protocol. go generate runs it
// from internal/vectors; WALINK_SHARED_PROTOCOL names the source folder when
// it is not shared/protocol above the module.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/walinkdev/walink/internal/vectors"
)

func main() {
	src := vectors.SharedDir()
	if src == "" {
		fmt.Fprintln(os.Stderr, "sync: shared/protocol not found above the module; set WALINK_SHARED_PROTOCOL")
		os.Exit(1)
	}
	dst := vectors.Dir()
	if dst == "" {
		fmt.Fprintln(os.Stderr, "sync: testdata/protocol not found in the module")
		os.Exit(1)
	}
	for _, name := range vectors.Files {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			fmt.Fprintln(os.Stderr, "sync:", err)
			os.Exit(1)
		}
		if err := os.WriteFile(filepath.Join(dst, name), b, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "sync:", err)
			os.Exit(1)
		}
		fmt.Printf("%s: %d bytes from %s\n", name, len(b), src)
	}
}
