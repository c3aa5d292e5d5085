package watest

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
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

// DefaultEventLogSize is the number of events the in-memory node log keeps
// when Config.EventLogSize is 0: older ones are dropped (Config.EventFile
// keeps them all). Every stored node is elided like its XML (long child
// lists keep their first and last children), so an event costs about a
// KiB at most and the log stays bounded whatever the number of devices.
const DefaultEventLogSize = 8192

// eventLog is a bounded ring of events, waitable, optionally copied to a
// file as JSON lines.
type eventLog struct {
	mu      sync.Mutex
	ring    []Event // capacity = size; ring[(start+i)%size] is the i-th oldest
	start   int
	seq     int64
	changed chan struct{} // made by since, closed and cleared by the next append
	spill   *bufio.Writer // nil = no file
	spillEr error
	flushT  *time.Timer // armed while the file copy has unflushed bytes
	closed  bool
}

// spillDelay is how long an event may sit in the file copy's buffer.
const spillDelay = time.Second

func newEventLog(size int, spill io.Writer) *eventLog {
	if size <= 0 {
		size = DefaultEventLogSize
	}
	l := &eventLog{ring: make([]Event, 0, size)}
	if spill != nil {
		l.spill = bufio.NewWriterSize(spill, 64<<10)
	}
	return l
}

func (l *eventLog) add(e Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	e.Seq = l.seq
	if len(l.ring) < cap(l.ring) {
		l.ring = append(l.ring, e)
	} else {
		l.ring[l.start] = e
		l.start = (l.start + 1) % len(l.ring)
	}
	if l.spill != nil && l.spillEr == nil {
		e.render()
		b, err := json.Marshal(e)
		if err == nil {
			b = append(b, '\n')
			_, err = l.spill.Write(b)
		}
		l.spillEr = err
		if l.flushT == nil && !l.closed {
			l.flushT = time.AfterFunc(spillDelay, func() {
				l.mu.Lock()
				defer l.mu.Unlock()
				l.flushT = nil
				if l.spillEr == nil {
					l.spillEr = l.spill.Flush()
				}
			})
		}
	}
	// Only a reader waits on changed: most appends (three per connection)
	// have none, and make no channel.
	if l.changed != nil {
		close(l.changed)
		l.changed = nil
	}
}

// flush writes out what the file copy has buffered and stops the delayed
// flushes (the server is closing).
func (l *eventLog) flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.flushT != nil {
		l.flushT.Stop()
		l.flushT = nil
	}
	if l.spill == nil {
		return nil
	}
	if l.spillEr != nil {
		return l.spillEr
	}
	return l.spill.Flush()
}

// at returns the i-th oldest event held.
func (l *eventLog) at(i int) *Event { return &l.ring[(l.start+i)%len(l.ring)] }

// since returns the events with Seq > after and a channel closed at the
// next append.
func (l *eventLog) since(after int64) ([]Event, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(l.ring)
	i := n
	for i > 0 && l.at(i-1).Seq > after {
		i--
	}
	out := make([]Event, 0, n-i)
	for ; i < n; i++ {
		e := l.at(i)
		e.render() // once: later readers get the stored text
		out = append(out, *e)
	}
	if l.changed == nil {
		l.changed = make(chan struct{})
	}
	return out, l.changed
}

// render fills XML from the node of a node event, if not done yet.
func (e *Event) render() {
	if e.XML == "" && e.Dir != DirInfo && e.Tag != "" {
		e.XML = xmlString(e.Node)
	}
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

// elideKeep is how many children of a long list the log keeps at each end.
const elideKeep = 4

// redact returns a copy of n with secret content replaced by a
// "[redacted N bytes]" marker, and the middle of a child list longer than
// 3×elideKeep replaced by one <elided count="N"/> child.
func redact(n binxml.Node) binxml.Node {
	// A copy per piece, on purpose: one slab per tree (three allocations
	// whatever the shape) was tried twice and raised the sim's heap in
	// use per linked device by 0.4–0.8 KiB, the ring's larger
	// mixed-lifetime blocks fragmenting spans (bench/NOTES.md).
	out := binxml.Node{Tag: n.Tag, Attrs: append([]binxml.Attr(nil), n.Attrs...)}
	switch {
	case n.Children != nil:
		kids := redactKids(n.Children)
		out.Children = make([]binxml.Node, len(kids))
		for i, c := range kids {
			out.Children[i] = redact(c)
		}
	case n.Content != nil && secretTags[n.Tag]:
		out.Content = []byte(fmt.Sprintf("[redacted %d bytes]", len(n.Content)))
	case n.Content != nil:
		out.Content = append([]byte(nil), n.Content...)
	}
	return out
}

// redactsSame reports whether redact(n) would equal n: nothing secret, no
// list long enough to elide, no content the copy drops (empty, or beside
// children).
func redactsSame(n binxml.Node) bool {
	switch {
	case n.Children != nil:
		if len(n.Children) > 3*elideKeep || n.Content != nil {
			return false
		}
		for _, c := range n.Children {
			if !redactsSame(c) {
				return false
			}
		}
	case n.Content != nil && (secretTags[n.Tag] || len(n.Content) == 0):
		return false
	}
	return true
}

// redactKids returns the children the log keeps: a pre-key upload's 812
// keys are elided in the middle, as the XML is; the log must not grow
// with what clients upload.
func redactKids(kids []binxml.Node) []binxml.Node {
	if len(kids) > 3*elideKeep {
		return append(append(kids[:elideKeep:elideKeep], binxml.Node{Tag: "elided", Attrs: []binxml.Attr{binxml.A("count", strconv.Itoa(len(kids)-2*elideKeep))}}), kids[len(kids)-elideKeep:]...)
	}
	return kids
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
		for i, c := range n.Children {
			if len(n.Children) > 3*elideKeep && i == elideKeep {
				fmt.Fprintf(b, "<!-- %d more -->", len(n.Children)-2*elideKeep)
			}
			if len(n.Children) > 3*elideKeep && i >= elideKeep && i < len(n.Children)-elideKeep {
				continue
			}
			if c.Tag == "elided" && len(c.Attrs) == 1 && c.Attrs[0].Key == "count" {
				fmt.Fprintf(b, "<!-- %s more -->", c.Attrs[0].String())
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
