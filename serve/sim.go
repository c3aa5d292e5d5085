package serve

import (
	"context"

	"github.com/walinkdev/walink/watest"
)

// WatestSim is the virtual phone of `walink serve --sim`: the local
// WhatsApp's phones scan QR codes and type pair codes.
type WatestSim struct{ Server *watest.Server }

func (w WatestSim) ScanQR(ctx context.Context, phone, qr string) error {
	// ErrRescan (the server rotated the adv secret) is passed on: the page
	// shows the new code in a moment and the user scans again, as with a
	// real phone.
	_, err := w.Server.Phone(phone).ScanQR(ctx, qr)
	return err
}

func (w WatestSim) EnterCode(ctx context.Context, phone, code string) error {
	_, err := w.Server.Phone(phone).EnterCode(ctx, code)
	return err
}
