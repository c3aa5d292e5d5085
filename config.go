package walink

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/walinkdev/walink/engine"
	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/pairing"
	"github.com/walinkdev/walink/transport"
	"github.com/walinkdev/walink/waproto"
	"github.com/walinkdev/walink/waversion"
)

// DefaultVersion is the WhatsApp Web client revision sent when
// Config.Version is empty: 2.3000.1045368834, the revision whatsapp-rust
// pinned on 2026-08-21 (PROTOCOL.md §0, §6.3). WhatsApp refuses versions
// that get too old with failure 405 (ClientOutdated); the current one is
// the "client_revision" in https://web.whatsapp.com/sw.js.
const DefaultVersion = "2.3000.1045368834"

// PlatformType is the kind of companion shown on the phone
// (DeviceProps.PlatformType; PROTOCOL.md §21).
type PlatformType int32

// Platform types.
const (
	PlatformUnknown PlatformType = 0
	PlatformChrome  PlatformType = 1
	PlatformFirefox PlatformType = 2
	PlatformIE      PlatformType = 3
	PlatformOpera   PlatformType = 4
	PlatformSafari  PlatformType = 5
	PlatformEdge    PlatformType = 6
	PlatformDesktop PlatformType = 7
	PlatformIPad    PlatformType = 8
	PlatformUWP     PlatformType = 21
)

// clientType is the companion platform id (CompanionWebClientType) of the
// QR string's 5th field and of a pair code's companion_platform_id
// (CHANGES-2026.md §2); pairing holds the one table of the two enums.
func (p PlatformType) clientType() string { return pairing.ClientTypeForPlatform(int32(p)) }

// ReconnectPolicy says how the client reconnects after an unexpected
// disconnect. The zero value is the default policy. The client never
// reconnects after a logout, a logged-out / banned / outdated failure or a
// replaced stream; the restart WhatsApp asks for after pairing (515) is
// always followed at once.
type ReconnectPolicy struct {
	// Disabled turns automatic reconnection off.
	Disabled bool
	// MinDelay is the first delay; default 1 s.
	MinDelay time.Duration
	// MaxDelay caps the delay; default 2 min.
	MaxDelay time.Duration
	// Multiplier grows the delay per failed attempt; default 2.
	Multiplier float64
	// Jitter is the randomised fraction of each delay; default 0.2.
	Jitter float64
	// RateLimitDelay is the least delay after a rate-limit answer (stream
	// error 429); default 30 s.
	RateLimitDelay time.Duration
}

// Config configures a Client. The zero value is ready to use: every field's
// default is documented on it. A Config is copied by NewClient and never
// modified.
type Config struct {
	// ServerURL is the WebSocket endpoint; default wss://web.whatsapp.com/ws/chat,
	// or, when neither ServerURL nor ServerRoot is set, the server a
	// stored device was linked against (store.Device.ServerURL).
	ServerURL string
	// ServerRoot is the trusted root of the server's certificate chain;
	// zero means WhatsApp's real root. Tests set it to watest's RootKey.
	ServerRoot keys.PublicKey
	// Dial, when set, opens the connection the WebSocket runs over instead
	// of dialing ServerURL's host (Proxy is then unused; ServerURL still
	// names the request). Tests use it to meet watest's Handler over
	// net.Pipe. Default nil: dial ServerURL.
	Dial func(ctx context.Context) (net.Conn, error)
	// DialGate, when set, is called before every dial, reconnects and the
	// restart after pairing included, and holds the slot it returns until
	// the server answered the login (pairing offered, paired, connected),
	// the connection ended, or twice HandshakeTimeout passed. Give one
	// gate (e.g. LimitDials(n)) to many clients to bound their handshakes
	// in flight, after an outage too. Default nil: no limit.
	DialGate DialGate
	// Proxy returns the HTTP or SOCKS5 proxy for the WebSocket request
	// (e.g. http.ProxyFromEnvironment, or http.ProxyURL(u) with a
	// socks5:// URL); nil means a direct connection.
	Proxy func(*http.Request) (*url.URL, error)
	// Version pins the WhatsApp Web revision "2.3000.N". Empty (the
	// default) follows WhatsApp: DefaultVersion, or a newer one fetched
	// from VersionURL and kept in the store when WhatsApp refuses it
	// (failure 405: one fetch, one reconnect) or announces its
	// expiration. A pinned version is never replaced: a 405 then ends in
	// ClientOutdated.
	Version string
	// VersionURL is WhatsApp Web's service-worker script, whose
	// client_revision is the current version; default
	// waversion.DefaultURL (https://web.whatsapp.com/sw.js). Tests point it
	// at watest's /sw.js. The fetch goes through Proxy.
	VersionURL string
	// VersionFetchTimeout bounds one version fetch; default 20 s.
	VersionFetchTimeout time.Duration
	// DisableResume makes every connect a full Noise XX handshake. By
	// default a registered device resumes with Noise IK (one round trip
	// fewer) to the server certificate chain verified on its last
	// connect, as WhatsApp Web does; a resume that fails before the
	// handshake completes turns IK off for the rest of the process.
	DisableResume bool
	// OSName is the name shown on the phone's linked-devices list;
	// default "walink".
	OSName string
	// PlatformType is the kind of device shown on the phone and the QR
	// code's client type; zero means PlatformChrome.
	PlatformType PlatformType
	// PushName is sent at login; default none.
	PushName string
	// Device picks which stored device to use by its JID. Zero means the
	// first paired device, else the first unpaired one, else a new one.
	Device jid.JID
	// NewDevice makes the client register a device of its own even when
	// the store holds others: how a process serving many accounts from one
	// store links another (each Client then pairs its own device; Client.ID
	// names it for Device next time). A device made this way that never
	// pairs is deleted again on Close. Ignored when Device is set; default
	// false.
	NewDevice bool
	// QRFirstTimeout is how long the first QR ref is shown; default 60 s.
	QRFirstTimeout time.Duration
	// QRNextTimeout is how long each later ref is shown; default 20 s.
	QRNextTimeout time.Duration
	// PairCodeTimeout is how long a pair code stays valid; default 180 s
	// (CHANGES-2026.md §4). After it a code that the phone never used is
	// dropped and a new one may be requested.
	PairCodeTimeout time.Duration
	// PairCodeFinishTimeout is how long pair-success may take after
	// companion_finish was accepted before the code is given up and
	// PairingCodeRefresh is emitted; default 60 s.
	PairCodeFinishTimeout time.Duration
	// PairConfirmTimeout is how long the client waits, after answering
	// pair-success, for the server's 515 restart that confirms the link;
	// default 20 s. Past it the connection is restarted and a login with
	// the (Unconfirmed) session settles whether the link was made.
	PairConfirmTimeout time.Duration
	// Reconnect is the reconnect policy; the zero value is the default.
	Reconnect ReconnectPolicy
	// KeepaliveMin and KeepaliveMax bound the random interval between
	// keepalive pings; defaults 20 s and 30 s (WhatsApp Web's).
	KeepaliveMin, KeepaliveMax time.Duration
	// KeepaliveTimeout is how long a ping may go unanswered; default 10 s.
	KeepaliveTimeout time.Duration
	// KeepaliveGiveUp is how long pings may fail before the connection is
	// dropped and re-established; default 3 min.
	KeepaliveGiveUp time.Duration
	// HandshakeTimeout bounds dialing plus the Noise handshake; default 20 s.
	HandshakeTimeout time.Duration
	// IQTimeout bounds a request when the caller's ctx has no deadline;
	// default 75 s.
	IQTimeout time.Duration
	// LogoutTimeout bounds the wait for the server to confirm a logout;
	// default 10 s.
	LogoutTimeout time.Duration
	// PreKeyCount is how many pre-keys are uploaded when the server runs
	// low (fewer than 5); default 812, WhatsApp Web's batch.
	PreKeyCount int
	// Logger receives structured logs; nil discards them. Secrets (private
	// keys, adv secrets, codes' key material) are never logged.
	Logger *slog.Logger
	// Rand is the randomness source; nil means crypto/rand.
	Rand io.Reader
	// Now is the client's one clock: QR and code deadlines, keepalive,
	// request timeouts and every other timer are instants of it (a timer
	// fires when the runtime has waited out the difference to Now), and
	// event Timeouts follow it. Nil means time.Now.
	Now func() time.Time
	// PasskeyAuthenticator, when set, answers every passkey request
	// (PairPasskeyRequest) by itself: the client runs it off its own
	// goroutines with a ctx that ends at the step's deadline, and sends
	// the assertion as SendPasskeyResponse would; an error becomes a
	// PairPasskeyError. The events are emitted all the same. Default nil:
	// the application calls SendPasskeyResponse.
	PasskeyAuthenticator PasskeyAuthenticator
	// PasskeyAutoConfirm confirms the passkey step's code by itself when a
	// handoff proof went with the assertion (PairPasskeyConfirmation's
	// SkipHandoffUX: the phone itself vouched for this companion); the
	// event is emitted all the same, and a failure is a PairPasskeyError.
	// Default false: the application calls ConfirmPasskey.
	PasskeyAutoConfirm bool
}

// resolved returns cfg with every default filled in.
// discardLogger is the Logger of every Config without one: shared, so a
// client does not hold a logger of its own.
var discardLogger = slog.New(slog.DiscardHandler)

func (cfg Config) resolved() (Config, engine.Version, error) {
	if cfg.ServerURL == "" {
		cfg.ServerURL = transport.DefaultURL
	}
	if cfg.Version == "" {
		cfg.Version = DefaultVersion
	}
	if cfg.VersionURL == "" {
		cfg.VersionURL = waversion.DefaultURL
	}
	if cfg.OSName == "" {
		cfg.OSName = "walink"
	}
	if cfg.PlatformType == PlatformUnknown {
		cfg.PlatformType = PlatformChrome
	}
	setDur := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	setDur(&cfg.QRFirstTimeout, 60*time.Second)
	setDur(&cfg.QRNextTimeout, 20*time.Second)
	setDur(&cfg.PairCodeTimeout, engine.PairCodeLifetime)
	setDur(&cfg.PairCodeFinishTimeout, engine.PairSuccessAfterHello)
	setDur(&cfg.PairConfirmTimeout, 20*time.Second)
	setDur(&cfg.KeepaliveMin, 20*time.Second)
	setDur(&cfg.KeepaliveMax, 30*time.Second)
	if cfg.KeepaliveMax < cfg.KeepaliveMin {
		cfg.KeepaliveMax = cfg.KeepaliveMin
	}
	setDur(&cfg.KeepaliveTimeout, 10*time.Second)
	setDur(&cfg.KeepaliveGiveUp, 3*time.Minute)
	setDur(&cfg.HandshakeTimeout, 20*time.Second)
	setDur(&cfg.VersionFetchTimeout, waversion.DefaultTimeout)
	setDur(&cfg.IQTimeout, 75*time.Second)
	setDur(&cfg.LogoutTimeout, 10*time.Second)
	r := &cfg.Reconnect
	setDur(&r.MinDelay, time.Second)
	setDur(&r.MaxDelay, 2*time.Minute)
	setDur(&r.RateLimitDelay, 30*time.Second)
	if r.Multiplier < 1 {
		r.Multiplier = 2
	}
	if r.Jitter <= 0 || r.Jitter > 1 {
		r.Jitter = 0.2
	}
	if cfg.PreKeyCount <= 0 {
		cfg.PreKeyCount = 812
	}
	if cfg.Logger == nil {
		cfg.Logger = discardLogger
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	// Parsed last, so an invalid Config still has every default set.
	v, err := engine.ParseVersion(cfg.Version)
	if err != nil {
		return cfg, v, fmt.Errorf("%w: Version: %w", ErrInvalidConfig, err)
	}
	return cfg, v, nil
}

func (cfg Config) payloadConfig(v engine.Version) engine.PayloadConfig {
	return engine.PayloadConfig{
		Version:      v,
		OSName:       cfg.OSName,
		PlatformType: waproto.DeviceProps_PlatformType(cfg.PlatformType),
		PushName:     cfg.PushName,
	}
}
