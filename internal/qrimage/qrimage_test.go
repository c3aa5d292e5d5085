package qrimage

import (
	"bytes"
	"image"
	"image/color"
	"strings"
	"testing"

	goqr "github.com/piglig/go-qr"
)

// A pairing string as long as a real one: prefix, "2@"+80-char ref, three
// base64 keys and the client type.
const sample = "https://wa.me/settings/linked_devices#2@" +
	"AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCdEfGh," +
	"Z21YagF8jmHzofyjzMUE2xOWCOq2xi4w6UQYTbPp+DM=,tQo1elRhrGG9Sh1PAyTow/Z1GsPDxW9BS+r834YMDQ=," +
	"0WZybhAhNUIdYspGJIJEU1zZlM2KodxwapCJBgIwH54=,1"

func TestPNGRoundTrip(t *testing.T) {
	c, err := Encode(sample)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := c.PNG(&buf, 4); err != nil {
		t.Fatal(err)
	}
	got, err := DecodePNG(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if got != sample {
		t.Fatalf("decoded %q", got)
	}
}

// TestTerminalRoundTrip parses the half-block text back into modules,
// rasterizes them and decodes the result: what the terminal shows scans.
func TestTerminalRoundTrip(t *testing.T) {
	c, err := Encode(sample)
	if err != nil {
		t.Fatal(err)
	}
	for _, noColor := range []bool{false, true} {
		var buf bytes.Buffer
		lines, err := c.Terminal(&buf, TerminalOptions{NoColor: noColor})
		if err != nil {
			t.Fatal(err)
		}
		text := strings.ReplaceAll(strings.ReplaceAll(buf.String(), "\x1b[30;47m", ""), "\x1b[0m", "")
		rows := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
		if len(rows) != lines {
			t.Fatalf("reported %d lines, wrote %d", lines, len(rows))
		}
		width := len([]rune(rows[0]))
		const scale = 6
		img := image.NewGray(image.Rect(0, 0, (width+8)*scale, (2*len(rows)+8)*scale))
		for i := range img.Pix {
			img.Pix[i] = 255
		}
		for ry, row := range rows {
			for x, r := range []rune(row) {
				var top, bottom bool
				switch r {
				case '█':
					top, bottom = true, true
				case '▀':
					top = true
				case '▄':
					bottom = true
				}
				if noColor { // light modules were drawn
					top, bottom = !top, !bottom
				}
				for dy, dark := range []bool{top, bottom} {
					if !dark {
						continue
					}
					for py := 0; py < scale; py++ {
						for px := 0; px < scale; px++ {
							img.SetGray((x+4)*scale+px, (2*ry+dy+4)*scale+py, color.Gray{0})
						}
					}
				}
			}
		}
		got, err := goqr.Decode(img)
		if err != nil {
			t.Fatalf("noColor=%v: terminal rendering does not scan: %v", noColor, err)
		}
		if got != sample {
			t.Fatalf("decoded %q", got)
		}
	}
}

func TestSVG(t *testing.T) {
	c, _ := Encode(sample)
	var buf bytes.Buffer
	if err := c.SVG(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "<svg") {
		t.Fatal("no svg element")
	}
}
