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
