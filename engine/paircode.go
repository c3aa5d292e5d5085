package engine

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"time"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/keys"
)

// Pair-code flow limits (CHANGES-2026.md §4).
const (
	PairCodeLifetime      = 180 * time.Second // a code's window
	MaxPrimaryHellos      = 3                 // primary_hello notifications accepted per code
	CompanionFinishWait   = 30 * time.Second  // how long to wait for the companion_finish reply
	PairSuccessAfterHello = 60 * time.Second  // refresh if no pair-success this long after primary_hello
)

// CompanionHello is stage 1 of pair-code linking (PROTOCOL.md §14.3):
//
//	<iq xmlns="md" type="set" to="s.whatsapp.net" id=…>
//	  <link_code_companion_reg jid="<digits>@s.whatsapp.net" stage="companion_hello" should_show_push_notification="true|false">
//	    <link_code_pairing_wrapped_companion_ephemeral_pub>80 bytes</…>
//	    <companion_server_auth_key_pub>noise static pub (32)</…>
//	    <companion_platform_id>"1"</…>
//	    <companion_platform_display>"Chrome (Linux)"</…>
//	    <link_code_pairing_nonce>00</…>
//	  </link_code_companion_reg>
//	</iq>
func CompanionHello(id, phone string, showPush bool, wrapped []byte, noisePub keys.PublicKey, platformID, display string) binxml.Node {
	push := "false"
	if showPush {
		push = "true"
	}
	return IQ(id, "md", "set", binxml.Node{
		Tag: "link_code_companion_reg",
		Attrs: []binxml.Attr{
			binxml.AJ("jid", jid.New(phone, jid.DefaultUserServer)),
			binxml.A("stage", "companion_hello"),
			binxml.A("should_show_push_notification", push),
		},
		Children: []binxml.Node{
			{Tag: "link_code_pairing_wrapped_companion_ephemeral_pub", Content: wrapped},
			{Tag: "companion_server_auth_key_pub", Content: noisePub.Bytes()},
			{Tag: "companion_platform_id", Content: []byte(platformID)},
			{Tag: "companion_platform_display", Content: []byte(display)},
			{Tag: "link_code_pairing_nonce", Content: []byte{0}},
		},
	})
}

// ParseCompanionHelloResult returns the pairing ref from the stage-1 reply
// <iq type="result"><link_code_companion_reg><link_code_pairing_ref>REF</…></…></iq>,
// or nil when it is missing.
func ParseCompanionHelloResult(n binxml.Node) []byte {
	reg, ok := n.Child("link_code_companion_reg")
	if !ok {
		return nil
	}
	ref, ok := reg.Child("link_code_pairing_ref")
	if !ok || len(ref.Content) == 0 {
		return nil
	}
	return ref.Content
}

// CompanionFinish is the stage-2 request (PROTOCOL.md §14.5):
//
//	<iq xmlns="md" type="set" to="s.whatsapp.net" id=…>
//	  <link_code_companion_reg jid="<digits>@s.whatsapp.net" stage="companion_finish">
//	    <link_code_pairing_wrapped_key_bundle>156 bytes</…>
//	    <companion_identity_public>32 bytes</…>
//	    <link_code_pairing_ref>REF</…>
//	  </link_code_companion_reg>
//	</iq>
func CompanionFinish(id, phone string, bundle []byte, identity keys.PublicKey, ref []byte) binxml.Node {
	return IQ(id, "md", "set", binxml.Node{
		Tag: "link_code_companion_reg",
		Attrs: []binxml.Attr{
			binxml.AJ("jid", jid.New(phone, jid.DefaultUserServer)),
			binxml.A("stage", "companion_finish"),
		},
		Children: []binxml.Node{
			{Tag: "link_code_pairing_wrapped_key_bundle", Content: bundle},
			{Tag: "companion_identity_public", Content: identity.Bytes()},
			{Tag: "link_code_pairing_ref", Content: ref},
		},
	})
}

// LinkCodeNotification is a <notification type="link_code_companion_reg">.
type LinkCodeNotification struct {
	Stage           string // "primary_hello", "refresh_code", …
	Ref             []byte
	WrappedPrimary  []byte // primary_hello: 80 bytes
	PrimaryIdentity []byte // primary_hello: 32 bytes
	ForceManual     bool   // refresh_code
}

// ParseLinkCodeNotification reads the stage and its fields; the caller
// dispatches on Stage.
func ParseLinkCodeNotification(n binxml.Node) (LinkCodeNotification, error) {
	reg, ok := n.Child("link_code_companion_reg")
	if !ok {
		return LinkCodeNotification{}, malformed("no <link_code_companion_reg>")
	}
	out := LinkCodeNotification{Stage: reg.Attr("stage"), ForceManual: reg.Attr("force_manual_refresh") == "true"}
	if c, ok := reg.Child("link_code_pairing_ref"); ok {
		out.Ref = c.Content
	}
	if c, ok := reg.Child("link_code_pairing_wrapped_primary_ephemeral_pub"); ok {
		out.WrappedPrimary = c.Content
	}
	if c, ok := reg.Child("primary_identity_pub"); ok {
		out.PrimaryIdentity = c.Content
	}
	return out, nil
}

// Errors of the stage-2 checks.
var (
	ErrRefMismatch    = errors.New("engine: pairing ref does not match the outstanding code")
	ErrCodeExpired    = errors.New("engine: pair code expired")
	ErrTooManyHellos  = errors.New("engine: too many primary_hello for this code")
	ErrBadKeyLength   = errors.New("engine: wrong key length in primary_hello")
	ErrFlowNotWaiting = errors.New("engine: no pair code waiting for primary_hello")
)

// CodeFlow is the companion's bookkeeping for one outstanding pair code.
type CodeFlow struct {
	Code      string
	Phone     string
	Ref       []byte
	Started   time.Time
	Hellos    int
	Finishing bool // companion_finish sent, waiting for pair-success
	Done      bool
	// Lifetime is the code's window; zero means PairCodeLifetime.
	Lifetime time.Duration
}

func (f *CodeFlow) lifetime() time.Duration {
	if f.Lifetime > 0 {
		return f.Lifetime
	}
	return PairCodeLifetime
}

// CheckPrimaryHello applies the stage-2 rules to a primary_hello at now:
// ref equal (constant time), age within the code's lifetime, at most
// MaxPrimaryHellos, and the exact key lengths. It counts the attempt.
func (f *CodeFlow) CheckPrimaryHello(now time.Time, n LinkCodeNotification) error {
	if f == nil || f.Done || f.Ref == nil {
		return ErrFlowNotWaiting
	}
	if subtle.ConstantTimeCompare(f.Ref, n.Ref) != 1 {
		return ErrRefMismatch
	}
	if now.Sub(f.Started) > f.lifetime() {
		return ErrCodeExpired
	}
	if f.Hellos >= MaxPrimaryHellos {
		return ErrTooManyHellos
	}
	f.Hellos++
	if len(n.WrappedPrimary) != wrappedKeySize || len(n.PrimaryIdentity) != keys.Size {
		return fmt.Errorf("%w: wrapped %d, identity %d", ErrBadKeyLength, len(n.WrappedPrimary), len(n.PrimaryIdentity))
	}
	return nil
}

// Outstanding reports whether the code still blocks a new one at now: it is
// within its window, or stage 2 is waiting for pair-success.
func (f *CodeFlow) Outstanding(now time.Time) bool {
	if f == nil || f.Done {
		return false
	}
	return f.Finishing || now.Sub(f.Started) <= f.lifetime()
}

// wrappedKeySize is salt(32) || iv(16) || ciphertext(32) (PROTOCOL.md §14.2).
const wrappedKeySize = 80
