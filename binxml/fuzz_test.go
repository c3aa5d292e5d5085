package binxml_test

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/binxml/binxmltest"
)

// FuzzUnmarshal: decoding never panics, errors are typed, and anything that
// decodes re-encodes to bytes that decode to the same node and re-encode to
// the same bytes (decode→encode→decode stability).
func FuzzUnmarshal(f *testing.F) {
	for _, c := range binxmltest.Corpus() {
		if c.Name == "usync-100" || c.Name == "prekeys-50" {
			continue // large; the testdata seeds cover their shapes
		}
		f.Add(must(binxml.Marshal(c.Node)))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		// The version 2 dictionary (older clients) shares the decoder;
		// it must fail just as cleanly.
		if _, err := binxml.DictV2.Unmarshal(frame); err != nil {
			var de *binxml.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("v2: error %T is not a *DecodeError: %v", err, err)
			}
		}
		n, err := binxml.Unmarshal(frame)
		if err != nil {
			var de *binxml.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %T is not a *DecodeError: %v", err, err)
			}
			for _, s := range []error{binxml.ErrTruncated, binxml.ErrUnknownTag, binxml.ErrLimit, binxml.ErrMalformed, binxml.ErrTrailingData} {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("error wraps no sentinel: %v", err)
		}
		_ = n.String()
		enc, err := binxml.Marshal(n)
		if err != nil {
			t.Fatalf("decoded node does not encode: %v\n%s", err, n)
		}
		n2, err := binxml.Unmarshal(enc)
		if err != nil {
			t.Fatalf("re-encoded node does not decode: %v\n%x", err, enc)
		}
		if !reflect.DeepEqual(n, n2) {
			t.Fatalf("unstable:\n%#v\n%#v", n, n2)
		}
		enc2, err := binxml.Marshal(n2)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding unstable: %x vs %x (%v)", enc, enc2, err)
		}
	})
}
