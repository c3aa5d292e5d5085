package engine

import (
	"testing"
	"time"

	"github.com/walinkdev/walink/binxml"
)

// FuzzClientExpiration: any decoded frame either is not an expiration
// notice, or is one with a deadline after the epoch, or is refused with
// ErrMalformed; nothing panics.
func FuzzClientExpiration(f *testing.F) {
	for _, t := range []string{"1767225600", "", "x", "-1", "1e9"} {
		b, err := binxml.Marshal(binxml.Node{Tag: "ib", Children: []binxml.Node{{Tag: "client_expiration", Attrs: []binxml.Attr{binxml.A("t", t)}}}})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		n, err := binxml.Unmarshal(frame)
		if err != nil {
			return
		}
		at, ok, err := ParseClientExpiration(n)
		switch {
		case !ok && (err != nil || !at.IsZero()):
			t.Fatalf("not an expiration, yet %v %v", at, err)
		case ok && err == nil && !at.After(time.Unix(0, 0)):
			t.Fatalf("deadline %v accepted", at)
		}
	})
}
