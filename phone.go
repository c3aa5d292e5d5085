package walink

// NormalizePhoneNumber applies PairWithCode's phone-number rules to s: it
// drops everything but digits ("+1-555-123-4567" → "15551234567") and
// returns ErrPhoneNumberRequired, ErrPhoneNumberNotInternational or
// ErrPhoneNumberTooShort when the result cannot be a phone number. Callers
// use it to refuse bad input before connecting.
func NormalizePhoneNumber(s string) (string, error) {
	o, err := PairCodeOptions{PhoneNumber: s}.normalize()
	return o.PhoneNumber, err
}

// Validate applies PairWithCode's checks (phone number, custom code,
// platform id and display) without connecting, so callers can refuse bad
// input up front. It returns the same typed errors PairWithCode would.
func (o PairCodeOptions) Validate() error {
	_, err := o.normalize()
	return err
}
