package pairing

import (
	"errors"
	"testing"
)

func TestValidatePlatformDisplay(t *testing.T) {
	for _, s := range []string{"Chrome (Linux)", "Chrome (Mac OS)", "Firefox (Windows)", "Safari (iOS)", "Edge (Android)", "Other Web Client (Linux)", "walink 1.0 (Linux)"} {
		if err := ValidatePlatformDisplay(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	for _, s := range []string{"", "Chrome", "Chrome ()", "Chrome (linux)", "Chrome (MacOS)", "Chrome (macOS)", "(Linux)", " (Linux)",
		"Chrome  (Linux)", " Chrome (Linux)", "Chrome (Linux) ", "Chrome(Linux)", "Chrome (Linux", "Chr(ome (Linux)", "Chrome, Inc (Linux)",
		"Chrome (Linux) (Linux)x", "Chr\x00me (Linux)", "Chröme (Linux)", "Chrome (Windows 11)",
		string(make([]byte, 65)) + " (Linux)"} {
		if err := ValidatePlatformDisplay(s); !errors.Is(err, ErrInvalidPlatformDisplay) {
			t.Errorf("%q: err = %v, want ErrInvalidPlatformDisplay", s, err)
		}
	}
	if s, err := PlatformDisplay("Chrome", "Mac OS"); err != nil || s != "Chrome (Mac OS)" {
		t.Errorf("PlatformDisplay = %q, %v", s, err)
	}
	if _, err := PlatformDisplay("Chrome", "BeOS"); !errors.Is(err, ErrInvalidPlatformDisplay) {
		t.Errorf("PlatformDisplay BeOS: %v", err)
	}
}

func TestClientTypes(t *testing.T) {
	want := map[string]string{"chrome": "1", "Edge": "2", "FIREFOX": "3", "IE": "4", "Opera": "5", "Safari": "6", "Electron": "7", "UWP": "8", "Lynx": "9", "": "9"}
	for b, id := range want {
		if got := ClientTypeForBrowser(b); got != id {
			t.Errorf("ClientTypeForBrowser(%q) = %q, want %q", b, got, id)
		}
		if err := ValidateClientType(id); err != nil {
			t.Errorf("ValidateClientType(%q): %v", id, err)
		}
	}
	for _, id := range []string{"c", "d", "e", "f"} {
		if err := ValidateClientType(id); err != nil || ClientTypeName(id) == "" {
			t.Errorf("ValidateClientType(%q): %v", id, err)
		}
	}
	for _, id := range []string{"0", "", "a", "10", "C"} {
		if err := ValidateClientType(id); !errors.Is(err, ErrInvalidClientType) {
			t.Errorf("ValidateClientType(%q) = %v", id, err)
		}
	}
}
