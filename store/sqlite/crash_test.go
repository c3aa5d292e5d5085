//go:build unix

package sqlite

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/store"
	"github.com/walinkdev/walink/store/storetest"
)

const crashChildEnv = "WALINK_SQLITE_CRASH_CHILD"

// TestCrashChild is the writer TestKillDuringWrites kills; it only runs
// as that test's child process.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashChildEnv)
	if path == "" {
		t.Skip("runs only as TestKillDuringWrites' child")
	}
	ctx := context.Background()
	s, err := Open(ctx, path)
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	d, err := s.Device(ctx, storetest.NewDevice(t, 1, false).NoiseKey.Public)
	if errors.Is(err, store.ErrNotFound) {
		d = storetest.NewDevice(t, 1, false)
		err = s.PutDevice(ctx, d)
	}
	if err != nil {
		fmt.Println("load:", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	for i := 0; ; i++ {
		// Each PutPreKeys appends a batch and moves NextPreKeyID past it in
		// one transaction: count == next-1 must hold after any crash.
		first := d.NextPreKeyID
		if err := s.PutPreKeys(ctx, d.NoiseKey.Public, storetest.NewPreKeys(t, uint64(i), first, 40), first+40); err != nil {
			fmt.Println("put pre-keys:", err)
			os.Exit(1)
		}
		d.NextPreKeyID = first + 40
		// Each PutDevice moves the device to a new JID and LID together
		// with the mapping.
		d.ID = jid.NewAD(fmt.Sprintf("1555%07d", i), 3, jid.DefaultUserServer)
		d.LID = jid.NewAD(fmt.Sprintf("9000%07d", i), 3, jid.LIDServer)
		d.PushName = fmt.Sprintf("gen %d", i)
		if err := s.PutDevice(ctx, d); err != nil {
			fmt.Println("put device:", err)
			os.Exit(1)
		}
	}
}

// TestKillDuringWrites SIGKILLs a process in the middle of its writes many
// times and checks after each kill that the file opens, passes SQLite's
// integrity check, and holds only whole transactions.
func TestKillDuringWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "crash.db")
	rng := rand.New(rand.NewPCG(1, 2))
	const kills = 25
	for k := range kills {
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, _ := bufio.NewReader(out).ReadString('\n')
		if line != "ready\n" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("kill %d: child said %q", k, line)
		}
		time.Sleep(time.Duration(20+rng.IntN(300)) * time.Millisecond)
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		if st := cmd.ProcessState.String(); st != "signal: killed" {
			t.Fatalf("kill %d: the child ended by itself (%s), not by the kill", k, st)
		}

		s, err := Open(ctx, path)
		if err != nil {
			t.Fatalf("kill %d: reopen: %v", k, err)
		}
		var check string
		if err := s.r.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
			t.Fatalf("kill %d: integrity_check = %q, %v", k, check, err)
		}
		devs, err := s.Devices(ctx)
		if err != nil {
			t.Fatalf("kill %d: %v", k, err)
		}
		if len(devs) > 1 {
			t.Fatalf("kill %d: %d devices", k, len(devs))
		}
		if len(devs) == 1 {
			d := devs[0]
			n, err := s.PreKeyCount(ctx, d.NoiseKey.Public)
			if err != nil {
				t.Fatal(err)
			}
			if uint32(n) != d.NextPreKeyID-1 {
				t.Errorf("kill %d: %d pre-keys but NextPreKeyID %d: a batch was torn", k, n, d.NextPreKeyID)
			}
			var maps int
			if err := s.r.QueryRowContext(ctx, "SELECT count(*) FROM lid_map").Scan(&maps); err != nil {
				t.Fatal(err)
			}
			if d.Paired() {
				lid, err := s.LIDForPhone(ctx, d.ID)
				if err != nil || lid != d.LID.ToNonAD() || maps != 1 {
					t.Errorf("kill %d: device at %s/%s but mapping %s (%v), %d mappings", k, d.ID.User, d.LID.User, lid.User, err, maps)
				}
			}
			t.Logf("kill %d: device %q with %d pre-keys", k, d.PushName, n) // shows kills land mid-run
		}
		s.Close()
	}
}
