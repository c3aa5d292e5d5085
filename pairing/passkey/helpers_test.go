package passkey

import (
	"google.golang.org/protobuf/proto"

	"github.com/walinkdev/walink/waproto"
)

func sealedFrom(payload []byte, iv [IVSize]byte) []byte {
	b, err := proto.Marshal(&waproto.EncryptedPairingRequest{EncryptedPayload: payload, IV: iv[:]})
	if err != nil {
		panic(err)
	}
	return b
}
