package binxml

import "testing"

func TestTokenTableProbes(t *testing.T) {
	for _, d := range []*Dictionary{DictV3, DictV2} {
		if p := d.maxProbe(); p > 12 {
			t.Errorf("v%d: longest probe chain %d", d.Version, p)
		} else {
			t.Logf("v%d: longest probe chain %d", d.Version, p)
		}
		for s, code := range d.index {
			if got, ok := d.lookup(s); !ok || got != code {
				t.Fatalf("v%d: lookup(%q) = %d, %v; want %d", d.Version, s, got, ok, code)
			}
		}
		for _, s := range []string{"x", "iqq", "15551234567", "ZZZ", "s.whatsapp.ne"} {
			if _, ok := d.lookup(s); ok {
				t.Errorf("v%d: lookup(%q) found a token", d.Version, s)
			}
		}
	}
}
