package vectors

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestCopiesMatchShared: the module's copies equal the shared protocol
// facts whenever those are beside the checkout (go generate resyncs them).
func TestCopiesMatchShared(t *testing.T) {
	dir := Dir()
	if dir == "" {
		t.Fatal("testdata/protocol not found in the module")
	}
	src := SharedDir()
	if src == "" {
		t.Skip("shared/protocol not beside this clone: nothing to compare the copies with")
	}
	for _, name := range Files {
		want, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("testdata/protocol/%s differs from %s: run go generate ./internal/vectors", name, filepath.Join(src, name))
		}
	}
}

// TestFoundWithoutShared: the copies are found from a package folder with
// no shared folder anywhere above (a lone clone).
func TestFoundWithoutShared(t *testing.T) {
	t.Setenv("WALINK_PROTOCOL_DIR", "")
	t.Setenv("WALINK_SHARED_PROTOCOL", "")
	d := Dir()
	if d == "" || filepath.Base(d) != "protocol" {
		t.Fatalf("Dir() = %q", d)
	}
	m := Load(t)
	if _, ok := m["noise_xx"]; !ok {
		t.Fatal("vectors.json has no noise_xx group")
	}
}
