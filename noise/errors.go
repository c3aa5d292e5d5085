package noise

import (
	"errors"
	"fmt"
)

// Sentinel errors. Errors returned by this package wrap one of these, so
// callers test them with errors.Is.
var (
	// ErrFrameTooLarge reports a frame body (or edge-routing blob) of 2^24
	// bytes or more, or larger than the decoder's configured limit.
	ErrFrameTooLarge = errors.New("noise: frame too large")
	// ErrBadHeader reports a connection header other than WA 06 02 / WA 06 03,
	// or a malformed edge-routing pre-intro.
	ErrBadHeader = errors.New("noise: bad connection header")
	// ErrShortFrame reports a stream that ended inside a frame.
	ErrShortFrame = errors.New("noise: truncated frame")
	// ErrDecrypt reports an AEAD authentication failure: the peer's bytes
	// were altered, or the two sides disagree on keys.
	ErrDecrypt = errors.New("noise: decryption failed")
	// ErrCipherBroken reports use of a transport cipher after a failed
	// Open. Crypto failures are terminal: the connection must be dropped.
	ErrCipherBroken = errors.New("noise: cipher unusable after a decryption failure")
	// ErrNonceExhausted reports that a direction has used all 2^32 nonces.
	ErrNonceExhausted = errors.New("noise: nonce counter exhausted")
	// ErrHandshakeState reports a handshake method called out of order, or
	// again after the handshake failed or finished.
	ErrHandshakeState = errors.New("noise: handshake method called out of order")
	// ErrBadMessage reports a handshake message that is not the expected
	// protobuf, or lacks a field, or has a field of the wrong length.
	ErrBadMessage = errors.New("noise: malformed handshake message")
	// ErrUnsupported reports a handshake pattern the responder was told
	// not to speak (an IK client hello under IKRefuse).
	ErrUnsupported = errors.New("noise: unsupported handshake pattern")
	// ErrBadConfig reports a handshake config missing a required field.
	ErrBadConfig = errors.New("noise: bad handshake config")
	// ErrResumeFailed reports a Noise IK resume that failed before the
	// pivot to XXfallback: the server dropped it, or its answer did not
	// decrypt or verify. CHANGES-2026 §7: forget the cached chain and stop
	// resuming in this process. transport.ErrResumeFailed wraps it, so a
	// sans-IO caller (package engine) can recognise it without importing
	// the transport.
	ErrResumeFailed = errors.New("noise: IK resume failed")
	// ErrBadCertificate is wrapped by every *CertError.
	ErrBadCertificate = errors.New("noise: bad server certificate")
)

// CertReason says which certificate-chain check failed.
type CertReason int

// Certificate check failures, in the order VerifyCertChain performs them.
const (
	CertMalformed          CertReason = iota + 1 // not a CertChain, or a part is missing or the wrong size
	CertBadRootSignature                         // intermediate not signed by the expected root
	CertIntermediateIssuer                       // intermediate issuerSerial is not 0
	CertBadSignature                             // leaf not signed by the intermediate key
	CertIssuerMismatch                           // leaf issuerSerial differs from the intermediate serial
	CertLeafKeyMismatch                          // leaf key differs from the server static key
	CertExpired                                  // now is after notAfter of a certificate
	CertNotYetValid                              // now is before notBefore of a certificate
)

var certReasonText = map[CertReason]string{
	CertMalformed:          "malformed chain",
	CertBadRootSignature:   "intermediate not signed by the trusted root",
	CertIntermediateIssuer: "intermediate issuer serial is not 0",
	CertBadSignature:       "leaf not signed by the intermediate",
	CertIssuerMismatch:     "leaf issuer serial does not match the intermediate serial",
	CertLeafKeyMismatch:    "leaf key is not the server static key",
	CertExpired:            "certificate expired",
	CertNotYetValid:        "certificate not yet valid",
}

func (r CertReason) String() string {
	if s, ok := certReasonText[r]; ok {
		return s
	}
	return fmt.Sprintf("CertReason(%d)", int(r))
}

// CertError reports a server certificate chain that failed verification.
// It wraps ErrBadCertificate (and Err, when a lower-level error caused it).
type CertError struct {
	Reason CertReason
	// Cert names the certificate at fault: "leaf", "intermediate" or "".
	Cert string
	// Err is the underlying error, if any (a protobuf decode error).
	Err error
}

func (e *CertError) Error() string {
	msg := "noise: bad server certificate: " + e.Reason.String()
	if e.Cert != "" {
		msg += " (" + e.Cert + ")"
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns ErrBadCertificate and the cause.
func (e *CertError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrBadCertificate, e.Err}
	}
	return []error{ErrBadCertificate}
}

// FrameError reports a frame whose length exceeds a limit. It wraps
// ErrFrameTooLarge.
type FrameError struct {
	Length int // declared length
	Limit  int // largest length allowed
}

func (e *FrameError) Error() string {
	return fmt.Sprintf("noise: frame too large: %d bytes, limit %d", e.Length, e.Limit)
}

// Unwrap returns ErrFrameTooLarge.
func (e *FrameError) Unwrap() error { return ErrFrameTooLarge }
