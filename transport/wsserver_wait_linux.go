package transport

import (
	"syscall"
	"unsafe"
)

// peekReadable reports, without blocking or consuming anything, whether
// fd has a byte to read, has reached end of stream, or has an error to
// report: recv with MSG_PEEK|MSG_DONTWAIT of one byte, straight through
// the raw syscall so that the caller's stack stays small.
func peekReadable(fd uintptr) bool {
	var b [1]byte
	_, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	return errno != syscall.EAGAIN && errno != syscall.EWOULDBLOCK && errno != syscall.EINTR
}

const canPeek = true
