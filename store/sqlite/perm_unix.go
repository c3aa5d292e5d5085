//go:build unix

package sqlite

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// prepareFile makes sure the database file exists with owner-only
// permissions before SQLite opens it, and refuses paths others could tamper
// with.
//
// SQLite itself would create the file with 0644 less the umask, readable by
// everyone, so the file is created here first with 0600; SQLite then gives
// the -wal and -shm files it creates the same mode as the database file.
//
// The directory matters as much as the file: whoever can write the
// directory can swap the file, or plant a -wal file that SQLite would replay
// into it. That holds even for sticky directories like /tmp, which only stop
// others deleting files that already exist.
func prepareFile(path string, log *slog.Logger) error {
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("sqlite: open: %w", err)
	}
	if insecure(st.Mode()) && !privateGroupDir(st, log, dir) {
		return &InsecureFileError{Path: dir, Mode: uint32(st.Mode().Perm()), Dir: true}
	}

	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		if err := f.Close(); err != nil {
			return fmt.Errorf("sqlite: open: %w", err)
		}
	case errors.Is(err, fs.ErrExist):
		// An existing file: check it below.
	default:
		return fmt.Errorf("sqlite: open: %w", err)
	}

	for _, p := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
		st, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) && p != path {
			continue
		}
		if err != nil {
			return fmt.Errorf("sqlite: open: %w", err)
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("sqlite: open: %s is not a regular file", p)
		}
		if insecure(st.Mode()) {
			return &InsecureFileError{Path: p, Mode: uint32(st.Mode().Perm())}
		}
		if st.Mode().Perm()&0o044 != 0 {
			// Readable keys are a leak, but a deliberate 0640 for a backup
			// group is plausible, so this only warns.
			log.Warn("sqlite: database file is readable by group or others", "path", p, "mode", fmt.Sprintf("%#o", st.Mode().Perm()))
		}
	}
	return nil
}

// insecure reports whether group or others may write.
func insecure(m fs.FileMode) bool { return m.Perm()&0o022 != 0 }

// privateGroupDir allows one group-writable directory: one whose group is
// the user's private group (same name as the user, the user's primary
// group), as the umask 002 of distributions with user private groups makes
// them. Nobody else is in such a group, so group-write adds no writer.
func privateGroupDir(st fs.FileInfo, log *slog.Logger, dir string) bool {
	if st.Mode().Perm()&0o002 != 0 {
		return false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok || int(sys.Gid) != os.Getgid() || int(sys.Uid) != os.Getuid() {
		return false
	}
	u, err := user.Current()
	if err != nil {
		return false
	}
	g, err := user.LookupGroupId(strconv.Itoa(int(sys.Gid)))
	if err != nil || g.Name != u.Username || u.Gid != g.Gid {
		return false
	}
	log.Debug("sqlite: directory is group-writable, but only by the user's private group", "dir", dir)
	return true
}
