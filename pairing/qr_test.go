package pairing

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/walinkdev/walink/internal/vectors"
)

func TestQRVector(t *testing.T) {
	v := vectors.Load(t)
	legacy := vectors.Str(t, v, "adv_pairing", "qr_string_whatsmeow_v20251217")
	q, err := ParseQR(legacy)
	if err != nil {
		t.Fatal(err)
	}
	if q.Ref != "2@exampleRefFromServer" || q.ClientType != "" {
		t.Errorf("ref %q client type %q", q.Ref, q.ClientType)
	}
	if !q.Noise.Equal(kp(t, v, "adv_pairing", "companion_noise").Public) ||
		!q.Identity.Equal(kp(t, v, "adv_pairing", "companion_identity").Public) ||
		q.AdvSecret != [32]byte(vectors.Hex(t, v, "adv_pairing", "adv_secret")) {
		t.Error("keys differ from the vector")
	}
	// Current form: prefix, same four fields, type 1.
	if got, want := q.String(), QRURLPrefix+legacy+",1"; got != want {
		t.Errorf("String =\n%s\nwant\n%s", got, want)
	}
	q.ClientType = ClientTypeFirefox
	s := q.String()
	if !strings.HasSuffix(s, ",3") {
		t.Errorf("String = %s", s)
	}
	for _, in := range []string{s, strings.TrimPrefix(s, QRURLPrefix), " " + s + "\n"} {
		p, err := ParseQR(in)
		if err != nil || p != q {
			t.Errorf("ParseQR(%q) = %#v, %v", in, p, err)
		}
	}
}

func TestParseQRErrors(t *testing.T) {
	k := base64.StdEncoding.EncodeToString(make([]byte, 32))
	k31 := base64.StdEncoding.EncodeToString(make([]byte, 31))
	k33 := base64.StdEncoding.EncodeToString(make([]byte, 33))
	raw := base64.RawStdEncoding.EncodeToString(make([]byte, 32))
	url := base64.URLEncoding.EncodeToString([]byte(strings.Repeat("\xff", 32)))
	for _, in := range []string{
		"",
		"ref",
		"ref," + k + "," + k,
		"ref," + k + "," + k + "," + k + ",1,extra",
		"," + k + "," + k + "," + k,
		"ref," + k31 + "," + k + "," + k,
		"ref," + k + "," + k33 + "," + k,
		"ref," + k + "," + k + "," + k31,
		"ref," + raw + "," + k + "," + k,
		"ref," + url + "," + k + "," + k,
		"ref,!!!," + k + "," + k,
		"ref," + k + "," + k + "," + k + ",",
		"ref," + k + "," + k + "," + k + ",12",
		"ref," + k + "," + k + "," + k + ",#",
		"re f," + k + "," + k + "," + k,
		"ré," + k + "," + k + "," + k,
		QRURLPrefix + QRURLPrefix + "ref," + k + "," + k + "," + k + ",1x",
	} {
		_, err := ParseQR(in)
		var pe *ParseError
		if !errors.Is(err, ErrMalformed) || !errors.As(err, &pe) {
			t.Errorf("ParseQR(%q) err = %v, want a ParseError", in, err)
			continue
		}
		if !strings.HasPrefix(err.Error(), "pairing: ") {
			t.Errorf("message %q lacks the package prefix", err)
		}
	}
	// Unknown but well-formed client types still parse.
	if q, err := ParseQR("ref," + k + "," + k + "," + k + ",z"); err != nil || q.ClientType != "z" {
		t.Errorf("unknown client type: %v", err)
	}
}

func TestQRGoStringRedacts(t *testing.T) {
	q := QR{Ref: "r"}
	for i := range q.AdvSecret {
		q.AdvSecret[i] = 0xAB
	}
	s := fmt.Sprintf("%#v", q)
	if strings.Contains(s, "abab") || strings.Contains(s, "q6ur") || !strings.Contains(s, "redacted") {
		t.Errorf("%%#v = %s", s)
	}
}
