// Command sessions measures the memory and goroutines that N idle, linked
// sessions cost, for walink or whatsmeow clients connected to the local
// WhatsApp (watest).
//
// The local WhatsApp runs in a child process (this binary with
// -role=server), so the client process holds only clients: its heap, RSS
// and goroutines after linking, minus its own baseline before the first
// client, divided by N, are the per-session numbers. The server's share is
// reported separately from the child's VmRSS.
//
// Every client is paired like a person would: its QR code is scanned by a
// virtual phone (one phone number per client) through watest's control API,
// the client restarts after the 515, logs in and uploads its first batch of
// 812 pre-keys (both libraries' default), into one SQLite file per library
// (modernc driver): walink's store/sqlite (or a memstore per client with
// -store=mem) and whatsmeow's sqlstore. After Settle the process is garbage
// collected and measured. The result is one JSON line on stdout; its
// rss_outside_go_per_session is the part of the RSS the Go runtime does not
// manage (the SQLite driver's C heap, mostly).
package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.mau.fi/whatsmeow"
	wmstore "go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types/events"
	waLog "go.mau.fi/whatsmeow/util/log"
	_ "modernc.org/sqlite"

	"github.com/walinkdev/walink"
	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/store"
	"github.com/walinkdev/walink/store/memstore"
	"github.com/walinkdev/walink/store/sqlite"
	"github.com/walinkdev/walink/watest"
)

type options struct {
	role      string
	impl      string
	n         int
	parallel  int
	settle    time.Duration
	timeout   time.Duration
	qrRefresh bool
	heapProf  string
	classes   string
	store     string
	cacheKiB  int
	verbose   bool
}

func main() {
	var o options
	flag.StringVar(&o.role, "role", "client", "client, or server (the child running the local WhatsApp)")
	flag.StringVar(&o.impl, "impl", "walink", "walink, whatsmeow or none (baseline: server and process only)")
	flag.IntVar(&o.n, "n", 100, "number of sessions")
	flag.IntVar(&o.parallel, "parallel", 16, "pairings in flight at once")
	flag.DurationVar(&o.settle, "settle", 5*time.Second, "idle time after the last login before measuring")
	flag.DurationVar(&o.timeout, "timeout", 15*time.Minute, "give up after this long")
	flag.BoolVar(&o.qrRefresh, "qr-refresh", false, "server sends companion_reg_refresh on the first scan (CHANGES-2026 §1)")
	flag.StringVar(&o.store, "store", "sqlite", "walink's store: sqlite (store/sqlite, one file shared by all clients, like whatsmeow's sqlstore) or mem (memstore per client)")
	flag.IntVar(&o.cacheKiB, "sqlite-cache", 0, "walink's sqlite store: page cache per connection in KiB (0: the store's default, sqlite.DefaultCacheSize)")
	flag.StringVar(&o.heapProf, "heapprofile", "", "write a heap profile after measuring")
	flag.StringVar(&o.classes, "sizeclasses", "", "write a heap dump to this file after measuring and print, per size class, live bytes and bytes in spans per session to stderr")
	flag.BoolVar(&o.verbose, "v", false, "log progress to stderr")
	flag.Parse()
	if o.heapProf != "" {
		// Fine-grained sampling so that per-session sites show up.
		runtime.MemProfileRate = 512
	}

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
		fmt.Fprintln(os.Stderr, "sessions:", err)
		os.Exit(1)
	}
}

// runServer serves the local WhatsApp until stdin closes (the parent died
// or is done) or a signal comes.
func runServer(ctx context.Context, o options) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	sc := watest.DefaultScenario()
	sc.QRRefresh = o.qrRefresh
	sc.FirstStanzaDelayMS = 0
	return watest.RunSim(ctx, os.Stdout, watest.Config{Scenario: &sc})
}

// Result is the JSON line the client role prints.
type Result struct {
	Impl      string   `json:"impl"`
	Store     string   `json:"store"`
	N         int      `json:"n"`
	Linked    int      `json:"linked"`
	Connected int      `json:"connected"`
	Failures  []string `json:"failures,omitempty"`
	LinkSec   float64  `json:"link_seconds"`
	// Per device: from the start of its pairing to logged in with its
	// pre-keys uploaded, while o.parallel pairings are in flight.
	LinkP50Ms     float64 `json:"link_p50_ms"`
	LinkP99Ms     float64 `json:"link_p99_ms"`
	DevicesPerSec float64 `json:"devices_per_second"`

	Before Sample `json:"before"`
	After  Sample `json:"after"`

	HeapPerSession      float64 `json:"heap_inuse_per_session"`
	HeapAllocPerSession float64 `json:"heap_alloc_per_session"`
	RSSPerSession       float64 `json:"rss_per_session"`
	// The part of RSSPerSession outside the Go runtime's memory: the
	// SQLite driver's C heap (page caches), mostly.
	RSSOutsideGoPerSession float64 `json:"rss_outside_go_per_session"`
	// The file-backed part of RSSPerSession (code paged in by linking).
	RSSFilePerSession    float64 `json:"rss_file_per_session"`
	GoroutinesPerSession float64 `json:"goroutines_per_session"`

	ServerRSSBefore     int64   `json:"server_rss_before"`
	ServerRSSAfter      int64   `json:"server_rss_after"`
	ServerRSSPerSession float64 `json:"server_rss_per_session"`
}

// Sample is one measurement of this process after a full GC.
type Sample struct {
	HeapInuse  uint64 `json:"heap_inuse"`
	HeapAlloc  uint64 `json:"heap_alloc"`
	StackInuse uint64 `json:"stack_inuse"`
	RSS        int64  `json:"rss"`
	// RSSFile is the file-backed part of RSS: mostly the binary's code
	// and data pages, paged in as code first runs.
	RSSFile int64 `json:"rss_file"`
	// GoMapped is what the Go runtime has mapped and not returned to the
	// OS (heap, stacks, metadata); RSS - GoMapped is, to within the pages
	// the runtime mapped but never touched, memory the runtime does not
	// manage (cgo-free C heaps such as modernc's, the binary's pages).
	GoMapped   uint64 `json:"go_mapped"`
	Goroutines int    `json:"goroutines"`
}

func measure() Sample {
	runtime.GC()
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(m)
	return Sample{
		HeapInuse: ms.HeapInuse, HeapAlloc: ms.HeapAlloc, StackInuse: ms.StackInuse,
		RSS: rssOf("self"), RSSFile: statusOf("self", "RssFile:"), GoMapped: m[0].Value.Uint64() - m[1].Value.Uint64(),
		Goroutines: runtime.NumGoroutine(),
	}
}

// rssOf reads VmRSS (bytes) from /proc/<pid>/status; -1 if unavailable.
func rssOf(pid string) int64 { return statusOf(pid, "VmRSS:") }

// statusOf reads a field in kB from /proc/<pid>/status, in bytes; -1 if
// unavailable.
func statusOf(pid, field string) int64 {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb * 1024
			}
		}
	}
	return -1
}

type server struct {
	info watest.SimInfo
	root keys.PublicKey
	cmd  *exec.Cmd
	in   io.WriteCloser
	pid  string
}

func startServer(ctx context.Context, o options) (*server, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "-role=server", "-qr-refresh="+strconv.FormatBool(o.qrRefresh))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, in: in, pid: strconv.Itoa(cmd.Process.Pid)}
	line, err := bufio.NewReader(out).ReadBytes('\n')
	if err != nil {
		s.close()
		return nil, fmt.Errorf("reading the server's first line: %w", err)
	}
	go io.Copy(io.Discard, out)
	if err := json.Unmarshal(line, &s.info); err != nil {
		s.close()
		return nil, fmt.Errorf("server info %q: %w", line, err)
	}
	rb, err := hex.DecodeString(s.info.RootPublicKey)
	if err == nil {
		s.root, err = keys.PublicKeyFromBytes(rb)
	}
	if err != nil {
		s.close()
		return nil, fmt.Errorf("server root key: %w", err)
	}
	return s, nil
}

func (s *server) close() {
	s.in.Close()
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}

// scan has the virtual phone scan qr. It returns errRescan when the server
// retired the code (scan the next one).
func (s *server) scan(ctx context.Context, phone, qr string) error {
	body, _ := json.Marshal(map[string]string{"qr": qr})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.info.ControlURL+"/phones/"+phone+"/scan", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	switch resp.StatusCode {
	case http.StatusOK:
		return nil
	case http.StatusConflict:
		return fmt.Errorf("%w: %s", errRescan, bytes.TrimSpace(msg))
	}
	return fmt.Errorf("scan: HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(msg))
}

var errRescan = errors.New("rescan")

// session is one linked client of either library.
type session interface {
	connected() bool
	close()
}

type linker interface {
	link(ctx context.Context, i int) (session, error)
	close()
}

func runClient(ctx context.Context, o options) error {
	http.DefaultTransport.(*http.Transport).MaxIdleConnsPerHost = o.parallel
	srv, err := startServer(ctx, o)
	if err != nil {
		return err
	}
	defer srv.close()

	var l linker
	switch o.impl {
	case "walink":
		l, err = newWalinkLinker(ctx, srv, o.store, o.cacheKiB, o.verbose)
	case "whatsmeow":
		l, err = newWhatsmeowLinker(ctx, srv, o.verbose)
	case "none":
		l = noneLinker{}
	default:
		err = fmt.Errorf("unknown -impl %q", o.impl)
	}
	if err != nil {
		return err
	}
	defer l.close()

	res := Result{Impl: o.impl, N: o.n, Store: o.store}
	if o.impl == "whatsmeow" {
		res.Store = "sqlite (sqlstore)"
	}
	time.Sleep(200 * time.Millisecond)
	res.ServerRSSBefore = rssOf(srv.pid)
	res.Before = measure()
	var msBefore runtime.MemStats
	runtime.ReadMemStats(&msBefore)

	start := time.Now()
	sessions := make([]session, o.n)
	lat := make([]time.Duration, 0, o.n)
	var mu sync.Mutex
	var next atomic.Int64
	var wg sync.WaitGroup
	for range o.parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= o.n || ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				s, err := l.link(ctx, i)
				d := time.Since(t0)
				mu.Lock()
				if err == nil {
					lat = append(lat, d)
				}
				if err != nil {
					if len(res.Failures) < 10 {
						res.Failures = append(res.Failures, fmt.Sprintf("session %d: %v", i, err))
					}
				} else {
					sessions[i] = s
					res.Linked++
				}
				if o.verbose && (res.Linked%100 == 0 || err != nil) {
					fmt.Fprintf(os.Stderr, "%s: %d linked after %v (err %v)\n", o.impl, res.Linked, time.Since(start).Round(time.Millisecond), err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res.LinkSec = time.Since(start).Seconds()
	if len(lat) > 0 {
		slices.Sort(lat)
		pct := func(p float64) float64 {
			return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))]) / 1e6
		}
		res.LinkP50Ms, res.LinkP99Ms = pct(0.50), pct(0.99)
		res.DevicesPerSec = float64(len(lat)) / res.LinkSec
	}

	select {
	case <-time.After(o.settle):
	case <-ctx.Done():
	}
	for _, s := range sessions {
		if s != nil && s.connected() {
			res.Connected++
		}
	}
	// The control API client's idle keep-alive connections (two goroutines
	// each) belong to the harness, not to the sessions.
	http.DefaultClient.CloseIdleConnections()
	res.After = measure()
	res.ServerRSSAfter = rssOf(srv.pid)
	if o.classes != "" {
		var msAfter runtime.MemStats
		runtime.ReadMemStats(&msAfter)
		if stats, err := sizeClassStats(o.classes, &msBefore, &msAfter); err != nil {
			fmt.Fprintln(os.Stderr, "sessions: size classes:", err)
		} else {
			printSizeClasses(os.Stderr, stats, max(res.Connected, 1))
		}
	}
	if o.heapProf != "" {
		if f, err := os.Create(o.heapProf); err == nil {
			pprof.WriteHeapProfile(f)
			f.Close()
		}
		// The idle goroutines' stacks, to see what holds stack memory.
		if f, err := os.Create(o.heapProf + ".goroutines.txt"); err == nil {
			pprof.Lookup("goroutine").WriteTo(f, 1)
			f.Close()
		}
	}
	if n := float64(res.Connected); n > 0 {
		res.HeapPerSession = float64(int64(res.After.HeapInuse)-int64(res.Before.HeapInuse)) / n
		res.HeapAllocPerSession = float64(int64(res.After.HeapAlloc)-int64(res.Before.HeapAlloc)) / n
		res.RSSPerSession = float64(res.After.RSS-res.Before.RSS) / n
		outside := func(s Sample) int64 { return s.RSS - int64(s.GoMapped) }
		res.RSSOutsideGoPerSession = float64(outside(res.After)-outside(res.Before)) / n
		res.RSSFilePerSession = float64(res.After.RSSFile-res.Before.RSSFile) / n
		res.GoroutinesPerSession = float64(res.After.Goroutines-res.Before.Goroutines) / n
		res.ServerRSSPerSession = float64(res.ServerRSSAfter-res.ServerRSSBefore) / n
	}
	json.NewEncoder(os.Stdout).Encode(res)

	// Close in parallel: whatsmeow's Disconnect waits for the socket.
	var cw sync.WaitGroup
	sem := make(chan struct{}, 64)
	for _, s := range sessions {
		if s == nil {
			continue
		}
		cw.Add(1)
		sem <- struct{}{}
		go func() {
			defer cw.Done()
			s.close()
			<-sem
		}()
	}
	cw.Wait()
	if res.Connected < o.n {
		return fmt.Errorf("%d of %d sessions connected", res.Connected, o.n)
	}
	return nil
}

func phoneFor(i int) string { return strconv.Itoa(15550000000 + i) }

type noneLinker struct{}

func (noneLinker) link(context.Context, int) (session, error) { return noneSession{}, nil }
func (noneLinker) close()                                     {}

type noneSession struct{}

func (noneSession) connected() bool { return true }
func (noneSession) close()          {}

// walink

type walinkLinker struct {
	srv     *server
	verbose bool
	shared  store.Store // nil: a memstore per client
	dir     string
}

func newWalinkLinker(ctx context.Context, srv *server, kind string, cacheKiB int, verbose bool) (*walinkLinker, error) {
	l := &walinkLinker{srv: srv, verbose: verbose}
	switch kind {
	case "mem":
		return l, nil
	case "sqlite":
	default:
		return nil, fmt.Errorf("unknown -store %q", kind)
	}
	dir, err := os.MkdirTemp("", "wl-sessions-")
	if err != nil {
		return nil, err
	}
	l.dir = dir
	opts := []sqlite.Option{sqlite.WithBusyTimeout(30 * time.Second)}
	if cacheKiB > 0 {
		opts = append(opts, sqlite.WithCacheSize(cacheKiB))
	}
	st, err := sqlite.Open(ctx, dir+"/walink.db", opts...)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	l.shared = st
	return l, nil
}

func (l *walinkLinker) close() {
	if l.shared != nil {
		l.shared.Close()
		os.RemoveAll(l.dir)
	}
}

func (l *walinkLinker) newStore() store.Store {
	if l.shared == nil {
		return memstore.New()
	}
	return &deviceView{Store: l.shared}
}

// deviceView lets many clients share one store: a client with a zero
// Config.Device takes the first device the store lists, so each client
// sees only the device it created itself.
type deviceView struct {
	store.Store
	mu   sync.Mutex
	mine keys.PublicKey
}

func (v *deviceView) Devices(ctx context.Context) ([]*store.Device, error) {
	v.mu.Lock()
	mine := v.mine
	v.mu.Unlock()
	if mine.IsZero() {
		return nil, nil
	}
	d, err := v.Store.Device(ctx, mine)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return []*store.Device{d}, nil
}

func (v *deviceView) PutDevice(ctx context.Context, d *store.Device) error {
	v.mu.Lock()
	if v.mine.IsZero() {
		v.mine = d.NoiseKey.Public
	}
	v.mu.Unlock()
	return v.Store.PutDevice(ctx, d)
}

// Close leaves the shared store open; the linker closes it.
func (v *deviceView) Close() error { return nil }

// eventBox hands events to the linking loop until release.
type eventBox struct {
	mu sync.Mutex
	ch chan walink.Event
}

func (b *eventBox) send(e walink.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case b.ch <- e:
	default:
	}
}

func (b *eventBox) release() {
	b.mu.Lock()
	b.ch = nil
	b.mu.Unlock()
}

type walinkSession struct{ cli *walink.Client }

func (s walinkSession) connected() bool { return s.cli.IsConnected() && s.cli.IsLoggedIn() }
func (s walinkSession) close()          { s.cli.Close() }

func (l *walinkLinker) link(ctx context.Context, i int) (session, error) {
	var logger *slog.Logger
	if l.verbose && i == 0 {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	cli := walink.NewClient(l.newStore(), walink.Config{
		ServerURL:  l.srv.info.WSURL,
		ServerRoot: l.srv.root,
		Logger:     logger,
	})
	// The dispatcher calls this in order; it must not block. Once linking
	// ends the handler lets go of the channel (so the harness's buffer is
	// not counted as the session's memory) and drops later events, as the
	// whatsmeow side's handler keeps nothing either.
	evs := make(chan walink.Event, 64)
	box := &eventBox{ch: evs}
	defer box.release()
	cli.AddEventHandler(box.send)
	ok := false
	defer func() {
		if !ok {
			cli.Close()
		}
	}()
	lctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := cli.Connect(lctx); err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	phone := phoneFor(i)
	for {
		select {
		case e := <-evs:
			switch e := e.(type) {
			case walink.PairingQRCode:
				if err := l.srv.scan(lctx, phone, e.Code); err != nil && !errors.Is(err, errRescan) {
					return nil, err
				}
			case walink.Connected:
				ok = true
				return walinkSession{cli}, nil
			case walink.PairError, walink.LoggedOut, walink.ConnectFailure, walink.ClientOutdated, walink.QRCodesExpired:
				return nil, fmt.Errorf("event %T %+v", e, e)
			}
		case <-lctx.Done():
			return nil, fmt.Errorf("waiting to link: %w", lctx.Err())
		}
	}
}

// whatsmeow

type whatsmeowLinker struct {
	srv       *server
	container *sqlstore.Container
	db        *sql.DB
	dir       string
	hc        *http.Client
	verbose   bool
}

func newWhatsmeowLinker(ctx context.Context, srv *server, verbose bool) (*whatsmeowLinker, error) {
	// whatsmeow trusts one root, a package variable.
	copy(whatsmeow.WACertPubKey[:], srv.root.Bytes())
	wmstore.DeviceProps.Os = strPtr("bench")

	dir, err := os.MkdirTemp("", "wm-sessions-")
	if err != nil {
		return nil, err
	}
	dsn := "file:" + dir + "/wm.db?_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=busy_timeout(30000)&_pragma=synchronous(OFF)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	container := sqlstore.NewWithDB(db, "sqlite", nil)
	if err := container.Upgrade(ctx); err != nil {
		return nil, fmt.Errorf("whatsmeow store: %w", err)
	}
	// whatsmeow dials wss://web.whatsapp.com/ws/chat; the dialer sends every
	// TLS connection to the local WhatsApp as plain TCP (net/http takes a
	// DialTLSContext conn as already secured).
	u, err := url.Parse(srv.info.WSURL)
	if err != nil {
		return nil, err
	}
	host := u.Host
	tr := &http.Transport{
		DialTLSContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, host)
		},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, host)
		},
	}
	return &whatsmeowLinker{srv: srv, container: container, db: db, dir: dir, hc: &http.Client{Transport: tr}, verbose: verbose}, nil
}

func strPtr(s string) *string { return &s }

func (l *whatsmeowLinker) close() {
	l.db.Close()
	os.RemoveAll(l.dir)
}

type whatsmeowSession struct{ cli *whatsmeow.Client }

func (s whatsmeowSession) connected() bool { return s.cli.IsConnected() && s.cli.IsLoggedIn() }
func (s whatsmeowSession) close()          { s.cli.Disconnect() }

func (l *whatsmeowLinker) link(ctx context.Context, i int) (session, error) {
	log := waLog.Noop
	if l.verbose && i == 0 {
		log = waLog.Stdout("wm", "DEBUG", false)
	}
	cli := whatsmeow.NewClient(l.container.NewDevice(), log)
	cli.SetWebsocketHTTPClient(l.hc)
	cli.SetPreLoginHTTPClient(l.hc)
	connected := make(chan struct{})
	var once sync.Once
	cli.AddEventHandler(func(evt any) {
		if _, ok := evt.(*events.Connected); ok {
			once.Do(func() { close(connected) })
		}
	})
	ok := false
	defer func() {
		if !ok {
			cli.Disconnect()
		}
	}()
	lctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	qr, err := cli.GetQRChannel(lctx)
	if err != nil {
		return nil, fmt.Errorf("qr channel: %w", err)
	}
	// ctx, not lctx: whatsmeow ties the connection's life to it.
	if err := cli.ConnectContext(ctx); err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	phone := phoneFor(i)
	for paired := false; !paired; {
		select {
		case item, open := <-qr:
			if !open {
				return nil, errors.New("qr channel closed before success")
			}
			switch item.Event {
			case whatsmeow.QRChannelEventCode:
				if err := l.srv.scan(lctx, phone, item.Code); err != nil && !errors.Is(err, errRescan) {
					return nil, err
				}
			case whatsmeow.QRChannelSuccess.Event:
				paired = true
			default:
				return nil, fmt.Errorf("qr channel: %s %v", item.Event, item.Error)
			}
		case <-lctx.Done():
			return nil, fmt.Errorf("waiting to pair: %w", lctx.Err())
		}
	}
	select {
	case <-connected:
	case <-lctx.Done():
		return nil, fmt.Errorf("waiting for login after pairing: %w", lctx.Err())
	}
	ok = true
	return whatsmeowSession{cli}, nil
}
