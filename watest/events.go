package watest

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/walinkdev/walink/binxml"
)

// Directions of an Event.
const (
	DirIn   = "in"   // decoded from the client
	DirOut  = "out"  // sent to the client
	DirInfo = "info" // a server decision (handshake done, device linked, …)
)

// Event is one entry of the server's node log: every decoded node both
// ways, plus the server's notable decisions. Secret content (device
// identities, key material, wrapped keys) is already redacted.
type Event struct {
	Seq  int64       `json:"seq"`
	Time time.Time   `json:"time"`
	Conn int64       `json:"conn"` // connection id, 0 for server-wide events
	Dir  string      `json:"dir"`  // DirIn, DirOut or DirInfo
	Node binxml.Node `json:"-"`    // the redacted node (zero for DirInfo)
	Tag  string      `json:"tag,omitempty"`
	XML  string      `json:"xml,omitempty"`  // the redacted node as text
	Note string      `json:"note,omitempty"` // DirInfo text
}

// maxEvents bounds the in-memory log; older entries are dropped.
const maxEvents = 50_000

// eventLog is an append-only, bounded, waitable list of events.
type eventLog struct {
	mu      sync.Mutex
	events  []Event
	seq     int64
	changed chan struct{} // closed and replaced on every append
}

func newEventLog() *eventLog { return &eventLog{changed: make(chan struct{})} }

func (l *eventLog) add(e Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	e.Seq = l.seq
	if len(l.events) >= maxEvents {
		l.events = append(l.events[:0:0], l.events[len(l.events)-maxEvents/2:]...)
	}
	l.events = append(l.events, e)
	close(l.changed)
	l.changed = make(chan struct{})
}

// since returns the events with Seq > after and a channel closed at the
// next append.
func (l *eventLog) since(after int64) ([]Event, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := len(l.events)
	for i > 0 && l.events[i-1].Seq > after {
		i--
	}
	return append([]Event(nil), l.events[i:]...), l.changed
}

// await returns the first event (oldest first, from the beginning of the
// log) that match accepts, waiting for new ones until ctx ends.
func (l *eventLog) await(ctx context.Context, after int64, match func(Event) bool) (Event, error) {
	for {
		evs, changed := l.since(after)
		for _, e := range evs {
			if match(e) {
				return e, nil
			}
			after = e.Seq
		}
		select {
		case <-ctx.Done():
			return Event{}, fmt.Errorf("watest: await node: %w", ctx.Err())
		case <-changed:
		}
	}
}

// secretTags name nodes whose content is key material or wraps it.
var secretTags = map[string]bool{
	"device-identity": true,
	"link_code_pairing_wrapped_companion_ephemeral_pub": true,
	"link_code_pairing_wrapped_primary_ephemeral_pub":   true,
	"link_code_pairing_wrapped_key_bundle":              true,
	"companion_server_auth_key_pub":                     true,
	"companion_identity_public":                         true,
	"primary_identity_pub":                              true,
	"identity":                                          true,
	"value":                                             true,
	"signature":                                         true,
	"client-props":                                      true,
}

// redact returns a copy of n with secret content replaced by a
// "[redacted N bytes]" marker.
func redact(n binxml.Node) binxml.Node {
	out := binxml.Node{Tag: n.Tag, Attrs: append([]binxml.Attr(nil), n.Attrs...)}
	switch {
	case n.Children != nil:
		out.Children = make([]binxml.Node, len(n.Children))
		for i, c := range n.Children {
			out.Children[i] = redact(c)
		}
	case n.Content != nil && secretTags[n.Tag]:
		out.Content = []byte(fmt.Sprintf("[redacted %d bytes]", len(n.Content)))
	case n.Content != nil:
		out.Content = append([]byte(nil), n.Content...)
	}
	return out
}

// xmlString renders a (redacted) node as XML-like text for the log: text
// content when it is printable UTF-8, hex otherwise; long child lists
// (pre-key uploads) are elided in the middle.
func xmlString(n binxml.Node) string {
	var b strings.Builder
	writeXML(&b, n)
	return b.String()
}

func writeXML(b *strings.Builder, n binxml.Node) {
	b.WriteString("<")
	b.WriteString(n.Tag)
	for _, a := range n.Attrs {
		fmt.Fprintf(b, " %s=%q", a.Key, a.String())
	}
	switch {
	case n.Children != nil:
		b.WriteString(">")
		const keep = 4
		for i, c := range n.Children {
			if len(n.Children) > 3*keep && i == keep {
				fmt.Fprintf(b, "<!-- %d more -->", len(n.Children)-2*keep)
			}
			if len(n.Children) > 3*keep && i >= keep && i < len(n.Children)-keep {
				continue
			}
			writeXML(b, c)
		}
	case n.Content != nil:
		b.WriteString(">")
		if printable(n.Content) {
			b.WriteString(xmlEscape(string(n.Content)))
		} else {
			b.WriteString(hex.EncodeToString(n.Content))
		}
	default:
		b.WriteString("/>")
		return
	}
	b.WriteString("</")
	b.WriteString(n.Tag)
	b.WriteString(">")
}

func printable(p []byte) bool {
	if !utf8.Valid(p) {
		return false
	}
	for _, r := range string(p) {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

var xmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func xmlEscape(s string) string { return xmlEscaper.Replace(s) }
