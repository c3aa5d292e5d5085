//go:build !linux

package transport

// Elsewhere AwaitReadable returns at once and ReadFrame does the waiting.
func peekReadable(uintptr) bool { return true }

const canPeek = false
