package engine

import "time"

// QRRotation is the client-side timetable of the refs from one pair-device
// stanza: the first ref is shown for First, each later one for Next
// (CHANGES-2026.md §3: 60 s, then 20 s). It holds no timer of its own: the
// caller asks for the current deadline and calls Advance when it passes.
type QRRotation struct {
	refs        []string
	first, next time.Duration
	idx         int
	deadline    time.Time
}

// NewQRRotation starts the timetable at now with the first ref.
func NewQRRotation(refs []string, first, next time.Duration, now time.Time) *QRRotation {
	r := &QRRotation{refs: refs, first: first, next: next}
	r.deadline = now.Add(first)
	return r
}

// Current returns the ref on display, how long it is valid from now, and
// false when every ref has expired.
func (r *QRRotation) Current(now time.Time) (ref string, remaining time.Duration, ok bool) {
	if r.idx >= len(r.refs) {
		return "", 0, false
	}
	return r.refs[r.idx], max(r.deadline.Sub(now), 0), true
}

// Deadline is when the current ref expires (zero when exhausted).
func (r *QRRotation) Deadline() time.Time {
	if r.idx >= len(r.refs) {
		return time.Time{}
	}
	return r.deadline
}

// Advance moves to the next ref if the current one has expired at now. It
// reports whether the ref changed; after the last ref, Current reports
// exhaustion.
func (r *QRRotation) Advance(now time.Time) bool {
	if r.idx >= len(r.refs) || now.Before(r.deadline) {
		return false
	}
	r.idx++
	r.deadline = now.Add(r.next)
	return true
}

// Exhausted reports whether every ref has expired.
func (r *QRRotation) Exhausted() bool { return r.idx >= len(r.refs) }
