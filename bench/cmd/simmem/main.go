// Command simmem measures what the local WhatsApp (watest) holds per
// linked, idle device: the server runs in a child process (this binary
// with -role=server), the parent links N light companions to it with
// watest/simload (the engine of `walink sim load`), keeps -online of them
// connected, lets everything settle, and asks the child to measure itself
// after two GCs: heap in use, goroutine stacks, RSS and goroutines, minus
// the same numbers before the first link, divided by N. The result is one
// JSON line on stdout; -heapprofile writes the child's heap profile.
//
// Online companions each hold a socket in both processes, so -online is
// bounded by the open-file limit (ulimit -n); the devices beyond it are
// linked, have logged in and uploaded their pre-keys, and are offline,
// which is what most of a gateway's accounts are most of the time. The
// result splits the two: per linked device (all N) and per connection.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/watest"
	"github.com/walinkdev/walink/watest/simload"
)

type options struct {
	role      string
	n         int
	online    int
	parallel  int
	prekeys   int
	settle    time.Duration
	timeout   time.Duration
	heapProf  string
	eventSize int
	verbose   bool
}

func main() {
	var o options
	flag.StringVar(&o.role, "role", "client", "client, or server (the child running the local WhatsApp)")
	flag.IntVar(&o.n, "n", 1000, "linked devices")
	flag.IntVar(&o.online, "online", -1, "devices kept connected (-1 = all, capped by the open-file limit)")
	flag.IntVar(&o.parallel, "parallel", 32, "links in flight")
	flag.IntVar(&o.prekeys, "prekeys", 812, "pre-keys each device uploads")
	flag.DurationVar(&o.settle, "settle", 5*time.Second, "idle time after the last link before measuring")
	flag.DurationVar(&o.timeout, "timeout", 60*time.Minute, "give up after this long")
	flag.StringVar(&o.heapProf, "heapprofile", "", "write the server's heap profile here after measuring")
	flag.IntVar(&o.eventSize, "log-size", 0, "server node log size (0 = watest default)")
	flag.BoolVar(&o.verbose, "v", false, "progress on stderr")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if o.role == "server" {
		err = runServer(ctx, o)
	} else {
		ctx, cancel := context.WithTimeout(ctx, o.timeout)
		defer cancel()
		err = runClient(ctx, o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "simmem:", err)
		os.Exit(1)
	}
}

// Sample is one measurement of the server process after two GCs.
type Sample struct {
	HeapInuse  uint64 `json:"heap_inuse"`
	HeapAlloc  uint64 `json:"heap_alloc"`
	StackInuse uint64 `json:"stack_inuse"`
	RSS        int64  `json:"rss"`
	Goroutines int    `json:"goroutines"`
}

// runServer serves the local WhatsApp; each "measure [profile]" line on
// stdin is answered with a Sample line on stdout.
func runServer(ctx context.Context, o options) error {
	if o.heapProf != "" {
		runtime.MemProfileRate = 4096
	}
	sc := watest.DefaultScenario()
	sc.FirstStanzaDelayMS = 0
	s, err := watest.Start(ctx, watest.Config{Scenario: &sc, EventLogSize: o.eventSize})
	if err != nil {
		return err
	}
	defer s.Close()
	out := json.NewEncoder(os.Stdout)
	if err := out.Encode(s.Info()); err != nil {
		return err
	}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 || f[0] != "measure" {
			continue
		}
		runtime.GC()
		runtime.GC()
		debug.FreeOSMemory()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		smp := Sample{HeapInuse: ms.HeapInuse, HeapAlloc: ms.HeapAlloc, StackInuse: ms.StackInuse, RSS: rss(), Goroutines: runtime.NumGoroutine()}
		if len(f) > 1 {
			if pf, err := os.Create(f[1]); err == nil {
				pprof.Lookup("heap").WriteTo(pf, 0)
				pf.Close()
			}
			// The goroutine profile beside it: which goroutines an idle
			// connection keeps, and where they wait.
			if pf, err := os.Create(f[1] + ".goroutine"); err == nil {
				pprof.Lookup("goroutine").WriteTo(pf, 1)
				pf.Close()
			}
		}
		if err := out.Encode(smp); err != nil {
			return err
		}
	}
	return nil
}

func rss() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb * 1024
			}
		}
	}
	return -1
}

// Result is the JSON line the client role prints.
type Result struct {
	N          int     `json:"n"`
	Online     int     `json:"online"`
	Linked     int     `json:"linked"`
	Failed     int     `json:"failed"`
	PreKeys    int     `json:"prekeys"`
	LinkSec    float64 `json:"link_seconds"`
	LinksPerS  float64 `json:"links_per_second"`
	P50MS      float64 `json:"p50_ms"`
	P90MS      float64 `json:"p90_ms"`
	P99MS      float64 `json:"p99_ms"`
	Before     Sample  `json:"before"`
	Linked0    Sample  `json:"after"`
	Offline    *Sample `json:"after_disconnect,omitempty"`
	HeapPerDev float64 `json:"heap_inuse_per_device"`
	// (heap + goroutine stacks) / N: what the Go runtime holds per device.
	GoPerDev  float64 `json:"heap_and_stacks_per_device"`
	RSSPerDev float64 `json:"rss_per_device"`
	// Per device once every companion has disconnected (linked, offline),
	// and the difference per connection.
	OfflinePerDev float64 `json:"heap_and_stacks_per_offline_device,omitempty"`
	PerConn       float64 `json:"heap_and_stacks_per_connection,omitempty"`
	GoroutinesPer float64 `json:"goroutines_per_online_device"`
}

type child struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

func (c *child) measure(profile string) (Sample, error) {
	line := "measure"
	if profile != "" {
		line += " " + profile
	}
	if _, err := fmt.Fprintln(c.in, line); err != nil {
		return Sample{}, err
	}
	b, err := c.out.ReadBytes('\n')
	if err != nil {
		return Sample{}, err
	}
	var s Sample
	return s, json.Unmarshal(b, &s)
}

func runClient(ctx context.Context, o options) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	args := []string{"-role=server", "-log-size=" + strconv.Itoa(o.eventSize)}
	if o.heapProf != "" {
		args = append(args, "-heapprofile="+o.heapProf)
	}
	cmd := exec.Command(self, args...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		in.Close()
		cmd.Wait()
	}()
	c := &child{cmd: cmd, in: in, out: bufio.NewReader(stdout)}
	b, err := c.out.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	var info watest.SimInfo
	if err := json.Unmarshal(b, &info); err != nil {
		return err
	}
	root, err := parseKey(info.RootPublicKey)
	if err != nil {
		return err
	}
	online := o.online
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && (online < 0 || uint64(online) > lim.Cur-200) {
		online = min(o.n, int(lim.Cur)-200)
	}
	if online < 0 {
		online = o.n
	}
	before, err := c.measure("")
	if err != nil {
		return err
	}
	cfg := simload.Config{
		ServerURL: info.WSURL, ServerRoot: root, ControlURL: info.ControlURL,
		Devices: o.n, Online: max(online, 1), Parallel: o.parallel, PreKeys: o.prekeys,
		Keepalive: 30 * time.Second,
	}
	if o.verbose {
		cfg.Progress = func(p simload.Progress) {
			fmt.Fprintf(os.Stderr, "\r%5.0fs linked %d failed %d online %d ", p.Elapsed.Seconds(), p.Linked, p.Failed, p.Online)
		}
	}
	f, rep, err := simload.Link(ctx, cfg)
	if o.verbose {
		fmt.Fprintln(os.Stderr)
	}
	if err != nil {
		return err
	}
	if rep.Failed > 0 {
		fmt.Fprintf(os.Stderr, "simmem: %d links failed: %v\n", rep.Failed, rep.Errors)
	}
	select {
	case <-ctx.Done():
		f.Close()
		return ctx.Err()
	case <-time.After(o.settle):
	}
	after, err := c.measure(o.heapProf)
	if err != nil {
		f.Close()
		return err
	}
	f.Close()
	res := Result{
		N: o.n, Online: f.Online(), Linked: rep.Linked, Failed: rep.Failed, PreKeys: o.prekeys,
		LinkSec: rep.Duration.Seconds(), LinksPerS: float64(rep.Linked) / rep.Duration.Seconds(),
		P50MS: ms(rep.P50), P90MS: ms(rep.P90), P99MS: ms(rep.P99),
		Before: before, Linked0: after,
	}
	res.Online = rep.Online
	n := float64(max(rep.Linked, 1))
	res.HeapPerDev = float64(int64(after.HeapInuse)-int64(before.HeapInuse)) / n
	res.GoPerDev = float64(int64(after.HeapInuse+after.StackInuse)-int64(before.HeapInuse+before.StackInuse)) / n
	res.RSSPerDev = float64(after.RSS-before.RSS) / n
	if rep.Online > 0 {
		res.GoroutinesPer = float64(after.Goroutines-before.Goroutines) / float64(rep.Online)
		// Let the server notice the closed sockets, then measure again.
		time.Sleep(o.settle)
		prof := ""
		if o.heapProf != "" {
			prof = o.heapProf + ".offline"
		}
		off, err := c.measure(prof)
		if err != nil {
			return err
		}
		res.Offline = &off
		res.OfflinePerDev = float64(int64(off.HeapInuse+off.StackInuse)-int64(before.HeapInuse+before.StackInuse)) / n
		res.PerConn = float64(int64(after.HeapInuse+after.StackInuse)-int64(off.HeapInuse+off.StackInuse)) / float64(rep.Online)
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func parseKey(h string) (keys.PublicKey, error) {
	var b [32]byte
	if len(h) != 64 {
		return keys.PublicKey{}, errors.New("root key: want 64 hex characters")
	}
	for i := range b {
		v, err := strconv.ParseUint(h[2*i:2*i+2], 16, 8)
		if err != nil {
			return keys.PublicKey{}, err
		}
		b[i] = byte(v)
	}
	return keys.PublicKeyFromBytes(b[:])
}
