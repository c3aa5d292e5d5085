package transport_test

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walinkdev/walink/transport"
)

// BenchmarkDialUpgrade is the WebSocket part of a connection, both sides,
// without Noise: Dial (TCP connect, upgrade request, 101 answer read) and
// Close, against AcceptConn over loopback. cpu-ns/op is the process's CPU
// time per connection.
func BenchmarkDialUpgrade(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	var served atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					c.Close()
					return
				}
				nc, err := transport.AcceptConn(c, req, nil)
				if err != nil {
					c.Close()
					return
				}
				var buf [64]byte
				nc.Read(buf[:]) // until the client's close
				nc.Close()
				served.Add(1)
			}()
		}
	}()
	url := "ws://" + ln.Addr().String() + "/ws/chat"
	b.ReportAllocs()
	b.SetParallelism(4)
	cpu0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			nc, err := transport.Dial(ctx, url, nil)
			if err != nil {
				cancel()
				b.Error(err)
				return
			}
			nc.Close()
			cancel()
		}
	})
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}
