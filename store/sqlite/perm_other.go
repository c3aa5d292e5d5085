//go:build !unix

package sqlite

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
)

// prepareFile creates the database file if needed. Outside Unix the
// permission bits do not describe who may write (Windows uses ACLs), so no
// check is made: keep the file in a directory only you can write, such as
// your profile's AppData.
func prepareFile(path string, log *slog.Logger) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		if err := f.Close(); err != nil {
			return fmt.Errorf("sqlite: open: %w", err)
		}
	case errors.Is(err, fs.ErrExist):
	default:
		return fmt.Errorf("sqlite: open: %w", err)
	}
	log.Debug("sqlite: file permissions are not checked on this system", "path", path)
	return nil
}
