// Package artifacts is where tests save what a person should be able to
// look at after a run (screenshots, terminal screen captures): the browser
// tests of serve and the terminal tests of cmd/walink use the same place.
package artifacts

import (
	"os"
	"path/filepath"
	"testing"
)

// Dir returns $WALINK_ARTIFACTS, else testdata/artifacts under the test's
// package directory (ignored by git), creating it.
func Dir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("WALINK_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("testdata", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
