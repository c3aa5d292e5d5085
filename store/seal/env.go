package seal

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
)

// Environment variables read by FromEnv.
const (
	EnvKey            = "WALINK_STORE_KEY"
	EnvKeyFile        = "WALINK_STORE_KEY_FILE"
	EnvPassphrase     = "WALINK_STORE_PASSPHRASE"
	EnvPassphraseFile = "WALINK_STORE_PASSPHRASE_FILE"
)

// FromEnv returns the Cipher the environment asks for (see the package
// doc), or nil and no error when none of the variables is set. getenv is
// usually os.Getenv; rand is crypto/rand.Reader in production.
func FromEnv(getenv func(string) string, rand io.Reader) (Cipher, error) {
	set := 0
	for _, v := range []string{EnvKey, EnvKeyFile, EnvPassphrase, EnvPassphraseFile} {
		if getenv(v) != "" {
			set++
		}
	}
	switch {
	case set == 0:
		return nil, nil
	case set > 1:
		return nil, ErrAmbiguousKey
	}
	switch {
	case getenv(EnvKey) != "":
		key, err := ParseKey([]byte(getenv(EnvKey)))
		if err != nil {
			return nil, fmt.Errorf("%w (in %s)", err, EnvKey)
		}
		return NewAESGCM(key, rand)
	case getenv(EnvKeyFile) != "":
		b, err := readSecretFile(getenv(EnvKeyFile))
		if err != nil {
			return nil, err
		}
		defer clear(b)
		key, err := ParseKey(b)
		if err != nil {
			return nil, fmt.Errorf("%w (in %s)", err, getenv(EnvKeyFile))
		}
		return NewAESGCM(key, rand)
	case getenv(EnvPassphrase) != "":
		return NewPassphrase([]byte(getenv(EnvPassphrase)), rand)
	default:
		b, err := readSecretFile(getenv(EnvPassphraseFile))
		if err != nil {
			return nil, err
		}
		defer clear(b)
		// One line: a trailing newline from an editor or echo is not part
		// of the passphrase.
		return NewPassphrase(bytes.TrimRight(b, "\r\n"), rand)
	}
}

// ParseKey reads a 32-byte key written as 64 hex characters, as base64
// (standard or URL, padded or not), or as the 32 raw bytes. Surrounding
// white space is ignored in the text forms.
func ParseKey(b []byte) ([]byte, error) {
	if len(b) == KeySize && !isText(b) {
		return bytes.Clone(b), nil
	}
	s := strings.TrimSpace(string(b))
	if len(s) == 2*KeySize {
		if k, err := hex.DecodeString(s); err == nil {
			return k, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil && len(k) == KeySize {
			return k, nil
		}
	}
	// Never echo the input: it is key material.
	return nil, fmt.Errorf("%w: want 32 bytes as 64 hex characters or base64", ErrBadKey)
}

func isText(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// readSecretFile reads a key or passphrase file, refusing one that group
// or others can read (Unix; Windows has ACLs instead of mode bits).
func readSecretFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %v; chmod 600 it", ErrInsecureFile, path, fi.Mode().Perm())
	}
	b, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("seal: reading %s: %w", path, err)
	}
	return b, nil
}
