package watest

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/walinkdev/walink/noise"
)

// Scenario holds the knobs that make the local WhatsApp behave like
// production on a bad day. Its JSON form (snake_case) is what
// GET/PUT {control_url}/config exchange. The zero value is not the
// default: use DefaultScenario.
type Scenario struct {
	// QRRefresh makes the server answer the first QR scan of a connection
	// with companion_reg_refresh and accept only the rotated adv secret,
	// as WhatsApp does since 2026-07 (CHANGES-2026 §1). Default true.
	QRRefresh bool `json:"qr_refresh"`
	// MinClientVersion refuses older clients with <failure reason="405"/>.
	// Format "2.3000.N"; "" accepts every version.
	MinClientVersion string `json:"min_client_version"`
	// RefCount is how many refs pair-device carries. Default 6.
	RefCount int `json:"ref_count"`
	// RefTTLFirst is the validity of the first ref in seconds. Default 60.
	RefTTLFirst float64 `json:"ref_ttl_first_s"`
	// RefTTLNext is the validity of each later ref in seconds, counted
	// from when it becomes current. Default 20.
	RefTTLNext float64 `json:"ref_ttl_next_s"`
	// PairCodeRateLimit is how many companion_hello requests one phone
	// number may make per hour before 429 rate-overlimit; 0 = no limit.
	PairCodeRateLimit int `json:"pair_code_rate_limit"`
	// PairCodeError, when not 0, refuses every well-formed companion_hello
	// with one of WhatsApp's pair-code rejections (CHANGES-2026 §4):
	// 400 bad-request (also the per-number throttle), 403 forbidden,
	// 429 rate-overlimit, 452 feature-not-available (the client should
	// fall back to QR) or 500 internal-server-error. 400 and 429 carry
	// backoff="60".
	PairCodeError int `json:"pair_code_error"`
	// FirstStanzaDelayMS is the pause between the end of the handshake and
	// the first stanza (pair-device or success), PROTOCOL.md §20.9.
	// Default 50.
	FirstStanzaDelayMS int `json:"first_stanza_delay_ms"`
	// LingerMS is how long the server keeps a socket open after a stream
	// error or failure, waiting for the client to close it. Default 3000.
	LingerMS int `json:"linger_ms"`
	// Platform is the primary phone's platform in pair-success
	// (android, iphone, smba, smbi). Default "android".
	Platform string `json:"platform"`
	// BusinessName, when set, is sent as <biz name=…/> in pair-success.
	BusinessName string `json:"business_name"`
	// IK is the answer to a client resuming with Noise IK (CHANGES-2026
	// §7): "accept" (default; a resume made for the server's static key is
	// taken, any other is answered with XXfallback, as WhatsApp does),
	// "fallback" (always XXfallback, as right after a key rotation) or
	// "refuse" (close the connection, as an XX-only server). "" means
	// "accept".
	IK string `json:"ik"`
	// Passkey gates linking behind the passkey ("Shortcake") step
	// (CHANGES-2026 §6, PASSKEY.md): "off" (default; "" too), "qr" (after a
	// QR scan), "code" (after companion_finish) or "both".
	Passkey string `json:"passkey"`
	// PasskeyPhones overrides Passkey for single numbers (Phone.SetPasskey).
	PasskeyPhones map[string]string `json:"passkey_phones,omitempty"`
	// PasskeyConfirm is how the phone confirms the code: "auto" (default;
	// "" too) by itself, "manual" only through Phone.ConfirmPasskey (POST
	// /phones/{phone}/passkey/confirm), even when a handoff proof was sent.
	PasskeyConfirm string `json:"passkey_confirm"`
	// PasskeyTimeoutMS is the step's deadline and the options' timeout;
	// 0 means 600000, what WhatsApp sends.
	PasskeyTimeoutMS int `json:"passkey_timeout_ms,omitempty"`
	// PasskeyOptions is how passkey_prologue_request carries the options:
	// "inline" (default; "" too), "fetch" (no child: the companion must
	// fetch them with <passkey_request_options/>) or "garbled" (padded
	// base64, which clients fail to parse and then fetch).
	PasskeyOptions string `json:"passkey_options,omitempty"`
	// WebRevision is the client_revision in the service-worker script at
	// /sw.js, what clients fetch as the current WhatsApp Web version
	// 2.3000.N (CHANGES-2026 §8); 0 makes /sw.js answer 404, as a fetch
	// that fails. Default 1045368834.
	WebRevision uint32 `json:"web_revision"`
	// Faults are deliberate protocol failures for client robustness tests.
	Faults Faults `json:"faults"`
}

// Faults are switches that make the server misbehave on purpose. All are
// off in the zero value.
type Faults struct {
	// DropAfter closes the socket abruptly (no stream error) right after a
	// point in the conversation: "handshake2" (after the server hello),
	// "pair-device", "pair-success", "before-515" (after the companion's
	// pair-device-sign reply was verified, device linked), "after-515",
	// "login" (after success).
	DropAfter string `json:"drop_after,omitempty"`
	// DelayMS delays every server reply and server-initiated stanza.
	DelayMS int `json:"delay_ms,omitempty"`
	// GarbageFrame sends a correctly encrypted frame that is not a valid
	// node right after the handshake.
	GarbageFrame bool `json:"garbage_frame,omitempty"`
	// OversizeFrame sends one WebSocket message larger than 16 MiB (the
	// clients' read limit) right after the handshake.
	OversizeFrame bool `json:"oversize_frame,omitempty"`
	// BadCert presents a certificate chain signed by another root.
	BadCert bool `json:"bad_cert,omitempty"`
	// LeafMismatch presents a chain whose leaf key is not the server's
	// static key.
	LeafMismatch bool `json:"leaf_mismatch,omitempty"`
	// TamperPairSuccess corrupts the signed device identity in
	// pair-success: "hmac" (a wrong HMAC) or "account-signature" (a wrong
	// account signature under a valid HMAC). A correct companion refuses it.
	TamperPairSuccess string `json:"tamper_pair_success,omitempty"`
}

// Tamper kinds accepted by Faults.TamperPairSuccess.
const (
	TamperHMAC             = "hmac"
	TamperAccountSignature = "account-signature"
)

// Drop points accepted by Faults.DropAfter.
const (
	DropHandshake2  = "handshake2"
	DropPairDevice  = "pair-device"
	DropPairSuccess = "pair-success"
	DropBefore515   = "before-515"
	DropAfter515    = "after-515"
	DropLogin       = "login"
)

var dropPoints = []string{DropHandshake2, DropPairDevice, DropPairSuccess, DropBefore515, DropAfter515, DropLogin}

// Answers to an IK resume accepted by Scenario.IK.
const (
	IKAccept   = "accept"
	IKFallback = "fallback"
	IKRefuse   = "refuse"
)

// ikPolicy maps Scenario.IK onto the handshake's policy; Validate has
// checked it.
func (s Scenario) ikPolicy() noise.IKPolicy {
	p, _ := noise.ParseIKPolicy(s.IK)
	return p
}

// DefaultScenario returns the knobs of today's WhatsApp.
func DefaultScenario() Scenario {
	return Scenario{
		QRRefresh:          true,
		RefCount:           6,
		RefTTLFirst:        60,
		RefTTLNext:         20,
		FirstStanzaDelayMS: 50,
		LingerMS:           3000,
		Platform:           "android",
		IK:                 IKAccept,
		Passkey:            PasskeyOff,
		PasskeyConfirm:     PasskeyConfirmAuto,
		WebRevision:        DefaultWebRevision,
	}
}

// Validate reports the first invalid knob, wrapping ErrBadScenario.
func (s Scenario) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrBadScenario}, args...)...)
	}
	if s.MinClientVersion != "" {
		if _, err := parseVersion(s.MinClientVersion); err != nil {
			return bad("min_client_version %q: want 2.3000.N", s.MinClientVersion)
		}
	}
	switch {
	case s.RefCount < 1 || s.RefCount > 64:
		return bad("ref_count %d: want 1..64", s.RefCount)
	case s.RefTTLFirst <= 0 || s.RefTTLNext <= 0:
		return bad("ref ttl must be positive")
	case s.PairCodeRateLimit < 0:
		return bad("pair_code_rate_limit %d is negative", s.PairCodeRateLimit)
	case s.PairCodeError != 0 && pairCodeErrorText[s.PairCodeError] == "":
		return bad("pair_code_error %d: want 0, 400, 403, 429, 452 or 500", s.PairCodeError)
	case s.FirstStanzaDelayMS < 0 || s.FirstStanzaDelayMS > 60_000:
		return bad("first_stanza_delay_ms %d: want 0..60000", s.FirstStanzaDelayMS)
	case s.LingerMS < 0 || s.LingerMS > 60_000:
		return bad("linger_ms %d: want 0..60000", s.LingerMS)
	case s.Platform == "":
		return bad("platform is empty")
	case s.IK != "" && s.IK != IKAccept && s.IK != IKFallback && s.IK != IKRefuse:
		return bad("ik %q: want %s, %s or %s", s.IK, IKAccept, IKFallback, IKRefuse)
	case s.Faults.DelayMS < 0 || s.Faults.DelayMS > 60_000:
		return bad("faults.delay_ms %d: want 0..60000", s.Faults.DelayMS)
	}
	switch s.Faults.TamperPairSuccess {
	case "", TamperHMAC, TamperAccountSignature:
	default:
		return bad("faults.tamper_pair_success %q: want %s or %s", s.Faults.TamperPairSuccess, TamperHMAC, TamperAccountSignature)
	}
	if err := s.validatePasskey(); err != nil {
		return err
	}
	if d := s.Faults.DropAfter; d != "" {
		ok := false
		for _, p := range dropPoints {
			ok = ok || p == d
		}
		if !ok {
			return bad("faults.drop_after %q: want one of %s", d, strings.Join(dropPoints, ", "))
		}
	}
	return nil
}

// pairCodeErrorText is the error text WhatsApp sends with each pair-code
// rejection code (CHANGES-2026 §4).
var pairCodeErrorText = map[int]string{
	400: "bad-request",
	403: "forbidden",
	429: "rate-overlimit",
	452: "feature-not-available",
	500: "internal-server-error",
}

// refTTL returns the validity window of ref i (0-based): [from, until).
func (s Scenario) refWindow(issued time.Time, i int) (from, until time.Time) {
	first := time.Duration(s.RefTTLFirst * float64(time.Second))
	next := time.Duration(s.RefTTLNext * float64(time.Second))
	if i == 0 {
		return issued, issued.Add(first)
	}
	from = issued.Add(first + time.Duration(i-1)*next)
	return from, from.Add(next)
}

func (s Scenario) drop(point string) bool { return s.Faults.DropAfter == point }

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// version is a client app version (primary.secondary.tertiary).
type version [3]uint32

func parseVersion(s string) (version, error) {
	var v version
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return v, fmt.Errorf("watest: version %q: want three numbers", s)
	}
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return v, fmt.Errorf("watest: version %q: %w", s, err)
		}
		v[i] = uint32(n)
	}
	return v, nil
}

func (v version) less(w version) bool {
	for i := range v {
		if v[i] != w[i] {
			return v[i] < w[i]
		}
	}
	return false
}

func (v version) String() string { return fmt.Sprintf("%d.%d.%d", v[0], v[1], v[2]) }

// RegisterFlags defines one command-line flag per knob on fs, named like
// the JSON keys with dashes (--qr-refresh=false, --min-client-version …,
// --ref-count, --ref-ttl-first-s, --ref-ttl-next-s, --pair-code-rate-limit,
// --pair-code-error, --first-stanza-delay-ms, --linger-ms, --platform, --business-name, --ik, --web-revision,
// --passkey, --passkey-confirm, --passkey-timeout-ms, --passkey-options,
// --fault-drop-after, --fault-delay-ms, --fault-garbage-frame,
// --fault-oversize-frame, --fault-bad-cert, --fault-leaf-mismatch,
// --fault-tamper-pair-success).
// Parsed values land in s, so call it on a DefaultScenario.
func (s *Scenario) RegisterFlags(fs *flag.FlagSet) {
	fs.BoolVar(&s.QRRefresh, "qr-refresh", s.QRRefresh, "answer the first QR scan with companion_reg_refresh")
	fs.StringVar(&s.MinClientVersion, "min-client-version", s.MinClientVersion, "refuse older clients with failure 405 (2.3000.N)")
	fs.IntVar(&s.RefCount, "ref-count", s.RefCount, "refs per pair-device")
	fs.Float64Var(&s.RefTTLFirst, "ref-ttl-first-s", s.RefTTLFirst, "validity of the first ref, seconds")
	fs.Float64Var(&s.RefTTLNext, "ref-ttl-next-s", s.RefTTLNext, "validity of each later ref, seconds")
	fs.IntVar(&s.PairCodeRateLimit, "pair-code-rate-limit", s.PairCodeRateLimit, "companion_hello per number per hour (0 = no limit)")
	fs.IntVar(&s.PairCodeError, "pair-code-error", s.PairCodeError, "refuse every companion_hello with this code: 400, 403, 429, 452 or 500 (0 = off)")
	fs.IntVar(&s.FirstStanzaDelayMS, "first-stanza-delay-ms", s.FirstStanzaDelayMS, "pause before the first stanza after the handshake")
	fs.IntVar(&s.LingerMS, "linger-ms", s.LingerMS, "how long to keep a socket open after a stream error")
	fs.StringVar(&s.Platform, "platform", s.Platform, "primary platform sent in pair-success")
	fs.StringVar(&s.BusinessName, "business-name", s.BusinessName, "business name sent in pair-success (empty = none)")
	fs.Func("web-revision", "client_revision served in /sw.js (0 = /sw.js answers 404)", func(v string) error {
		n, err := strconv.ParseUint(v, 10, 32)
		s.WebRevision = uint32(n)
		return err
	})
	fs.StringVar(&s.IK, "ik", s.IK, "answer to a Noise IK resume: accept, fallback (as after a key rotation) or refuse")
	fs.StringVar(&s.Passkey, "passkey", s.Passkey, "gate linking behind the passkey step: off, qr, code or both")
	fs.StringVar(&s.PasskeyConfirm, "passkey-confirm", s.PasskeyConfirm, "how the phone confirms the passkey code: auto or manual")
	fs.IntVar(&s.PasskeyTimeoutMS, "passkey-timeout-ms", s.PasskeyTimeoutMS, "passkey step deadline (0 = 600000)")
	fs.StringVar(&s.PasskeyOptions, "passkey-options", s.PasskeyOptions, "passkey request options: inline, fetch (left out) or garbled")
	fs.StringVar(&s.Faults.DropAfter, "fault-drop-after", s.Faults.DropAfter, "drop the socket after: "+strings.Join(dropPoints, ", "))
	fs.IntVar(&s.Faults.DelayMS, "fault-delay-ms", s.Faults.DelayMS, "delay every server stanza")
	fs.BoolVar(&s.Faults.GarbageFrame, "fault-garbage-frame", s.Faults.GarbageFrame, "send an undecodable frame after the handshake")
	fs.BoolVar(&s.Faults.OversizeFrame, "fault-oversize-frame", s.Faults.OversizeFrame, "send a >16 MiB message after the handshake")
	fs.BoolVar(&s.Faults.BadCert, "fault-bad-cert", s.Faults.BadCert, "present a certificate chain under another root")
	fs.BoolVar(&s.Faults.LeafMismatch, "fault-leaf-mismatch", s.Faults.LeafMismatch, "present a leaf certificate for another key")
	fs.StringVar(&s.Faults.TamperPairSuccess, "fault-tamper-pair-success", s.Faults.TamperPairSuccess, "corrupt pair-success: hmac or account-signature")
}
