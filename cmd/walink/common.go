package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/store"
	"github.com/walinkdev/walink/store/seal"
	"github.com/walinkdev/walink/store/sqlite"
)

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// newFlagSet returns a flag set that prints its usage to e.stderr and
// reports errors instead of exiting.
func newFlagSet(e env, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: walink %s %s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, turning flag errors into usage exits and stray
// arguments into errors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return errHelp
		}
		return &exitError{code: exitUsage, err: fmt.Errorf("%s: %w", fs.Name(), err)}
	}
	if fs.NArg() > 0 {
		return fail(exitUsage, "%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}

// defaultStorePath is $WALINK_STORE, else walink/walink.db in the user
// config directory.
func defaultStorePath(e env) string {
	if p := e.getenv("WALINK_STORE"); p != "" {
		return p
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "walink.db"
	}
	return filepath.Join(dir, "walink", "walink.db")
}

// openStore opens the SQLite store, creating its directory (0700) if
// needed. Private keys are sealed at rest when the environment names a key
// or passphrase (WALINK_STORE_KEY, WALINK_STORE_KEY_FILE,
// WALINK_STORE_PASSPHRASE, WALINK_STORE_PASSPHRASE_FILE; see store/seal).
func openStore(ctx context.Context, path string) (store.Store, error) {
	c, err := seal.FromEnv(os.Getenv, rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("store encryption key: %w", err)
	}
	var opts []sqlite.Option
	if c != nil {
		opts = append(opts, sqlite.WithCipher(c))
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
	}
	st, err := sqlite.Open(ctx, path, opts...)
	if err != nil {
		return nil, fmt.Errorf("opening store %s: %w", path, err)
	}
	return st, nil
}

// parseRoot parses --server-root (64 hex characters).
func parseRoot(s string) (keys.PublicKey, error) {
	if s == "" {
		return keys.PublicKey{}, nil
	}
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != keys.Size {
		return keys.PublicKey{}, fail(exitUsage, "--server-root must be 64 hex characters")
	}
	return keys.PublicKeyFromBytes(b)
}

// pickDevice returns the device the CLI works with: the first linked one,
// else the first paired but unconfirmed one (store.Device.Unconfirmed: the
// client logs in with it to learn whether the server linked it), else the
// first unpaired one, else nil.
func pickDevice(ctx context.Context, st store.Store) (*store.Device, error) {
	devs, err := st.Devices(ctx)
	if err != nil {
		return nil, err
	}
	var unconfirmed, unpaired *store.Device
	for _, d := range devs {
		switch {
		case d.Linked():
			return d, nil
		case d.Paired():
			if unconfirmed == nil {
				unconfirmed = d
			}
		case unpaired == nil:
			unpaired = d
		}
	}
	if unconfirmed != nil {
		return unconfirmed, nil
	}
	return unpaired, nil
}

func closeQuietly(c io.Closer) { _ = c.Close() }
