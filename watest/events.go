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
//
// The copy's nodes, attributes and content are cut from three allocations
// sized by a first pass, not one or more per node: every stanza both ways
// goes through here (a pair-device with its refs was 9 allocations of a
// registration connection's handshake path).
func redact(n binxml.Node) binxml.Node {
	var sz redactSize
	sz.measure(n)
	var a redactArena
	if sz.nodes > 0 {
		a.nodes = make([]binxml.Node, sz.nodes)
	}
	if sz.attrs > 0 {
		a.attrs = make([]binxml.Attr, sz.attrs)
	}
	if sz.content > 0 {
		a.content = make([]byte, 0, sz.content)
	}
	return a.copy(n)
}

// redactSize counts what redact's copy of a node holds below its root.
type redactSize struct{ nodes, attrs, content int }

func (z *redactSize) measure(n binxml.Node) {
	z.attrs += len(n.Attrs)
	switch {
	case n.Children != nil:
		head, tail, elided := visibleKids(n.Children)
		z.nodes += len(head) + len(tail)
		for _, c := range head {
			z.measure(c)
		}
		if elided > 0 {
			z.nodes++
			z.attrs++ // count
		}
		for _, c := range tail {
			z.measure(c)
		}
	case n.Content != nil && secretTags[n.Tag]:
		z.content += redactedLen(len(n.Content))
	case n.Content != nil:
		z.content += len(n.Content)
	}
}

// visibleKids splits a child list as the log keeps it: all of it (head),
// or its first and last elideKeep children and the number left out.
func visibleKids(kids []binxml.Node) (head, tail []binxml.Node, elided int) {
	if len(kids) > 3*elideKeep {
		// A pre-key upload's 812 keys: keep the ends, as the XML does;
		// the log must not grow with what clients upload.
		return kids[:elideKeep], kids[len(kids)-elideKeep:], len(kids) - 2*elideKeep
	}
	return kids, nil, 0
}

const redactedPrefix, redactedSuffix = "[redacted ", " bytes]"

// redactedLen is the length of the marker for n bytes of secret content.
func redactedLen(n int) int {
	var b [20]byte
	return len(redactedPrefix) + len(strconv.AppendInt(b[:0], int64(n), 10)) + len(redactedSuffix)
}

// redactArena hands out the pieces of one redacted copy. Each piece is
// capped at its length, so appending to a logged node's slice copies
// rather than writing over its neighbour.
type redactArena struct {
	nodes   []binxml.Node
	attrs   []binxml.Attr
	content []byte
}

func (a *redactArena) takeNodes(n int) []binxml.Node {
	if n == 0 {
		return []binxml.Node{} // a child list that is there, if empty
	}
	s := a.nodes[:n:n]
	a.nodes = a.nodes[n:]
	return s
}

func (a *redactArena) takeAttrs(src []binxml.Attr) []binxml.Attr {
	if len(src) == 0 {
		return nil
	}
	s := a.attrs[:len(src):len(src)]
	a.attrs = a.attrs[len(src):]
	copy(s, src)
	return s
}

// takeContent returns the content appended since start, capped; nil for
// none.
func (a *redactArena) takeContent(start int) []byte {
	if len(a.content) == start {
		return nil
	}
	return a.content[start:len(a.content):len(a.content)]
}

func (a *redactArena) copy(n binxml.Node) binxml.Node {
	out := binxml.Node{Tag: n.Tag, Attrs: a.takeAttrs(n.Attrs)}
	switch {
	case n.Children != nil:
		head, tail, elided := visibleKids(n.Children)
		k := len(head) + len(tail)
		if elided > 0 {
			k++
		}
		out.Children = a.takeNodes(k)
		i := 0
		for _, c := range head {
			out.Children[i] = a.copy(c)
			i++
		}
		if elided > 0 {
			out.Children[i] = a.copy(binxml.Node{Tag: "elided", Attrs: []binxml.Attr{binxml.A("count", strconv.Itoa(elided))}})
			i++
		}
		for _, c := range tail {
			out.Children[i] = a.copy(c)
			i++
		}
	case n.Content != nil && secretTags[n.Tag]:
		start := len(a.content)
		a.content = append(a.content, redactedPrefix...)
		a.content = strconv.AppendInt(a.content, int64(len(n.Content)), 10)
		a.content = append(a.content, redactedSuffix...)
		out.Content = a.takeContent(start)
	case n.Content != nil:
		start := len(a.content)
		a.content = append(a.content, n.Content...)
		out.Content = a.takeContent(start)
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
