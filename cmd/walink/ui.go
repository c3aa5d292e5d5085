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

	mu        sync.Mutex
	drawn     int       // lines of the current QR block (terminal mode)
	expires   time.Time // when the shown QR code expires
	hasStatus bool
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
	u.clearQR()
	var b strings.Builder
	n, _ := c.Terminal(&b, qrimage.TerminalOptions{NoColor: !u.terminal()})
	fmt.Fprint(u.e.stdout, b.String())
	fmt.Fprintln(u.e.stdout, "Scan with WhatsApp › Linked devices › Link a device")
	u.drawn = n + 1
	u.hasStatus = false
	if u.terminal() {
		u.statusLocked()
	}
}

func (u *linkUI) clearQR() {
	if !u.terminal() || u.drawn == 0 {
		u.drawn = 0
		return
	}
	lines := u.drawn
	if u.hasStatus {
		lines++
	}
	fmt.Fprintf(u.e.stdout, "\x1b[%dA\r\x1b[J", lines)
	u.drawn, u.hasStatus = 0, false
}

// tick refreshes the countdown under the QR code.
func (u *linkUI) tick() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.terminal() && u.drawn > 0 {
		u.statusLocked()
	}
}

func (u *linkUI) statusLocked() {
	left := time.Until(u.expires).Round(time.Second)
	if left < 0 {
		left = 0
	}
	if u.hasStatus {
		fmt.Fprint(u.e.stdout, "\x1b[1A\r\x1b[K")
	}
	fmt.Fprintf(u.e.stdout, "QR code valid for %2ds\n", int(left/time.Second))
	u.hasStatus = true
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
		// Keep the QR block intact: print below it and let the next redraw
		// clear from the top.
		u.drawn++
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
