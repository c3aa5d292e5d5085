package watest

import (
	"net"
	"syscall"
)

// listenConfig is the listener's configuration on Linux, where an accepted
// socket inherits the listener's SO_KEEPALIVE: set once on the listener,
// it costs no setsockopt per connection (net would make one). And with
// TCP_DEFER_ACCEPT the kernel queues a connection for Accept once its
// first bytes (the request head) are in, so the accepting goroutine reads
// the head at once instead of finding nothing, parking in the poller and
// being woken for it. A connection that sends nothing is accepted after
// about deferAcceptSec all the same (the kernel's rule), and then bounded
// by readHeaderTimeout as before.
func listenConfig() net.ListenConfig {
	return net.ListenConfig{
		KeepAlive: -1, // no per-connection setsockopt: inherited, see above
		Control: func(network, address string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				if serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1); serr != nil {
					return
				}
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT, deferAcceptSec)
			})
			if err != nil {
				return err
			}
			return serr
		},
	}
}

// deferAcceptSec bounds how long the kernel holds a connection that has
// sent nothing before handing it to Accept anyway.
const deferAcceptSec = int(readHeaderTimeout / 1e9)
