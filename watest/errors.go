package watest

import (
	"errors"
	"fmt"
)

// Sentinel errors returned by the virtual phone and the server. Errors wrap
// one of these, so callers test them with errors.Is.
var (
	// ErrRescan is returned by the first scan of a connection while the
	// QRRefresh knob is on: the server sent companion_reg_refresh and the
	// companion must show the same ref with a new adv secret.
	ErrRescan = errors.New("watest: qr retired by companion_reg_refresh; scan the re-rendered code")
	// ErrStaleQR reports a scan of a QR whose adv secret was retired by
	// companion_reg_refresh (the companion did not re-render it).
	ErrStaleQR = errors.New("watest: qr carries a retired adv secret")
	// ErrWrongCode reports a pair code that does not open the companion's
	// key bundle.
	ErrWrongCode = errors.New("watest: wrong pair code")
	// ErrUnknownRef reports a QR whose ref the server never issued, or
	// whose connection is gone.
	ErrUnknownRef = errors.New("watest: unknown ref")
	// ErrExpiredRef reports a QR whose ref is past its validity.
	ErrExpiredRef = errors.New("watest: expired ref")
	// ErrNoPendingCode reports a code entered on a phone that no companion
	// asked to link with (no companion_hello for that number).
	ErrNoPendingCode = errors.New("watest: no pending pair-code request for this phone")
	// ErrMalformedQR reports a QR string that does not parse.
	ErrMalformedQR = errors.New("watest: malformed qr")
	// ErrQRMismatch reports a QR whose keys differ from the ones the
	// companion registered in its handshake.
	ErrQRMismatch = errors.New("watest: qr keys do not match the companion's registration")
	// ErrSignatureRefused reports a pair-device-sign reply whose device
	// signature does not verify, or that is malformed.
	ErrSignatureRefused = errors.New("watest: device signature refused")
	// ErrPairRejected reports a companion that answered pair-success with
	// an error IQ (hmac-mismatch, signature-mismatch, internal-error).
	ErrPairRejected = errors.New("watest: companion rejected pair-success")
	// ErrBusy reports a pairing already in progress on the connection.
	ErrBusy = errors.New("watest: pairing already in progress")
	// ErrDisconnected reports that the companion's connection ended while
	// the phone waited for it.
	ErrDisconnected = errors.New("watest: companion disconnected")
	// ErrNotConnected reports a device with no live connection.
	ErrNotConnected = errors.New("watest: device not connected")
	// ErrUnknownDevice reports a device that is not linked to the phone.
	ErrUnknownDevice = errors.New("watest: unknown device")
	// ErrTooManyDevices reports a phone whose 255 device numbers are all
	// taken.
	ErrTooManyDevices = errors.New("watest: no free device number on this phone")
	// ErrBadScenario reports an invalid scenario knob.
	ErrBadScenario = errors.New("watest: invalid scenario")
	// ErrClosed reports use of a closed server.
	ErrClosed = errors.New("watest: server closed")
)

// IQError is an error IQ (<iq type="error"><error code text/></iq>) that
// the companion sent in reply to a server request. It wraps ErrPairRejected
// when it answered pair-success.
type IQError struct {
	Code int
	Text string
	err  error
}

func (e *IQError) Error() string {
	return fmt.Sprintf("watest: companion replied with error %d %s", e.Code, e.Text)
}

// Unwrap returns the condition the reply stands for.
func (e *IQError) Unwrap() error { return e.err }
