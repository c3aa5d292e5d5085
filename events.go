package walink

import (
	"strconv"
	"time"

	"github.com/walinkdev/walink/jid"
)

// Event is something that happened to the client. The set is sealed: every
// event is one of the types below. Events are delivered one at a time, in
// the order they happened, to every handler added with AddEventHandler.
type Event interface{ isEvent() }

// PairingQRCode asks you to show Code as a QR code. It is valid for
// Timeout; a new PairingQRCode replaces it (rotation, or a re-render after
// the server retired the adv secret). Code is exactly the text to encode.
type PairingQRCode struct {
	Code    string
	Timeout time.Duration
}

// PairingCode is the 8-character code returned by PairWithCode, to be typed
// on the phone (WhatsApp > Linked devices > Link with phone number).
// Expires is the instant (of Config.Now's clock) after which WhatsApp no
// longer accepts it: the moment it was issued plus Timeout.
type PairingCode struct {
	Code    string
	Timeout time.Duration
	Expires time.Time
}

// PairingCodeRefresh says the server wants a new pair code: cancel the
// outstanding one with CancelPairCode and call PairWithCode again.
// ForceManual is the server's hint that the user must retype it.
type PairingCodeRefresh struct{ ForceManual bool }

// QRCodesExpired says every QR ref expired without a scan. Unless a pair
// code is outstanding the client disconnects; call Connect to start over.
type QRCodesExpired struct{}

// PairSuccess says the phone linked this device. The session is saved; the
// client reconnects and logs in by itself, then emits Connected.
type PairSuccess struct {
	ID           jid.JID // own device JID, phone:device@s.whatsapp.net
	LID          jid.JID // own LID
	BusinessName string
	Platform     string // the phone's platform, e.g. "android"
}

// PairError says a pair-success from the server was refused (bad HMAC,
// bad account signature, storage failure) or a pair-code stage failed.
// Nothing was stored; WhatsApp was sent its error reply.
type PairError struct {
	ID           jid.JID
	LID          jid.JID
	BusinessName string
	Platform     string
	Err          error
}

// Connected says the client is logged in and online.
type Connected struct{}

// Disconnected says a connection ended. Whether the client reconnects
// depends on why (see Config.Reconnect); a LoggedOut, StreamReplaced,
// ClientOutdated, TemporaryBan or QRCodesExpired before it means it won't.
type Disconnected struct{}

// LoggedOut says the device is no longer linked and its session was
// deleted from the store. OnConnect tells whether the server refused the
// login (true) or ended a live session (false, also after Logout).
type LoggedOut struct {
	OnConnect bool
	Reason    ConnectFailureReason
}

// StreamReplaced says another connection of this device took over. The
// client does not reconnect, so the two do not fight.
type StreamReplaced struct{}

// ClientOutdated says WhatsApp refused the client version (failure 405)
// and the client could not recover: the version is pinned (Config.Version),
// fetching the current one failed, or WhatsApp refused the version just
// fetched. Message says why. Without a pin the client first fetches the
// current WhatsApp Web version and reconnects once with it, silently.
type ClientOutdated struct{ Message string }

// ClientExpiration says WhatsApp announced that the client version in use
// expires At (<ib><client_expiration/>); after it the version is refused.
// Unless Config.Version pins one, the client fetches the current version
// before At (an hour before, or halfway when At is nearer) and uses it
// from the next connect on.
type ClientExpiration struct{ At time.Time }

// TemporaryBan says the account is banned for Expire (failure 402).
type TemporaryBan struct {
	Code   int // 101 too many messages to non-contacts, 102 blocked by users, 103 too many groups, 104 same message to many, 106 broadcast list
	Expire time.Duration
}

// ConnectFailure is a login failure that is not covered by the events
// above (LoggedOut, ClientOutdated, TemporaryBan).
type ConnectFailure struct {
	Reason  ConnectFailureReason
	Message string
}

// QRScannedWithoutMultidevice says the phone scanned the QR code but does
// not have multi-device enabled. Current phones always have it, and no
// stanza of today's protocol announces this, so the client does not emit
// it at present; it is kept so handlers written for older designs compile.
type QRScannedWithoutMultidevice struct{}

func (PairingQRCode) isEvent()               {}
func (ClientExpiration) isEvent()            {}
func (PairingCode) isEvent()                 {}
func (PairingCodeRefresh) isEvent()          {}
func (QRCodesExpired) isEvent()              {}
func (PairSuccess) isEvent()                 {}
func (PairError) isEvent()                   {}
func (Connected) isEvent()                   {}
func (Disconnected) isEvent()                {}
func (LoggedOut) isEvent()                   {}
func (StreamReplaced) isEvent()              {}
func (ClientOutdated) isEvent()              {}
func (TemporaryBan) isEvent()                {}
func (ConnectFailure) isEvent()              {}
func (QRScannedWithoutMultidevice) isEvent() {}

// ConnectFailureReason is the reason code of a <failure> (or the code of a
// stream error that logged the device out). Values are WhatsApp's wire
// codes (PROTOCOL.md §18).
type ConnectFailureReason int

// Connect failure reasons.
const (
	ReasonGeneric            ConnectFailureReason = 400
	ReasonLoggedOut          ConnectFailureReason = 401
	ReasonTempBanned         ConnectFailureReason = 402
	ReasonMainDeviceGone     ConnectFailureReason = 403
	ReasonClientOutdated     ConnectFailureReason = 405
	ReasonUnknownLogout      ConnectFailureReason = 406
	ReasonBadUserAgent       ConnectFailureReason = 409
	ReasonCATExpired         ConnectFailureReason = 413
	ReasonCATInvalid         ConnectFailureReason = 414
	ReasonNotFound           ConnectFailureReason = 415
	ReasonClientUnknown      ConnectFailureReason = 418
	ReasonInternalServer     ConnectFailureReason = 500
	ReasonExperimental       ConnectFailureReason = 501
	ReasonServiceUnavailable ConnectFailureReason = 503
)

var reasonNames = map[ConnectFailureReason]string{
	ReasonGeneric:            "generic",
	ReasonLoggedOut:          "logged out",
	ReasonTempBanned:         "temporarily banned",
	ReasonMainDeviceGone:     "main device gone",
	ReasonClientOutdated:     "client outdated",
	ReasonUnknownLogout:      "unknown logout",
	ReasonBadUserAgent:       "bad user agent",
	ReasonCATExpired:         "cat expired",
	ReasonCATInvalid:         "cat invalid",
	ReasonNotFound:           "not found",
	ReasonClientUnknown:      "client unknown",
	ReasonInternalServer:     "internal server error",
	ReasonExperimental:       "experimental",
	ReasonServiceUnavailable: "service unavailable",
}

// String returns a short lower-case description with the code.
func (r ConnectFailureReason) String() string {
	if s, ok := reasonNames[r]; ok {
		return s + " (" + strconv.Itoa(int(r)) + ")"
	}
	return "failure " + strconv.Itoa(int(r))
}

// IsLoggedOut reports whether the reason means the device is unlinked
// (401, 403, 406): the session is gone and the next connect pairs anew.
func (r ConnectFailureReason) IsLoggedOut() bool {
	return r == ReasonLoggedOut || r == ReasonMainDeviceGone || r == ReasonUnknownLogout
}
