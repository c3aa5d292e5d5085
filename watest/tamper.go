package watest

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/walinkdev/walink/waproto"
)

// tamperContainer corrupts a serialized ADVSignedDeviceIdentityHMAC for
// Faults.TamperPairSuccess: "hmac" flips a bit of the HMAC; "account-
// signature" flips a bit of the account signature and recomputes the HMAC
// with the adv secret, so only the signature check can catch it.
func tamperContainer(container []byte, advSecret [32]byte, kind string) ([]byte, error) {
	var m waproto.ADVSignedDeviceIdentityHMAC
	if err := proto.Unmarshal(container, &m); err != nil {
		return nil, fmt.Errorf("watest: tamper: %w", err)
	}
	switch kind {
	case TamperHMAC:
		if len(m.HMAC) == 0 {
			return nil, fmt.Errorf("watest: tamper: container has no hmac")
		}
		m.HMAC[0] ^= 1
	case TamperAccountSignature:
		var sd waproto.ADVSignedDeviceIdentity
		if err := proto.Unmarshal(m.Details, &sd); err != nil {
			return nil, fmt.Errorf("watest: tamper: %w", err)
		}
		if len(sd.AccountSignature) == 0 {
			return nil, fmt.Errorf("watest: tamper: identity has no account signature")
		}
		sd.AccountSignature[len(sd.AccountSignature)/2] ^= 1
		details, err := proto.Marshal(&sd)
		if err != nil {
			return nil, fmt.Errorf("watest: tamper: %w", err)
		}
		m.Details = details
		mac := hmac.New(sha256.New, advSecret[:])
		mac.Write(details)
		m.HMAC = mac.Sum(nil)
	default:
		return nil, fmt.Errorf("%w: tamper kind %q", ErrBadScenario, kind)
	}
	out, err := proto.Marshal(&m)
	if err != nil {
		return nil, fmt.Errorf("watest: tamper: %w", err)
	}
	return out, nil
}
