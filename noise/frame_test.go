package noise_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/walinkdev/walink/noise"
)

func collect(t *testing.T, d *noise.Decoder) [][]byte {
	t.Helper()
	var out [][]byte
	for {
		b, err := d.Next()
		if err != nil {
			t.Fatal(err)
		}
		if b == nil {
			return out
		}
		out = append(out, bytes.Clone(b))
	}
}

func TestFrameRoundTripAnySplit(t *testing.T) {
	bodies := [][]byte{{}, []byte("a"), bytes.Repeat([]byte{7}, 300), bytes.Repeat([]byte{9}, 70000)}
	var stream []byte
	for _, b := range bodies {
		var err error
		if stream, err = noise.AppendFrame(stream, b); err != nil {
			t.Fatal(err)
		}
	}
	for _, chunk := range []int{1, 2, 3, 5, 1000, len(stream)} {
		var d noise.Decoder
		var got [][]byte
		for i := 0; i < len(stream); i += chunk {
			d.Write(stream[i:min(i+chunk, len(stream))])
			got = append(got, collect(t, &d)...)
		}
		if len(got) != len(bodies) {
			t.Fatalf("chunk %d: %d frames, want %d", chunk, len(got), len(bodies))
		}
		for i := range got {
			if !bytes.Equal(got[i], bodies[i]) {
				t.Fatalf("chunk %d: frame %d differs", chunk, i)
			}
		}
		if d.Buffered() != 0 {
			t.Fatalf("chunk %d: %d bytes left", chunk, d.Buffered())
		}
	}
}

func TestFrameTooLarge(t *testing.T) {
	if _, err := noise.AppendFrame(nil, make([]byte, noise.MaxFrameSize+1)); !errors.Is(err, noise.ErrFrameTooLarge) {
		t.Errorf("AppendFrame: %v", err)
	}
	d := noise.NewDecoder(noise.DecoderConfig{MaxFrame: 100})
	d.Write([]byte{0, 0, 101})
	_, err := d.Next()
	var fe *noise.FrameError
	if !errors.As(err, &fe) || fe.Length != 101 || fe.Limit != 100 || !errors.Is(err, noise.ErrFrameTooLarge) {
		t.Fatalf("Next: %v", err)
	}
	// Sticky.
	if _, err := d.Write([]byte{1}); !errors.Is(err, noise.ErrFrameTooLarge) {
		t.Errorf("Write after error: %v", err)
	}
	if _, err := d.Next(); !errors.Is(err, noise.ErrFrameTooLarge) {
		t.Errorf("Next after error: %v", err)
	}
	// A 16 MiB-1 frame header is fine for the default decoder; it waits.
	var d2 noise.Decoder
	d2.Write([]byte{0xff, 0xff, 0xff, 1})
	if b, err := d2.Next(); b != nil || err != nil {
		t.Errorf("max frame header: %v %v", b, err)
	}
}

func TestDecoderIntro(t *testing.T) {
	body := []byte("hello")
	plain, _ := noise.AppendIntro(nil, noise.HeaderV3, nil)
	plain, _ = noise.AppendFrame(plain, body)
	v2, _ := noise.AppendIntro(nil, noise.HeaderV2, nil)
	v2, _ = noise.AppendFrame(v2, body)
	routed, _ := noise.AppendIntro(nil, noise.HeaderV3, []byte{1, 2, 3})
	routed, _ = noise.AppendFrame(routed, body)
	if !bytes.HasPrefix(routed, []byte{'E', 'D', 0, 1, 0, 0, 3, 1, 2, 3, 'W', 'A', 6, 3}) {
		t.Fatalf("routed intro = %x", routed)
	}
	for _, c := range []struct {
		name    string
		in      []byte
		hdr     [4]byte
		routing []byte
	}{
		{"v3", plain, noise.HeaderV3, nil},
		{"v2", v2, noise.HeaderV2, nil},
		{"edge routing", routed, noise.HeaderV3, []byte{1, 2, 3}},
	} {
		for chunk := 1; chunk <= len(c.in); chunk++ {
			d := noise.NewDecoder(noise.DecoderConfig{Intro: true})
			var got [][]byte
			for i := 0; i < len(c.in); i += chunk {
				d.Write(c.in[i:min(i+chunk, len(c.in))])
				got = append(got, collect(t, d)...)
			}
			h, ok := d.Header()
			if !ok || h != c.hdr || !bytes.Equal(d.RoutingInfo(), c.routing) {
				t.Fatalf("%s chunk %d: header %x %v routing %x", c.name, chunk, h, ok, d.RoutingInfo())
			}
			if len(got) != 1 || !bytes.Equal(got[0], body) {
				t.Fatalf("%s chunk %d: frames %q", c.name, chunk, got)
			}
		}
	}
	for _, bad := range [][]byte{
		[]byte("GET "), {'W', 'A', 6, 4}, {'W', 'A', 5}, {'W', 'B'}, {0},
		{'E', 'D', 0, 1, 0, 0, 0, 'X', 'A', 6, 3},
		{'E', 'D', 0, 2},
	} {
		d := noise.NewDecoder(noise.DecoderConfig{Intro: true})
		d.Write(bad)
		if _, err := d.Next(); !errors.Is(err, noise.ErrBadHeader) {
			t.Errorf("%x: %v, want ErrBadHeader", bad, err)
		}
	}
	d := noise.NewDecoder(noise.DecoderConfig{Intro: true, MaxFrame: 10})
	d.Write([]byte{'E', 'D', 0, 1, 0, 0, 11})
	if _, err := d.Next(); !errors.Is(err, noise.ErrBadHeader) || !errors.Is(err, noise.ErrFrameTooLarge) {
		t.Errorf("long routing: %v", err)
	}
}

func TestCipherCounters(t *testing.T) {
	k := bytes.Repeat([]byte{1}, 32)
	a, _ := noise.NewCipher(k, k)
	b, _ := noise.NewCipher(k, k)
	a.SetCounters(1<<32-1, 0)
	b.SetCounters(0, 1<<32-1)
	ct, err := a.Seal(nil, []byte("last"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := b.Open(nil, ct); err != nil || string(pt) != "last" {
		t.Fatalf("last nonce: %q %v", pt, err)
	}
	if _, err := a.Seal(nil, []byte("x")); !errors.Is(err, noise.ErrNonceExhausted) {
		t.Errorf("Seal past 2^32: %v", err)
	}
	if _, err := b.Open(nil, ct); !errors.Is(err, noise.ErrNonceExhausted) {
		t.Errorf("Open past 2^32: %v", err)
	}
	if _, err := noise.NewCipher(k[:16], k); err == nil {
		t.Error("short key accepted")
	}
}

func TestCipherNoAllocs(t *testing.T) {
	k := bytes.Repeat([]byte{1}, 32)
	a, _ := noise.NewCipher(k, k)
	b, _ := noise.NewCipher(k, k)
	pt := make([]byte, 1024)
	ct := make([]byte, 0, len(pt)+noise.Overhead)
	out := make([]byte, 0, len(pt))
	allocs := testing.AllocsPerRun(100, func() {
		c, err := a.Seal(ct[:0], pt)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Open(out[:0], c); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Seal+Open allocate %v times per call", allocs)
	}
}

// chunkReader returns at most n bytes a Read.
type chunkReader struct {
	r *bytes.Reader
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.n)]) }

// oneByte reads one byte at a time, without allocating.
type oneByte struct{}

func (oneByte) Read(p []byte) (int, error) { p[0] = 1; return 1, nil }

// TestDecoderFill: frames read with Fill come out whole for any read size,
// in the intro mode too, and the read never reserves more than the limit
// allows.
func TestDecoderFill(t *testing.T) {
	bodies := [][]byte{{}, []byte("a"), bytes.Repeat([]byte{7}, 300), bytes.Repeat([]byte{9}, 70000), []byte("end")}
	stream := noise.HeaderV3[:]
	stream = append([]byte(nil), stream...)
	for _, b := range bodies {
		var err error
		if stream, err = noise.AppendFrame(stream, b); err != nil {
			t.Fatal(err)
		}
	}
	for _, chunk := range []int{1, 3, 1000, noise.FillSize + 1, len(stream)} {
		d := noise.NewDecoder(noise.DecoderConfig{Intro: true})
		r := &chunkReader{bytes.NewReader(stream), chunk}
		var got [][]byte
		for {
			for {
				b, err := d.Next()
				if err != nil {
					t.Fatal(err)
				}
				if b == nil {
					break
				}
				got = append(got, bytes.Clone(b))
			}
			if _, err := d.Fill(r); err != nil {
				break
			}
		}
		if len(got) != len(bodies) {
			t.Fatalf("chunk %d: %d frames, want %d", chunk, len(got), len(bodies))
		}
		for i := range bodies {
			if !bytes.Equal(got[i], bodies[i]) {
				t.Fatalf("chunk %d: frame %d differs", chunk, i)
			}
		}
		if d.Buffered() != 0 {
			t.Fatalf("chunk %d: %d bytes left", chunk, d.Buffered())
		}
	}

	// A length over the limit is refused by Next; Fill before that call
	// reserves only FillSize, never the claimed length.
	d := noise.NewDecoder(noise.DecoderConfig{MaxFrame: 100})
	if _, err := d.Fill(bytes.NewReader([]byte{0xff, 0xff, 0xff})); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(10, func() {
		if _, err := d.Fill(oneByte{}); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 0 {
		t.Errorf("Fill after an over-limit length allocated %v times", allocs)
	}
	if _, err := d.Next(); !errors.Is(err, noise.ErrFrameTooLarge) {
		t.Fatalf("over-limit frame: %v", err)
	}
	if _, err := d.Fill(bytes.NewReader([]byte{1})); !errors.Is(err, noise.ErrFrameTooLarge) {
		t.Fatalf("Fill after a bad frame: %v", err)
	}
}

// TestDecoderKeepsBufferForBigRuns: a run of big frames reuses one buffer;
// once a small frame follows, the big buffer is let go.
func TestDecoderKeepsBufferForBigRuns(t *testing.T) {
	var d noise.Decoder
	frame := func(n int) []byte {
		f, err := noise.AppendFrame(nil, make([]byte, n))
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	for i := range 3 {
		d.Write(frame(100 << 10))
		if b, err := d.Next(); err != nil || len(b) != 100<<10 {
			t.Fatalf("big frame %d: %d bytes, %v", i, len(b), err)
		}
	}
	big := d.BufCap()
	d.Write(frame(10))
	if d.BufCap() != big {
		t.Fatalf("buffer replaced right after a big frame: cap %d, was %d", d.BufCap(), big)
	}
	if b, _ := d.Next(); len(b) != 10 {
		t.Fatalf("small frame: %d bytes", len(b))
	}
	d.Write(frame(10))
	if d.BufCap() >= 64<<10 {
		t.Fatalf("big buffer (%d bytes) kept after small frames", d.BufCap())
	}
}

// TestCipherRelease: a Cipher whose AES-GCM state was dropped seals and
// opens exactly what a twin that kept it does (same keys, same counters),
// rebuilds the state on next use (an allocation then, none after), and a
// broken Cipher stays broken.
func TestCipherRelease(t *testing.T) {
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	a, _ := noise.NewCipher(k1, k2)    // released now and then
	twin, _ := noise.NewCipher(k1, k2) // never released
	peer, _ := noise.NewCipher(k2, k1) // the other side
	for i := range 6 {
		if i%2 == 0 {
			a.Release()
		}
		msg := []byte{byte(i), 'x', 'y'}
		got, err := a.Seal(nil, msg)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := twin.Seal(nil, msg)
		if !bytes.Equal(got, want) {
			t.Fatalf("frame %d: released cipher sealed % x, want % x", i, got, want)
		}
		if pt, err := peer.Open(nil, got); err != nil || !bytes.Equal(pt, msg) {
			t.Fatalf("frame %d: peer opened %q, %v", i, pt, err)
		}
		back, _ := peer.Seal(nil, msg)
		if i%3 == 0 {
			a.Release()
		}
		if pt, err := a.Open(nil, back); err != nil || !bytes.Equal(pt, msg) {
			t.Fatalf("frame %d: released cipher opened %q, %v", i, pt, err)
		}
		twin.Open(nil, back)
	}
	if s, r := a.Counters(); s != 6 || r != 6 {
		t.Errorf("counters after releases = %d, %d; want 6, 6", s, r)
	}

	pt := make([]byte, 64)
	ct := make([]byte, 0, len(pt)+noise.Overhead)
	if n := testing.AllocsPerRun(5, func() { a.Release(); a.Seal(ct[:0], pt) }); n == 0 {
		t.Error("Seal after Release did not rebuild the state (no allocation)")
	}
	if n := testing.AllocsPerRun(10, func() { a.Seal(ct[:0], pt) }); n != 0 {
		t.Errorf("Seal after the rebuild allocates %v times", n)
	}

	bad, _ := peer.Seal(nil, []byte("z"))
	bad[0] ^= 1
	if _, err := a.Open(nil, bad); !errors.Is(err, noise.ErrDecrypt) {
		t.Fatalf("tampered frame: %v", err)
	}
	a.Release()
	if _, err := a.Seal(nil, pt); !errors.Is(err, noise.ErrCipherBroken) {
		t.Errorf("Seal on a broken, released cipher: %v", err)
	}
}
