// Package qrimage turns a pairing QR string into something a phone can scan:
// half-block text for a terminal, PNG or SVG. It wraps the go-qr encoder
// (github.com/piglig/go-qr) and adds the terminal renderer.
package qrimage

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	goqr "github.com/piglig/go-qr"
)

// Code is an encoded QR symbol.
type Code struct{ qr *goqr.QrCode }

// Encode encodes text at error-correction level Low, the level WhatsApp Web
// uses: the pairing string is long (about 260 bytes with a real ref) and a
// lower level keeps the symbol small enough to scan from a terminal.
func Encode(text string) (*Code, error) {
	qr, err := goqr.EncodeText(text, goqr.Low)
	if err != nil {
		return nil, fmt.Errorf("qrimage: %w", err)
	}
	return &Code{qr: qr}, nil
}

// Size returns the symbol's width in modules, without a quiet zone.
func (c *Code) Size() int { return c.qr.Size() }

// Dark reports whether the module at (x, y) is dark; outside the symbol
// (the quiet zone) everything is light.
func (c *Code) Dark(x, y int) bool {
	n := c.qr.Size()
	if x < 0 || y < 0 || x >= n || y >= n {
		return false
	}
	return c.qr.Module(x, y)
}

// TerminalOptions configures Terminal.
type TerminalOptions struct {
	// Quiet is the light border in modules; 0 means 2. Scanners want some
	// light margin, and a terminal's own padding is not reliably light.
	Quiet int
	// NoColor draws without ANSI colours, assuming light text on a dark
	// background (light modules are drawn, dark ones left blank). With
	// colours (the default) the symbol is black on white whatever the theme.
	NoColor bool
}

// Terminal renders the code with Unicode half blocks, two module rows per
// text line, so modules come out roughly square in a usual terminal font.
// It returns the number of lines written so a caller can redraw in place.
func (c *Code) Terminal(w io.Writer, opts TerminalOptions) (int, error) {
	q := opts.Quiet
	if q <= 0 {
		q = 2
	}
	n := c.qr.Size()
	var b strings.Builder
	lines := 0
	for y := -q; y < n+q; y += 2 {
		if !opts.NoColor {
			b.WriteString("\x1b[30;47m") // black on white
		}
		for x := -q; x < n+q; x++ {
			top, bottom := c.Dark(x, y), c.Dark(x, y+1)
			if y+1 >= n+q {
				bottom = false
			}
			if opts.NoColor {
				// Draw light modules; the dark background shows the dark ones.
				top, bottom = !top, !bottom
			}
			switch {
			case top && bottom:
				b.WriteString("█")
			case top:
				b.WriteString("▀")
			case bottom:
				b.WriteString("▄")
			default:
				b.WriteByte(' ')
			}
		}
		if !opts.NoColor {
			b.WriteString("\x1b[0m")
		}
		b.WriteByte('\n')
		lines++
	}
	_, err := io.WriteString(w, b.String())
	return lines, err
}

// PNG writes the code as a PNG image with scale pixels per module and a
// 4-module quiet zone.
func (c *Code) PNG(w io.Writer, scale int) error {
	if scale <= 0 {
		scale = 8
	}
	if err := c.qr.WriteAsPNG(goqr.NewQrCodeImgConfig(scale, 4), w); err != nil {
		return fmt.Errorf("qrimage: png: %w", err)
	}
	return nil
}

// SVG writes the code as an SVG document with a 4-module quiet zone.
func (c *Code) SVG(w io.Writer) error {
	if err := c.qr.WriteAsSVG(goqr.NewQrCodeImgConfig(10, 4, goqr.WithOptimalSVG()), w); err != nil {
		return fmt.Errorf("qrimage: svg: %w", err)
	}
	return nil
}

// DecodePNG reads a QR symbol back from PNG bytes; tests use it to prove
// that what was written is what a scanner sees.
func DecodePNG(data []byte) (string, error) {
	img, err := decodePNG(bytes.NewReader(data))
	if err != nil {
		return "", err
	}
	s, err := goqr.Decode(img)
	if err != nil {
		return "", fmt.Errorf("qrimage: decode: %w", err)
	}
	return s, nil
}
