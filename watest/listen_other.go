//go:build !linux

package watest

import "net"

// listenConfig: TCP keep-alive on accepted sockets with the system's
// timers, one setsockopt per connection (listen_linux.go sets it once on
// the listener instead).
func listenConfig() net.ListenConfig {
	return net.ListenConfig{KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: -1, Interval: -1, Count: -1}}
}
