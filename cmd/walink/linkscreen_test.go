package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/walinkdev/walink/internal/artifacts"
)

// TestLinkSimScreen runs `walink link --sim` in a pseudo-terminal, with a
// QR rotation before the virtual phone scans and the re-rendered code
// after its first scan, and replays the output on a terminal screen: at
// no moment may the screen (scrollback included) show more than one QR
// code, the status lines stay below it, and the final screen shows none
// (the link succeeded). The screens are saved to artifacts.Dir.
func TestLinkSimScreen(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const rows, cols = 80, 100
	cmd := walinkCmd(ctx, t, "link", "--sim",
		"--qr-timeout-first", "1500ms", "--qr-timeout-next", "1s", "--sim-scan-delay", "2800ms")
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: rows, Cols: cols})
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	scr := newScreen(rows, cols)
	most, worst := 0, ""
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := ptmx.Read(buf)
			scr.Write(buf[:n])
			// Between two reads the terminal shows what it got so far:
			// check every such state, not only the end.
			if q := scr.qrBlocks(); q > most {
				most, worst = q, scr.String()
			}
			if err != nil {
				if err == io.EOF || strings.Contains(err.Error(), "input/output error") {
					err = nil
				}
				done <- err
				return
			}
		}
	}()
	werr := cmd.Wait()
	ptmx.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	final := scr.String()
	dir := artifacts.Dir(t)
	os.WriteFile(filepath.Join(dir, "link-sim-final-screen.txt"), []byte(final), 0o644)
	if worst != "" {
		os.WriteFile(filepath.Join(dir, "link-sim-most-qr-screen.txt"), []byte(worst), 0o644)
	}
	if werr != nil {
		t.Fatalf("walink link --sim: %v\n%s", werr, final)
	}
	if len(scr.unknown) > 0 {
		t.Fatalf("output the screen model does not cover: %v", scr.unknown)
	}
	if most != 1 {
		t.Fatalf("the screen showed %d QR codes at once, want exactly 1:\n%s", most, worst)
	}
	if q := scr.qrBlocks(); q != 0 {
		t.Fatalf("final screen shows %d QR codes, want none after linking:\n%s", q, final)
	}
	for _, want := range []string{"virtual phone: scanning the QR code…", "Linked as 15551234567:", "Connected."} {
		if !strings.Contains(final, want) {
			t.Errorf("final screen lacks %q:\n%s", want, final)
		}
	}
}
