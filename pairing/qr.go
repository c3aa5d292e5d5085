package pairing

import (
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/walinkdev/walink/keys"
)

// QRURLPrefix starts the current QR string form; it lets the phone's native
// camera open WhatsApp's linking screen (CHANGES-2026 §2).
const QRURLPrefix = "https://wa.me/settings/linked_devices#"

// QR is the content of a pairing QR code.
type QR struct {
	Ref        string         // opaque ref from <pair-device>, e.g. "2@…"
	Noise      keys.PublicKey // companion Noise static key
	Identity   keys.PublicKey // companion identity key (eIdent)
	AdvSecret  [32]byte       // secret that keys the pair-success HMAC
	ClientType string         // 5th field, e.g. "1" (Chrome); "" for the legacy 4-field form
}

// String renders the current form: prefix + REF,NOISE,IDENTITY,ADV,TYPE
// with standard padded base64 (TYPE "1" when ClientType is empty, since
// current phones refuse the 4-field form).
//
// The result contains the adv secret: treat it as a secret and never log it.
func (q QR) String() string {
	ct := q.ClientType
	if ct == "" {
		ct = ClientTypeChrome
	}
	enc := base64.StdEncoding
	var b strings.Builder
	b.Grow(len(QRURLPrefix) + len(q.Ref) + 3*44 + 6)
	b.WriteString(QRURLPrefix)
	b.WriteString(q.Ref)
	b.WriteByte(',')
	b.WriteString(enc.EncodeToString(q.Noise.Bytes()))
	b.WriteByte(',')
	b.WriteString(enc.EncodeToString(q.Identity.Bytes()))
	b.WriteByte(',')
	b.WriteString(enc.EncodeToString(q.AdvSecret[:]))
	b.WriteByte(',')
	b.WriteString(ct)
	return b.String()
}

// GoString keeps the adv secret out of %#v output.
func (q QR) GoString() string {
	return "pairing.QR{Ref:" + strconv.Quote(q.Ref) + ", Noise:" + q.Noise.String() +
		", Identity:" + q.Identity.String() + ", AdvSecret:redacted, ClientType:" + strconv.Quote(q.ClientType) + "}"
}

// ParseQR accepts the 4- and 5-field forms, with or without QRURLPrefix,
// as a phone or test server must (PROTOCOL.md §11.2). Surrounding white
// space is ignored. The 5th field must be one letter or digit; it is not
// checked against the known client types so that new ones still parse.
func ParseQR(s string) (QR, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, QRURLPrefix)
	fields := strings.Split(s, ",")
	if len(fields) != 4 && len(fields) != 5 {
		return QR{}, parseErr("qr", "want 4 or 5 comma-separated fields, got "+strconv.Itoa(len(fields)), nil)
	}
	var q QR
	q.Ref = fields[0]
	if q.Ref == "" {
		return QR{}, parseErr("qr", "empty ref", nil)
	}
	for i := 0; i < len(q.Ref); i++ {
		if c := q.Ref[i]; c < 0x21 || c > 0x7e {
			return QR{}, parseErr("qr", "ref has a non-printable or non-ASCII byte", nil)
		}
	}
	var err error
	if q.Noise, err = qrKey(fields[1], "noise key"); err != nil {
		return QR{}, err
	}
	if q.Identity, err = qrKey(fields[2], "identity key"); err != nil {
		return QR{}, err
	}
	adv, err := qrBytes32(fields[3], "adv secret")
	if err != nil {
		return QR{}, err
	}
	q.AdvSecret = adv
	if len(fields) == 5 {
		ct := fields[4]
		if len(ct) != 1 || !isAlnum(ct[0]) {
			return QR{}, parseErr("qr", "client type must be one letter or digit", nil)
		}
		q.ClientType = ct
	}
	return q, nil
}

func qrBytes32(field, what string) ([32]byte, error) {
	var out [32]byte
	// Strict: one canonical encoding per value, so render(parse(s)) == s.
	b, err := base64.StdEncoding.Strict().DecodeString(field)
	if err != nil {
		return out, parseErr("qr", what+": bad base64", err)
	}
	if len(b) != len(out) {
		return out, parseErr("qr", what+": want 32 bytes, got "+strconv.Itoa(len(b)), nil)
	}
	copy(out[:], b)
	return out, nil
}

func qrKey(field, what string) (keys.PublicKey, error) {
	b, err := qrBytes32(field, what)
	if err != nil {
		return keys.PublicKey{}, err
	}
	return keys.PublicKeyFromBytes(b[:])
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
