package sqlite

import (
	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/store"
	"github.com/walinkdev/walink/store/internal/devrow"
)

// The devices-row codec and the at-rest envelope live in store/internal/
// devrow, shared with the other SQL store; these names keep this package's
// error vocabulary on them.

type (
	row     = devrow.Row
	secrets = devrow.Secrets
)

const (
	deviceColumns    = devrow.Columns
	numDeviceColumns = devrow.NumColumns
	sealedV1         = devrow.SealedV1
)

var errs = &devrow.Errors{Pkg: pkgName, Invalid: ErrInvalid, Corrupt: ErrCorrupt, NoCipher: ErrNoCipher, Decrypt: ErrDecrypt}

func newSecrets(c Cipher) secrets { return secrets{C: c, E: errs} }

// encodeDevice turns d into a row, refusing what cannot be stored, and
// seals its secrets.
func encodeDevice(d *store.Device, sec secrets) (*row, error) { return devrow.Encode(d, sec) }

// decodeRow turns a loaded row back into a Device, opening its secrets.
func decodeRow(r *row, sec secrets) (*store.Device, error) { return r.Decode(sec) }

func toJIDCols(j jid.JID) devrow.JIDCols { return devrow.ToJIDCols(j) }
