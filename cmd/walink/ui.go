package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/walinkdev/walink"
	"github.com/walinkdev/walink/internal/qrimage"
)

// linkUI shows link events: JSON lines, an in-place terminal drawing, or
// plain text when stdout is not a terminal.
type linkUI struct {
	e         env
	f         linkFlags
	imageOnly bool

	// Terminal mode draws a block: the QR code and its caption (drawn
	// lines), the countdown (hasStatus), then the progress lines printed
	// since (notes). A rotation redraws the block in place; the end of
	// the QR step erases it and prints the notes again, so they stay.
	mu        sync.Mutex
	drawn     int       // lines of the QR code and caption; 0 when none is shown
	expires   time.Time // when the shown QR code expires
	hasStatus bool
	notes     []string
}

func newLinkUI(e env, f linkFlags, imageOnly bool) *linkUI {
	return &linkUI{e: e, f: f, imageOnly: imageOnly}
}

func (u *linkUI) terminal() bool { return u.e.isTTY && !u.f.json && !u.imageOnly }

// jsonEvent is one line of `walink link --json`. Field sets are exactly the
// documented ones per event; private keys never appear (the QR string
// carries the adv secret by design).
func jsonEvent(ev walink.Event) map[string]any {
	switch ev := ev.(type) {
	case walink.PairingQRCode:
		return map[string]any{"event": "pairing_qr_code", "code": ev.Code, "timeout_s": int(ev.Timeout.Round(time.Second) / time.Second)}
	case walink.PairingCode:
		return map[string]any{"event": "pairing_code", "code": ev.Code, "timeout_s": int(ev.Timeout.Round(time.Second) / time.Second)}
	case walink.QRCodesExpired:
		return map[string]any{"event": "qr_codes_expired"}
	case walink.PairSuccess:
		return map[string]any{"event": "pair_success", "id": ev.ID.String(), "lid": ev.LID.String(), "business_name": ev.BusinessName, "platform": ev.Platform}
	case walink.PairError:
		msg := ""
		if ev.Err != nil {
			msg = ev.Err.Error()
		}
		return map[string]any{"event": "pair_error", "id": ev.ID.String(), "lid": ev.LID.String(), "business_name": ev.BusinessName, "platform": ev.Platform, "error": msg}
	case walink.Connected:
		return map[string]any{"event": "connected"}
	case walink.Disconnected:
		return map[string]any{"event": "disconnected"}
	case walink.LoggedOut:
		return map[string]any{"event": "logged_out", "on_connect": ev.OnConnect, "reason": fmt.Sprint(ev.Reason)}
	}
	return jsonPasskeyEvent(ev)
}

func (u *linkUI) event(ev walink.Event) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if qr, ok := ev.(walink.PairingQRCode); ok {
		u.writeImages(qr.Code)
	}
	if u.f.json {
		if m := jsonEvent(ev); m != nil {
			b, _ := json.Marshal(m)
			fmt.Fprintf(u.e.stdout, "%s\n", b)
		}
		return
	}
	switch ev := ev.(type) {
	case walink.PairingQRCode:
		u.expires = time.Now().Add(ev.Timeout)
		if u.imageOnly {
			fmt.Fprintf(u.e.stdout, "QR code written (valid %s)\n", ev.Timeout.Round(time.Second))
			return
		}
		u.drawQR(ev.Code)
	case walink.PairingCode:
		u.clearQR()
		fmt.Fprintf(u.e.stdout, "\n  Pair code:  %s\n\n  On your phone: WhatsApp › Linked devices › Link a device › Link with phone number instead.\n\n", bigCode(ev.Code, u.terminal()))
	case walink.PairSuccess:
		u.clearQR()
		fmt.Fprintf(u.e.stdout, "Linked as %s (LID %s, platform %s)\n", ev.ID, ev.LID, ev.Platform)
	case walink.PairError:
		u.clearQR()
	case walink.QRCodesExpired:
		u.clearQR()
	case walink.PairPasskeyRequest:
		u.clearQR() // the QR stops rotating during the passkey step
	case walink.PairPasskeyError:
		fmt.Fprintf(u.e.stdout, "pair_passkey_error: %v\n", ev.Err)
	}
}

// drawQR draws the code, replacing the previous one in place on a terminal.
func (u *linkUI) drawQR(code string) {
	c, err := qrimage.Encode(code)
	if err != nil {
		fmt.Fprintf(u.e.stderr, "walink: cannot draw QR: %v\n", err)
		return
	}
	var b strings.Builder
	if u.terminal() {
		u.eraseBlock(&b)
	}
	n, _ := c.Terminal(&b, qrimage.TerminalOptions{NoColor: !u.terminal()})
	b.WriteString("Scan with WhatsApp › Linked devices › Link a device\n")
	u.drawn, u.hasStatus = n+1, false
	if u.terminal() {
		// The countdown, then the progress lines shown under the last code.
		u.hasStatus = true
		b.WriteString(u.statusText() + "\n")
		for _, l := range u.notes {
			b.WriteString(l + "\n")
		}
	}
	fmt.Fprint(u.e.stdout, b.String())
}

// clearQR erases the QR block at the end of the QR step; the progress
// lines printed under it stay.
func (u *linkUI) clearQR() {
	if !u.terminal() || u.drawn == 0 {
		u.drawn, u.hasStatus, u.notes = 0, false, nil
		return
	}
	var b strings.Builder
	u.eraseBlock(&b)
	for _, l := range u.notes {
		b.WriteString(l + "\n")
	}
	fmt.Fprint(u.e.stdout, b.String())
	u.drawn, u.hasStatus, u.notes = 0, false, nil
}

// eraseBlock writes what erases the drawn block, bottom up, one line at a
// time, leaving the cursor where the block began. Not "cursor up, erase
// to the end of the screen": from the top left corner (a block that
// starts at the top of the window) tmux (scroll-on-clear, its default)
// takes that as clearing the screen and pushes it into the scrollback,
// where the old code then stays above the new one.
func (u *linkUI) eraseBlock(b *strings.Builder) {
	lines := u.drawn + len(u.notes)
	if u.hasStatus {
		lines++
	}
	for range lines {
		b.WriteString("\x1b[1A\x1b[2K")
	}
	b.WriteString("\r")
}

// tick refreshes the countdown under the QR code.
func (u *linkUI) tick() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.terminal() && u.drawn > 0 && u.hasStatus {
		// Rewrite the countdown and the progress lines under it.
		var b strings.Builder
		fmt.Fprintf(&b, "\x1b[%dA\r\x1b[2K%s\n", 1+len(u.notes), u.statusText())
		for _, l := range u.notes {
			b.WriteString("\x1b[2K" + l + "\n")
		}
		fmt.Fprint(u.e.stdout, b.String())
	}
}

func (u *linkUI) statusText() string {
	left := time.Until(u.expires).Round(time.Second)
	if left < 0 {
		left = 0
	}
	return fmt.Sprintf("QR code valid for %2ds", int(left/time.Second))
}

// line prints a progress message (not in --json mode, which prints events
// only, one JSON object per line).
func (u *linkUI) line(s string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.f.json {
		return
	}
	if u.terminal() && u.drawn > 0 {
		// Under the QR block, and part of it: drawn again under the next
		// code, and kept when the block is erased.
		u.notes = append(u.notes, s)
	}
	fmt.Fprintln(u.e.stdout, s)
}

func (u *linkUI) done() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if !u.f.json {
		fmt.Fprintln(u.e.stdout, "Connected. The session is saved; this device stays linked.")
	}
}

// writeImages writes the QR to --qr-png / --qr-svg, atomically so a viewer
// never sees half a file.
func (u *linkUI) writeImages(code string) {
	if u.f.qrPNG == "" && u.f.qrSVG == "" {
		return
	}
	c, err := qrimage.Encode(code)
	if err != nil {
		fmt.Fprintf(u.e.stderr, "walink: %v\n", err)
		return
	}
	write := func(path string, render func(*os.File) error) {
		tmp, err := os.CreateTemp(dirOf(path), ".walink-qr-*")
		if err == nil {
			err = render(tmp)
			if cerr := tmp.Close(); err == nil {
				err = cerr
			}
			if err == nil {
				err = os.Rename(tmp.Name(), path)
			}
			if err != nil {
				os.Remove(tmp.Name())
			}
		}
		if err != nil {
			fmt.Fprintf(u.e.stderr, "walink: writing %s: %v\n", path, err)
		}
	}
	if u.f.qrPNG != "" {
		write(u.f.qrPNG, func(f *os.File) error { return c.PNG(f, 8) })
	}
	if u.f.qrSVG != "" {
		write(u.f.qrSVG, func(f *os.File) error { return c.SVG(f) })
	}
}

func dirOf(path string) string {
	if i := strings.LastIndexByte(path, os.PathSeparator); i >= 0 {
		return path[:i+1]
	}
	return "."
}

// bigCode spaces the code out as ABCD-1234 so it reads well from a screen.
func bigCode(code string, bold bool) string {
	d := displayCode(code)
	var b strings.Builder
	if bold {
		b.WriteString("\x1b[1m")
	}
	for i, r := range d {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	if bold {
		b.WriteString("\x1b[0m")
	}
	return b.String()
}
