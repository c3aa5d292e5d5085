package main

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// screen replays a terminal byte stream onto a rows×cols grid, for the
// parts of a VT100/xterm that the link UI uses: printable characters
// (wrapping at the right margin), CR, LF (at the bottom row the screen
// scrolls and the top row goes to the scrollback, where cursor movement
// cannot reach it), CSI n A (cursor up, stopping at the top row), CSI J
// (erase to the end of the screen; from the top left corner the screen
// goes to the scrollback first, as tmux 3.3 does with scroll-on-clear,
// its default), CSI K and CSI 2K
// (erase to the end of the line, the whole line) and SGR (colours,
// ignored). Any other escape is recorded in unknown, so a test notices
// output this model does not cover.
type screen struct {
	rows, cols int
	grid       [][]rune
	scrollback [][]rune
	row, col   int
	unknown    []string
	pending    []byte // an incomplete escape or UTF-8 sequence
}

func newScreen(rows, cols int) *screen {
	s := &screen{rows: rows, cols: cols}
	s.grid = make([][]rune, rows)
	for i := range s.grid {
		s.grid[i] = blankRow(cols)
	}
	return s
}

func blankRow(cols int) []rune {
	r := make([]rune, cols)
	for i := range r {
		r[i] = ' '
	}
	return r
}

func (s *screen) lineFeed() {
	if s.row < s.rows-1 {
		s.row++
		return
	}
	s.scrollback = append(s.scrollback, s.grid[0])
	copy(s.grid, s.grid[1:])
	s.grid[s.rows-1] = blankRow(s.cols)
}

// Write feeds output to the screen.
func (s *screen) Write(p []byte) (int, error) {
	b := append(s.pending, p...)
	s.pending = nil
	for len(b) > 0 {
		switch c := b[0]; {
		case c == '\r':
			s.col = 0
			b = b[1:]
		case c == '\n':
			s.lineFeed()
			b = b[1:]
		case c == 0x1b:
			n, ok := s.escape(b)
			if !ok {
				s.pending = append([]byte(nil), b...)
				return len(p), nil
			}
			b = b[n:]
		case c < 0x20:
			s.unknown = append(s.unknown, strconv.Quote(string(c)))
			b = b[1:]
		default:
			if !utf8.FullRune(b) {
				s.pending = append([]byte(nil), b...)
				return len(p), nil
			}
			r, n := utf8.DecodeRune(b)
			b = b[n:]
			if s.col >= s.cols {
				s.col = 0
				s.lineFeed()
			}
			s.grid[s.row][s.col] = r
			s.col++
		}
	}
	return len(p), nil
}

// escape handles the CSI sequence at the start of b; ok is false when b
// ends before it does.
func (s *screen) escape(b []byte) (n int, ok bool) {
	if len(b) < 2 {
		return 0, false
	}
	if b[1] != '[' {
		s.unknown = append(s.unknown, strconv.Quote(string(b[:2])))
		return 2, true
	}
	i := 2
	for i < len(b) && (b[i] >= '0' && b[i] <= '9' || b[i] == ';' || b[i] == '?') {
		i++
	}
	if i == len(b) {
		return 0, false
	}
	param, final := string(b[2:i]), b[i]
	num := func() int {
		v, err := strconv.Atoi(param)
		if err != nil || v < 1 {
			return 1
		}
		return v
	}
	switch {
	case final == 'm':
	case final == 'A':
		s.row = max(s.row-num(), 0)
	case final == 'J' && (param == "" || param == "0"):
		if s.row == 0 && s.col == 0 {
			used := 0
			for r := range s.grid {
				if strings.TrimRight(string(s.grid[r]), " ") != "" {
					used = r + 1
				}
			}
			s.scrollback = append(s.scrollback, s.grid[:used]...)
			s.grid = make([][]rune, s.rows)
			for r := range s.grid {
				s.grid[r] = blankRow(s.cols)
			}
			break
		}
		copy(s.grid[s.row][s.col:], blankRow(s.cols-s.col))
		for r := s.row + 1; r < s.rows; r++ {
			s.grid[r] = blankRow(s.cols)
		}
	case final == 'K' && (param == "" || param == "0"):
		if s.col < s.cols {
			copy(s.grid[s.row][s.col:], blankRow(s.cols-s.col))
		}
	case final == 'K' && param == "2":
		s.grid[s.row] = blankRow(s.cols)
	default:
		s.unknown = append(s.unknown, strconv.Quote(string(b[:i+1])))
	}
	return i + 1, true
}

// lines returns the scrollback and the screen, trailing blanks trimmed,
// without the empty rows at the bottom.
func (s *screen) lines() []string {
	var out []string
	for _, r := range s.scrollback {
		out = append(out, strings.TrimRight(string(r), " "))
	}
	for _, r := range s.grid {
		out = append(out, strings.TrimRight(string(r), " "))
	}
	for len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return out
}

func (s *screen) String() string { return strings.Join(s.lines(), "\n") + "\n" }

// qrBlocks counts the QR codes drawn on the screen and in its scrollback:
// runs of consecutive lines made of half blocks.
func (s *screen) qrBlocks() int {
	n, in := 0, false
	for _, l := range s.lines() {
		q := strings.ContainsAny(l, "▀▄█")
		if q && !in {
			n++
		}
		in = q
	}
	return n
}
