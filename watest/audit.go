package watest

import (
	"strconv"

	"github.com/walinkdev/walink/pairing"
)

// lenient records an input that this server accepts although it is not
// what well-behaved clients send, because WhatsApp is not known to refuse
// it (see "Leniency audit" in the package doc): a warning in the server log
// and a "lenient: …" note in the node log, so a test can see it.
func (s *Server) lenient(conn int64, note string) {
	s.events.add(Event{Time: s.now(), Conn: conn, Dir: DirInfo, Note: "lenient: " + note})
	s.log.Warn("watest: lenient: "+note, "conn", conn)
}

// unknownWebClient is how a pair-code device whose companion_platform_id
// names no known client type is shown in device lists.
const unknownWebClient = "unknown web client"

// clientType reads a companion_platform_id (PROTOCOL.md §14.6). It returns
// the platform id to use, a note for the node log when the value was not
// the plain id, and refused = true only for "0", the UNKNOWN type that
// whatsapp-rust documents the server refusing. Baileys 6.x sends the
// decimal character code of the id ("49" for "1", Chrome; §23.2 item 11)
// and links against WhatsApp, so such values are read as the id they
// encode; any other unfamiliar value is an unknown web client.
func clientType(raw string) (id, note string, refused bool) {
	if raw == pairing.ClientTypeUnknown {
		return "", "", true
	}
	if pairing.ValidateClientType(raw) == nil {
		return raw, "", false
	}
	if code, err := strconv.Atoi(raw); err == nil && code > 0 && code < 128 {
		if c := string(rune(code)); c == pairing.ClientTypeUnknown {
			return "", "", true
		} else if pairing.ValidateClientType(c) == nil {
			return c, "companion_platform_id " + strconv.Quote(raw) + " read as the character code of " + strconv.Quote(c) + " (Baileys 6.x)", false
		}
	}
	return "", "companion_platform_id " + strconv.Quote(raw) + " is no known client type: shown as an " + unknownWebClient, false
}
