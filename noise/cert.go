package noise

import (
	"fmt"
	"io"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/waproto"
)

// WhatsAppRootKey is the public key (X25519 form) that signs WhatsApp's
// intermediate noise certificates; clients pin it.
var WhatsAppRootKey = keys.MustPublicKey("142375574d0a587166aae71ebe516437c4a28b73e3695c6ce1f7f9545da8ee6b")

// CertOptions are the fields NewCertChain writes into the certificates.
type CertOptions struct {
	IntermediateSerial uint32
	LeafSerial         uint32
	// NotBefore and NotAfter bound both certificates (unix seconds on the
	// wire; sub-second parts are dropped). Zero NotAfter is refused.
	NotBefore, NotAfter time.Time
}

// NewCertChain mints a serialized CertChain for a test server:
//
//	CertChain{
//	  leaf(1):         {details(1) = Details{serial(1), issuerSerial(2) = intermediate serial,
//	                                         key(3) = leafKey, notBefore(4), notAfter(5)},
//	                    signature(2) = XEdDSA(intermediate, details)},
//	  intermediate(2): {details(1) = Details{serial(1), issuerSerial(2) = 0,
//	                                         key(3) = intermediate.pub, notBefore(4), notAfter(5)},
//	                    signature(2) = XEdDSA(root, details)},
//	}
//
// rand supplies the signature nonces.
func NewCertChain(rand io.Reader, root keys.PrivateKey, intermediate keys.KeyPair, leafKey keys.PublicKey, opts CertOptions) ([]byte, error) {
	if opts.NotAfter.IsZero() || opts.NotAfter.Before(opts.NotBefore) || opts.NotBefore.Unix() < 0 {
		return nil, fmt.Errorf("noise: certificate validity window is empty or negative")
	}
	nb, na := uint64(opts.NotBefore.Unix()), uint64(opts.NotAfter.Unix())
	inter, err := signCert(rand, root, &waproto.CertChain_NoiseCertificate_Details{
		Serial:       proto.Uint32(opts.IntermediateSerial),
		IssuerSerial: proto.Uint32(0),
		Key:          intermediate.Public.Bytes(),
		NotBefore:    proto.Uint64(nb),
		NotAfter:     proto.Uint64(na),
	})
	if err != nil {
		return nil, err
	}
	leaf, err := signCert(rand, intermediate.Private, &waproto.CertChain_NoiseCertificate_Details{
		Serial:       proto.Uint32(opts.LeafSerial),
		IssuerSerial: proto.Uint32(opts.IntermediateSerial),
		Key:          leafKey.Bytes(),
		NotBefore:    proto.Uint64(nb),
		NotAfter:     proto.Uint64(na),
	})
	if err != nil {
		return nil, err
	}
	out, err := proto.Marshal(&waproto.CertChain{Leaf: leaf, Intermediate: inter})
	if err != nil {
		return nil, fmt.Errorf("noise: encoding certificate chain: %w", err)
	}
	return out, nil
}

func signCert(rand io.Reader, signer keys.PrivateKey, d *waproto.CertChain_NoiseCertificate_Details) (*waproto.CertChain_NoiseCertificate, error) {
	details, err := proto.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("noise: encoding certificate: %w", err)
	}
	sig, err := signer.Sign(rand, details)
	if err != nil {
		return nil, fmt.Errorf("noise: signing certificate: %w", err)
	}
	return &waproto.CertChain_NoiseCertificate{Details: details, Signature: sig[:]}, nil
}

// CertInfo is what a verified chain certifies.
type CertInfo struct {
	IntermediateSerial    uint32
	IntermediateKey       keys.PublicKey
	LeafSerial            uint32
	LeafKey               keys.PublicKey
	IntermediateNotBefore time.Time
	IntermediateNotAfter  time.Time
	LeafNotBefore         time.Time
	LeafNotAfter          time.Time
}

// VerifyCertChain checks a server certificate chain (the decrypted
// payload of message 2), in this order: both certificates present with
// details and 64-byte signatures; the intermediate signed by root; its
// issuer serial 0; its key 32 bytes and the leaf signed by it; the leaf's
// issuer serial equal to the intermediate's serial; the leaf key equal to
// serverStatic; now inside [notBefore, notAfter] of both certificates
// (inclusive, in unix seconds). Failures are *CertError.
func VerifyCertChain(chain []byte, root, serverStatic keys.PublicKey, now time.Time) error {
	_, err := ParseCertChain(chain, root, serverStatic, now)
	return err
}

// ParseCertChain is VerifyCertChain that also returns the certified
// contents, for callers that cache them (a future IK resume needs the
// leaf key and both validity windows).
func ParseCertChain(chain []byte, root, serverStatic keys.PublicKey, now time.Time) (*CertInfo, error) {
	// The three messages proto.Unmarshal fills move to the heap; one
	// allocation for all of them rather than one each.
	m := new(certMessages)
	cc, id, ld := &m.chain, &m.inter, &m.leaf
	if err := proto.Unmarshal(chain, cc); err != nil {
		return nil, &CertError{Reason: CertMalformed, Err: err}
	}
	inter, leaf := cc.GetIntermediate(), cc.GetLeaf()
	if inter == nil || leaf == nil {
		return nil, &CertError{Reason: CertMalformed}
	}
	if len(inter.GetDetails()) == 0 || len(inter.GetSignature()) != keys.SignatureSize {
		return nil, &CertError{Reason: CertMalformed, Cert: "intermediate"}
	}
	if len(leaf.GetDetails()) == 0 || len(leaf.GetSignature()) != keys.SignatureSize {
		return nil, &CertError{Reason: CertMalformed, Cert: "leaf"}
	}
	if !keys.Verify(root, inter.GetDetails(), inter.GetSignature()) {
		return nil, &CertError{Reason: CertBadRootSignature, Cert: "intermediate"}
	}
	if err := proto.Unmarshal(inter.GetDetails(), id); err != nil {
		return nil, &CertError{Reason: CertMalformed, Cert: "intermediate", Err: err}
	}
	if id.GetIssuerSerial() != 0 {
		return nil, &CertError{Reason: CertIntermediateIssuer, Cert: "intermediate"}
	}
	ikey, err := keys.PublicKeyFromBytes(id.GetKey())
	if err != nil {
		return nil, &CertError{Reason: CertMalformed, Cert: "intermediate", Err: err}
	}
	if !keys.Verify(ikey, leaf.GetDetails(), leaf.GetSignature()) {
		return nil, &CertError{Reason: CertBadSignature, Cert: "leaf"}
	}
	if err := proto.Unmarshal(leaf.GetDetails(), ld); err != nil {
		return nil, &CertError{Reason: CertMalformed, Cert: "leaf", Err: err}
	}
	if ld.GetIssuerSerial() != id.GetSerial() {
		return nil, &CertError{Reason: CertIssuerMismatch, Cert: "leaf"}
	}
	lkey, err := keys.PublicKeyFromBytes(ld.GetKey())
	if err != nil {
		return nil, &CertError{Reason: CertMalformed, Cert: "leaf", Err: err}
	}
	if !lkey.Equal(serverStatic) {
		return nil, &CertError{Reason: CertLeafKeyMismatch, Cert: "leaf"}
	}
	info := &CertInfo{
		IntermediateSerial:    id.GetSerial(),
		IntermediateKey:       ikey,
		LeafSerial:            ld.GetSerial(),
		LeafKey:               lkey,
		IntermediateNotBefore: unixTime(id.GetNotBefore()),
		IntermediateNotAfter:  unixTime(id.GetNotAfter()),
		LeafNotBefore:         unixTime(ld.GetNotBefore()),
		LeafNotAfter:          unixTime(ld.GetNotAfter()),
	}
	if err := checkWindow("intermediate", id, now); err != nil {
		return nil, err
	}
	if err := checkWindow("leaf", ld, now); err != nil {
		return nil, err
	}
	return info, nil
}

// certMessages are the messages ParseCertChain decodes.
type certMessages struct {
	chain       waproto.CertChain
	inter, leaf waproto.CertChain_NoiseCertificate_Details
}

func unixTime(s uint64) time.Time {
	if s > 1<<62 {
		s = 1 << 62 // far future; keeps the conversion from overflowing
	}
	return time.Unix(int64(s), 0).UTC()
}

// checkWindow compares in whole unix seconds, as the certificates do.
// Absent bounds are treated as 0, so a chain without notAfter is expired:
// a real chain always carries both.
func checkWindow(which string, d *waproto.CertChain_NoiseCertificate_Details, now time.Time) error {
	t := now.Unix()
	if t < 0 {
		return &CertError{Reason: CertNotYetValid, Cert: which}
	}
	u := uint64(t)
	if u < d.GetNotBefore() {
		return &CertError{Reason: CertNotYetValid, Cert: which}
	}
	if u > d.GetNotAfter() {
		return &CertError{Reason: CertExpired, Cert: which}
	}
	return nil
}
