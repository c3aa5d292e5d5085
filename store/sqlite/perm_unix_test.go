//go:build unix

package sqlite

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/walinkdev/walink/store/storetest"
)

func TestFileModes(t *testing.T) {
	s, path := tempStore(t)
	if err := s.PutDevice(t.Context(), storetest.NewDevice(t, 2, true)); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if m := st.Mode().Perm(); m != 0o600 {
			t.Errorf("%s has mode %#o, want 0600", filepath.Base(p), m)
		}
	}
}

func TestRefusesInsecurePaths(t *testing.T) {
	t.Run("file", func(t *testing.T) {
		_, path := tempStore(t)
		if err := os.Chmod(path, 0o620); err != nil {
			t.Fatal(err)
		}
		checkInsecure(t, path, path)
	})
	t.Run("wal", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "w.db")
		if err := os.WriteFile(path+"-wal", nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path+"-wal", 0o602); err != nil {
			t.Fatal(err)
		}
		checkInsecure(t, path, path+"-wal")
	})
	t.Run("dir", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "shared")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o1777); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "d.db")
		checkInsecure(t, path, dir)
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a refused Open created the file: %v", err)
		}
	})
	t.Run("readable only is allowed", func(t *testing.T) {
		_, path := tempStore(t)
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		openFile(t, path)
	})
}

func checkInsecure(t *testing.T, path, culprit string) {
	t.Helper()
	s, err := Open(t.Context(), path)
	if err == nil {
		s.Close()
		t.Fatal("Open succeeded on an insecure path")
	}
	var ie *InsecureFileError
	if !errors.As(err, &ie) || !errors.Is(err, ErrInsecure) {
		t.Fatalf("err = %v, want *InsecureFileError", err)
	}
	if ie.Path != culprit {
		t.Errorf("InsecureFileError.Path = %s, want %s", ie.Path, culprit)
	}
	if !strings.HasPrefix(err.Error(), "sqlite: ") {
		t.Errorf("message lacks the package prefix: %q", err)
	}
}

// TestPrivateGroupDir: a group-writable directory is accepted only when its
// group is the user's private group (as umask 002 makes them).
func TestPrivateGroupDir(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to chown the directory to another group")
	}
	dir := filepath.Join(t.TempDir(), "upg")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o770); err != nil {
		t.Fatal(err)
	}
	// root's primary group is "root": a private group.
	s, err := Open(t.Context(), filepath.Join(dir, "a.db"))
	if err != nil {
		t.Fatalf("private group directory refused: %v", err)
	}
	s.Close()
	if err := os.Chown(dir, 0, 100); err != nil {
		t.Skipf("chown: %v", err)
	}
	checkInsecure(t, filepath.Join(dir, "b.db"), dir)
}
