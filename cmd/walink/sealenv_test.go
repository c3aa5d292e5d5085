package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStoreEncryptedFromEnv: with WALINK_STORE_PASSPHRASE set, link writes
// a sealed store that status reads with the same passphrase, and that
// fails to read without it or with another one.
func TestStoreEncryptedFromEnv(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	path := filepath.Join(t.TempDir(), "sealed.db")
	run := func(env string, args ...string) (string, error) {
		cmd := walinkCmd(ctx, t, args...)
		if env != "" {
			cmd.Env = append(cmd.Env, env)
		}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("WALINK_STORE_PASSPHRASE=tr0ub4dor", "link", "--json", "--sim", "--sim-scan-delay", "10ms", "--store", path); err != nil {
		t.Fatalf("link: %v\n%s", err, out)
	}
	if out, err := run("WALINK_STORE_PASSPHRASE=tr0ub4dor", "status", "--json", "--store", path); err != nil || !strings.Contains(out, `"linked":true`) {
		t.Fatalf("status with the passphrase: %v\n%s", err, out)
	}
	if out, err := run("", "status", "--json", "--store", path); err == nil {
		t.Fatalf("status without the passphrase read a sealed store:\n%s", out)
	}
	if out, err := run("WALINK_STORE_PASSPHRASE=wrong", "status", "--json", "--store", path); err == nil {
		t.Fatalf("status with a wrong passphrase read the store:\n%s", out)
	}
}
