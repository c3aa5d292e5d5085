package engine

import (
	"strconv"
	"time"

	"github.com/walinkdev/walink/binxml"
)

// ParseClientExpiration reads the deadline WhatsApp announces for the
// client version in use (CHANGES-2026 §8, whatsapp-rust's
// ClientExpirationChanged):
//
//	<ib><client_expiration t="UNIX SECONDS"/></ib>
//
// ok is false for any other node (the caller goes on with its other
// parsers); an <ib> whose client_expiration carries no positive decimal t
// is an ErrMalformed error. After the deadline the server refuses the
// version with failure 405, so the client fetches a new one before it.
func ParseClientExpiration(n binxml.Node) (at time.Time, ok bool, err error) {
	if n.Tag != "ib" {
		return time.Time{}, false, nil
	}
	ce, found := n.Child("client_expiration")
	if !found {
		return time.Time{}, false, nil
	}
	t, isText := text(ce, "t")
	if t == "" || !isText {
		return time.Time{}, true, malformed("client_expiration without t")
	}
	secs, perr := strconv.ParseInt(t, 10, 64)
	// Bounded so time.Unix stays meaningful (year 9999).
	if perr != nil || secs <= 0 || secs > 253402300799 {
		return time.Time{}, true, malformed("client_expiration t is not unix seconds")
	}
	return time.Unix(secs, 0).UTC(), true, nil
}
