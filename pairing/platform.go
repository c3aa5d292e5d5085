package pairing

import (
	"fmt"
	"strings"
)

// Companion platform ids (CompanionWebClientType, PROTOCOL.md §14.6): the
// 5th QR field and the content of <companion_platform_id>. This is not
// DeviceProps.PlatformType, whose numbers differ.
const (
	ClientTypeUnknown          = "0" // refused by the server
	ClientTypeChrome           = "1"
	ClientTypeEdge             = "2"
	ClientTypeFirefox          = "3"
	ClientTypeIE               = "4"
	ClientTypeOpera            = "5"
	ClientTypeSafari           = "6"
	ClientTypeElectron         = "7"
	ClientTypeUWP              = "8"
	ClientTypeOtherWeb         = "9"
	ClientTypeMacOS            = "c"
	ClientTypeAndroidTablet    = "d" // needs attestation
	ClientTypeAndroidPhone     = "e" // needs attestation
	ClientTypeAndroidAmbiguous = "f" // needs attestation
)

// clientTypeNames maps each known id to the browser name used in displays.
var clientTypeNames = map[string]string{
	ClientTypeChrome:           "Chrome",
	ClientTypeEdge:             "Edge",
	ClientTypeFirefox:          "Firefox",
	ClientTypeIE:               "IE",
	ClientTypeOpera:            "Opera",
	ClientTypeSafari:           "Safari",
	ClientTypeElectron:         "Electron",
	ClientTypeUWP:              "UWP",
	ClientTypeOtherWeb:         "Other",
	ClientTypeMacOS:            "macOS",
	ClientTypeAndroidTablet:    "Android tablet",
	ClientTypeAndroidPhone:     "Android phone",
	ClientTypeAndroidAmbiguous: "Android",
}

// ValidateClientType reports whether id is a known, usable companion
// platform id ("0", UNKNOWN, is refused, as the server does).
func ValidateClientType(id string) error {
	if _, ok := clientTypeNames[id]; !ok {
		return fmt.Errorf("%w: %q", ErrInvalidClientType, id)
	}
	return nil
}

// ClientTypeName returns a human name for a platform id, or "" if unknown.
func ClientTypeName(id string) string { return clientTypeNames[id] }

// ClientTypeForPlatform maps a DeviceProps.PlatformType number (the
// payload's) to the companion platform id of the same kind; kinds with no
// id of their own are "9", other web client. This is the one table between
// the two enums.
func ClientTypeForPlatform(platformType int32) string {
	switch platformType {
	case 1: // CHROME
		return ClientTypeChrome
	case 2: // FIREFOX
		return ClientTypeFirefox
	case 3: // IE
		return ClientTypeIE
	case 4: // OPERA
		return ClientTypeOpera
	case 5: // SAFARI
		return ClientTypeSafari
	case 6: // EDGE
		return ClientTypeEdge
	case 7: // DESKTOP
		return ClientTypeElectron
	case 21: // UWP
		return ClientTypeUWP
	}
	return ClientTypeOtherWeb
}

// ClientTypeForBrowser maps a browser name (case-insensitive) to its
// platform id; unknown browsers are "9", other web client.
func ClientTypeForBrowser(browser string) string {
	switch strings.ToLower(strings.TrimSpace(browser)) {
	case "chrome", "chromium":
		return ClientTypeChrome
	case "edge":
		return ClientTypeEdge
	case "firefox":
		return ClientTypeFirefox
	case "ie", "internet explorer":
		return ClientTypeIE
	case "opera":
		return ClientTypeOpera
	case "safari":
		return ClientTypeSafari
	case "electron":
		return ClientTypeElectron
	case "uwp":
		return ClientTypeUWP
	}
	return ClientTypeOtherWeb
}

// PlatformOSes are the OS names the server accepts inside
// companion_platform_display (CHANGES-2026 §4).
var PlatformOSes = []string{"Windows", "Mac OS", "Linux", "Android", "iOS"}

// maxBrowserLen bounds the browser part; real values are short names.
const maxBrowserLen = 64

// ValidatePlatformDisplay checks the companion_platform_display format,
// "Browser (OS)" with OS one of PlatformOSes, e.g. "Chrome (Linux)". The
// browser part must be printable ASCII without parentheses or commas and
// without leading or trailing spaces. A server answers 400 bad-request for a
// value this refuses.
func ValidatePlatformDisplay(s string) error {
	open := strings.LastIndex(s, " (")
	if open <= 0 || !strings.HasSuffix(s, ")") {
		return fmt.Errorf("%w: want \"Browser (OS)\"", ErrInvalidPlatformDisplay)
	}
	browser, os := s[:open], s[open+2:len(s)-1]
	if len(browser) > maxBrowserLen || browser != strings.TrimSpace(browser) {
		return fmt.Errorf("%w: bad browser name", ErrInvalidPlatformDisplay)
	}
	for i := 0; i < len(browser); i++ {
		c := browser[i]
		if c < 0x20 || c > 0x7e || c == '(' || c == ')' || c == ',' {
			return fmt.Errorf("%w: bad browser name", ErrInvalidPlatformDisplay)
		}
	}
	for _, o := range PlatformOSes {
		if os == o {
			return nil
		}
	}
	return fmt.Errorf("%w: unknown OS %q", ErrInvalidPlatformDisplay, os)
}

// PlatformDisplay builds "Browser (OS)" and validates it.
func PlatformDisplay(browser, os string) (string, error) {
	s := browser + " (" + os + ")"
	if err := ValidatePlatformDisplay(s); err != nil {
		return "", err
	}
	return s, nil
}
