package watest

import (
	"context"
	"net"
	"syscall"
	"testing"
	"time"
)

// TestListenerKeepAliveInherited: the accepted socket has SO_KEEPALIVE set
// although net sets nothing on it (listenConfig relies on Linux copying the
// listener's option), and a connection whose first bytes are in is accepted.
func TestListenerKeepAliveInherited(t *testing.T) {
	lc := listenConfig()
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("GET / HTTP/1.1\r\n")); err != nil {
		t.Fatal(err)
	}
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
	a, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	rc, err := a.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	rc.Control(func(fd uintptr) { v, gerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE) })
	if gerr != nil || v != 1 {
		t.Fatalf("accepted socket SO_KEEPALIVE = %d, %v; want 1", v, gerr)
	}
}
