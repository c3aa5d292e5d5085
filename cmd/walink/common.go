package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"github.com/walinkdev/walink"
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

// newFlagSet returns a flag set that reports errors instead of exiting.
// What the flag package prints while parsing (its error line and the
// usage) is held back: --help shows the usage on e.stderr, a bad flag
// becomes one line from parseFlags.
func newFlagSet(e env, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	out := &heldOutput{w: e.stderr}
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: walink %s %s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// heldOutput buffers a flag set's output until parseFlags decides whether
// to show it (--help) or drop it (an error, reported in one line).
type heldOutput struct {
	w   io.Writer
	buf strings.Builder
}

func (h *heldOutput) Write(p []byte) (int, error) { return h.buf.Write(p) }

// parseFlags parses args, turning flag errors into one-line usage exits
// and stray arguments into errors; --help prints the usage and exits 0.
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	h, held := fs.Output().(*heldOutput)
	if held {
		defer h.buf.Reset()
	}
	if err != nil {
		if err == flag.ErrHelp {
			if held {
				io.WriteString(h.w, h.buf.String())
			}
			return errHelp
		}
		return &exitError{code: exitUsage, err: fmt.Errorf("%s: %w (see 'walink %s --help')", fs.Name(), err, fs.Name())}
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

// pickDevice returns the device the CLI works with: the one a Client
// with no Config.Device would use (walink.DefaultDevice), so the commands
// and the client never disagree on it.
func pickDevice(ctx context.Context, st store.Store) (*store.Device, error) {
	return walink.DefaultDevice(ctx, st)
}

func closeQuietly(c io.Closer) { _ = c.Close() }
