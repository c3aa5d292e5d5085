package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/store/storetest"
	"github.com/walinkdev/walink/watest"
)

// watestChildEnv makes TestWatestServerChild serve: the local WhatsApp
// runs in a process of its own, so this process's CPU time (getrusage) is
// the client's alone, and the child's is the sim's alone.
const watestChildEnv = "WALINK_BENCH_WATEST_CHILD"

// reconnectDeviceSeed is the storetest seed of the device both processes
// derive: the child provisions it, BenchmarkReconnect logs in with it.
const reconnectDeviceSeed = 17

type childInfo struct {
	WSURL  string `json:"ws_url"`
	Root   string `json:"root_public_key"`
	Device string `json:"device"`
}

// childCPU is the child's answer to a "cpu" line on its stdin.
type childCPU struct {
	CPUNS int64 `json:"cpu_ns"`
}

// TestWatestServerChild is not a test: run with watestChildEnv set (by
// startWatestChild), it starts a local WhatsApp with the handshake
// benchmarks' scenario, provisions BenchmarkReconnect's device, prints
// childInfo as one JSON line and serves until its stdin closes. Each
// "cpu" line it reads is answered with its own CPU time (childCPU), so
// the parent can take the sim's CPU over exactly its timed section.
func TestWatestServerChild(t *testing.T) {
	if os.Getenv(watestChildEnv) == "" {
		t.Skip("helper process for the benchmarks against watest in a child process")
	}
	sc := benchScenario()
	srv, err := watest.Start(context.Background(), watest.Config{Scenario: &sc})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	d := storetest.NewDevice(t, reconnectDeviceSeed, false)
	id, err := srv.Phone("15550001717").Provision(d.NoiseKey.Public, d.IdentityKey.Public, d.RegistrationID, d.SignedPreKey)
	if err != nil {
		t.Fatal(err)
	}
	line, _ := json.Marshal(childInfo{WSURL: srv.URL(), Root: srv.RootKey().String(), Device: id.String()})
	fmt.Printf("%s\n", line)
	// Until the parent closes stdin or exits.
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if in.Text() == "cpu" {
			line, _ := json.Marshal(childCPU{CPUNS: int64(cpuTime())})
			fmt.Printf("%s\n", line)
		}
	}
}

// benchScenario is the local WhatsApp's scenario of the benchmarks that
// connect to it, in this process or in the child: no pauses, as the
// 50 ms first-stanza delay would dominate every connect.
func benchScenario() watest.Scenario {
	sc := watest.DefaultScenario()
	sc.FirstStanzaDelayMS = 0
	sc.LingerMS = 0
	return sc
}

// watestChild is a running TestWatestServerChild.
type watestChild struct {
	info  childInfo
	root  keys.PublicKey
	stdin io.WriteCloser
	cpus  chan []byte // the child's childCPU lines
	stop  func()
}

// startWatestChild starts the local WhatsApp in a child process. The
// caller must call stop (which also ends the child if this process dies
// first: its stdin closes).
func startWatestChild(b *testing.B) *watestChild {
	cmd := exec.Command(os.Args[0], "-test.run=^TestWatestServerChild$", "-test.v=false")
	cmd.Env = append(os.Environ(), watestChildEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	c := &watestChild{stdin: stdin, cpus: make(chan []byte, 1)}
	read := make(chan struct{})
	c.stop = func() {
		stdin.Close()
		done := make(chan struct{})
		go func() {
			// Wait closes stdout; the reader below ends with it.
			cmd.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		<-read
	}
	out := bufio.NewReader(stdout)
	line, err := out.ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &c.info)
	}
	if err == nil {
		var raw []byte
		if raw, err = hex.DecodeString(c.info.Root); err == nil {
			c.root, err = keys.PublicKeyFromBytes(raw)
		}
	}
	go func() {
		defer close(read)
		// childCPU answers go to cpu; anything else (the child's test
		// output) is dropped.
		for {
			l, err := out.ReadBytes('\n')
			if bytes.HasPrefix(l, []byte(`{"cpu_ns":`)) {
				select {
				case c.cpus <- l:
				default: // an answer cpu gave up on; never block the reader
				}
			}
			if err != nil {
				return
			}
		}
	}()
	if err != nil {
		c.stop()
		b.Fatalf("watest child: %v (%q)", err, line)
	}
	return c
}

// cpu returns the child's CPU time so far (user + system, getrusage).
func (c *watestChild) cpu(b *testing.B) time.Duration {
	if _, err := io.WriteString(c.stdin, "cpu\n"); err != nil {
		b.Fatalf("watest child: %v", err)
	}
	select {
	case l := <-c.cpus:
		var v childCPU
		if err := json.Unmarshal(l, &v); err != nil {
			b.Fatalf("watest child: %v (%q)", err, l)
		}
		return time.Duration(v.CPUNS)
	case <-time.After(10 * time.Second):
		b.Fatal("watest child: no CPU time in 10 s")
	}
	return 0
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
