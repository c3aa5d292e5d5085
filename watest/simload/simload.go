// Package simload links many light virtual companions to a running local
// WhatsApp (`walink sim`, or any server with the same control API) and
// keeps them online, to load-test a gateway or the server itself. It is
// the body of `walink sim load`.
//
// A companion here is not a walink.Client: it holds its keys and one
// socket, and drives the transport, pairing and engine packages directly
// (the same builders the client uses), so a hundred thousand fit in a few
// GiB. Each one
//
//  1. connects with a registration payload and gets pair-device,
//  2. has its QR scanned by the virtual phone of its own number through
//     POST /phones/{number}/scan on the control API,
//  3. answers pair-success with pair-device-sign and gets the 515,
//  4. logs in, uploads Config.PreKeys pre-keys and stays connected,
//     sending a w:p ping every Config.Keepalive and answering server pings.
//
// The link latency reported is the time from the first dial to the
// answer of the pre-key upload. Pre-key values are random 32-byte strings,
// not real keys: the server stores them and nobody ever uses them, and
// generating real ones would cost a load run more CPU than the linking.
package simload

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/engine"
	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/pairing"
	"github.com/walinkdev/walink/store"
	"github.com/walinkdev/walink/transport"
	"github.com/walinkdev/walink/waproto"
)

// Config configures Run. ServerURL, ServerRoot and ControlURL are
// required; the rest have the documented defaults.
type Config struct {
	ServerURL  string         // WebSocket URL, "ws://127.0.0.1:PORT/ws/chat"
	ServerRoot keys.PublicKey // root key the server's chain is signed with
	ControlURL string         // control API base, "http://127.0.0.1:PORT"

	// Devices is how many companions to link. Default 1.
	Devices int
	// Online is how many of them stay connected after linking; the others
	// log in once, upload their pre-keys and disconnect (they stay linked).
	// Each online companion holds one socket, so the server's and this
	// process's open-file limits bound it. Default (0) = Devices.
	Online int
	// Rate is how many links start per second; 0 = as fast as Parallel
	// allows.
	Rate float64
	// Parallel bounds the links in flight. Default 32.
	Parallel int
	// FirstNumber is the phone number of the first companion; companion i
	// is linked to the phone FirstNumber+i. Default 15550000000.
	FirstNumber uint64
	// PreKeys is the size of the pre-key upload after the first login
	// (812, as whatsmeow, whatsapp-rust and Baileys upload). Default 812;
	// negative = none.
	PreKeys int
	// Keepalive is the interval of w:p pings per online companion, spread
	// evenly. Default 30 s; negative = no pings.
	Keepalive time.Duration
	// Timeout bounds one link (all four steps). Default 60 s.
	Timeout time.Duration
	// Progress, when set, is called about once a second while linking and
	// once at the end.
	Progress func(Progress)
	// Logger receives per-companion failures at Debug; nil = none.
	Logger *slog.Logger
}

// Progress is a snapshot of a run.
type Progress struct {
	Started, Linked, Failed, Online int
	Elapsed                         time.Duration
}

// Report is the outcome of the linking phase.
type Report struct {
	Devices  int           `json:"devices"`
	Linked   int           `json:"linked"`
	Failed   int           `json:"failed"`
	Online   int           `json:"online"`
	Duration time.Duration `json:"duration_ns"`
	// Link latency percentiles over the linked companions.
	P50 time.Duration `json:"p50_ns"`
	P90 time.Duration `json:"p90_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
	// Errors counts failures by their first line, at most 20 kinds.
	Errors map[string]int `json:"errors,omitempty"`
}

func (c *Config) defaults() error {
	if c.ServerURL == "" || c.ControlURL == "" {
		return errors.New("simload: ServerURL and ControlURL are required")
	}
	if c.Devices <= 0 {
		c.Devices = 1
	}
	if c.Online <= 0 || c.Online > c.Devices {
		c.Online = c.Devices
	}
	if c.Parallel <= 0 {
		c.Parallel = 32
	}
	if c.FirstNumber == 0 {
		c.FirstNumber = 15550000000
	}
	if c.PreKeys == 0 {
		c.PreKeys = 812
	}
	if c.Keepalive == 0 {
		c.Keepalive = 30 * time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = 60 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Fleet is the set of online companions after Link; Close disconnects
// them.
type Fleet struct {
	cfg    Config
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	online []*conn
	// dropped counts online companions whose connection ended before
	// Close (the server kicked or closed it).
	dropped atomic.Int64
}

// Run links cfg.Devices companions, keeps cfg.Online of them connected
// until ctx ends, and returns the linking report. The report is also
// returned when ctx ends during linking, with what was done so far.
func Run(ctx context.Context, cfg Config) (Report, error) {
	f, rep, err := Link(ctx, cfg)
	if err != nil {
		return rep, err
	}
	<-ctx.Done()
	f.Close()
	return rep, nil
}

// Link links the companions and returns once every link has succeeded or
// failed; the online ones stay connected until Fleet.Close (or ctx ends).
func Link(ctx context.Context, cfg Config) (*Fleet, Report, error) {
	if err := cfg.defaults(); err != nil {
		return nil, Report{}, err
	}
	ctrl, err := url.Parse(cfg.ControlURL)
	if err != nil {
		return nil, Report{}, fmt.Errorf("simload: control url: %w", err)
	}
	fctx, cancel := context.WithCancel(context.Background())
	f := &Fleet{cfg: cfg, ctx: fctx, cancel: cancel}
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	httpc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Parallel, MaxConnsPerHost: cfg.Parallel}}
	defer httpc.CloseIdleConnections()

	var (
		mu        sync.Mutex
		latencies []time.Duration
		errs      = map[string]int{}
		failed    int
		started   atomic.Int64
	)
	start := time.Now()
	progressDone := make(chan struct{})
	progressExited := make(chan struct{})
	if cfg.Progress == nil {
		close(progressExited)
	} else {
		go func() {
			defer close(progressExited)
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-progressDone:
					return
				case <-t.C:
					mu.Lock()
					p := Progress{Started: int(started.Load()), Linked: len(latencies), Failed: failed, Online: f.count(), Elapsed: time.Since(start)}
					mu.Unlock()
					cfg.Progress(p)
				}
			}
		}()
	}
	sem := make(chan struct{}, cfg.Parallel)
	var wg sync.WaitGroup
	var interval time.Duration
	if cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) / cfg.Rate)
	}
	next := time.Now()
loop:
	for i := 0; i < cfg.Devices; i++ {
		if interval > 0 {
			if d := time.Until(next); d > 0 {
				select {
				case <-fctx.Done():
					break loop
				case <-time.After(d):
				}
			}
			next = next.Add(interval)
		}
		select {
		case <-fctx.Done():
			break loop
		case sem <- struct{}{}:
		}
		started.Add(1)
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			number := strconv.FormatUint(cfg.FirstNumber+uint64(i), 10)
			keep := i < cfg.Online
			d, err := linkOne(fctx, cfg, httpc, ctrl, number, keep, f)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				k := err.Error()
				if _, ok := errs[k]; ok || len(errs) < 20 {
					errs[k]++
				}
				cfg.Logger.Debug("simload: link failed", "number", number, "err", err)
				return
			}
			latencies = append(latencies, d)
		}(i)
	}
	wg.Wait()
	close(progressDone)
	<-progressExited
	rep := Report{Devices: cfg.Devices, Linked: len(latencies), Failed: failed, Online: f.count(), Duration: time.Since(start)}
	if len(errs) > 0 {
		rep.Errors = errs
	}
	slices.Sort(latencies)
	if n := len(latencies); n > 0 {
		pct := func(p float64) time.Duration { return latencies[min(n-1, int(p*float64(n)))] }
		rep.P50, rep.P90, rep.P99, rep.Max = pct(0.50), pct(0.90), pct(0.99), latencies[n-1]
	}
	if cfg.Progress != nil {
		cfg.Progress(Progress{Started: int(started.Load()), Linked: rep.Linked, Failed: rep.Failed, Online: rep.Online, Elapsed: rep.Duration})
	}
	if cfg.Keepalive > 0 {
		f.wg.Add(1)
		go f.keepalive()
	}
	return f, rep, nil
}

// Online returns how many companions are connected now.
func (f *Fleet) Online() int { return f.count() - int(f.dropped.Load()) }

func (f *Fleet) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.online)
}

// Close disconnects every companion and waits for their goroutines.
func (f *Fleet) Close() {
	f.cancel()
	f.mu.Lock()
	for _, c := range f.online {
		c.tc.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

// keepalive sends each online companion a w:p ping once per interval,
// spread evenly, from one goroutine (not a timer per companion).
func (f *Fleet) keepalive() {
	defer f.wg.Done()
	for {
		f.mu.Lock()
		conns := slices.Clone(f.online)
		f.mu.Unlock()
		if len(conns) == 0 {
			conns = nil
		}
		step := f.cfg.Keepalive
		if len(conns) > 0 {
			step = f.cfg.Keepalive / time.Duration(len(conns))
		}
		t := time.NewTicker(max(step, time.Microsecond))
		for _, c := range conns {
			select {
			case <-f.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			if c.closed.Load() {
				continue
			}
			wctx, cancel := context.WithTimeout(f.ctx, 10*time.Second)
			_ = c.send(wctx, engine.Ping(c.ids.Next()))
			cancel()
		}
		t.Stop()
		if len(conns) == 0 {
			select {
			case <-f.ctx.Done():
				return
			case <-time.After(f.cfg.Keepalive):
			}
		}
	}
}

// conn is an online companion: its socket and the ids it numbers IQs with.
type conn struct {
	tc     *transport.Conn
	dict   *binxml.Dictionary
	ids    *engine.IDs
	wmu    sync.Mutex
	buf    []byte
	closed atomic.Bool
}

func (c *conn) send(ctx context.Context, n binxml.Node) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var err error
	if c.buf, err = c.dict.AppendMarshal(c.buf[:0], n); err != nil {
		return err
	}
	err = c.tc.WriteFrame(ctx, c.buf)
	if cap(c.buf) > 1024 {
		c.buf = nil // the pre-key upload: do not keep 30 KiB per idle companion
	}
	return err
}

// read returns the next node; it does not alias the connection's buffer.
func (c *conn) read() (binxml.Node, error) {
	frame, err := c.tc.ReadFrame()
	if err != nil {
		return binxml.Node{}, err
	}
	return c.dict.Unmarshal(frame)
}

// expect reads until a node match accepts, answering server pings and
// acking notifications on the way.
func (c *conn) expect(ctx context.Context, what string, match func(binxml.Node) bool) (binxml.Node, error) {
	for {
		n, err := c.read()
		if err != nil {
			return n, fmt.Errorf("waiting for %s: %w", what, err)
		}
		if match(n) {
			return n, nil
		}
		switch {
		case engine.IsServerPing(n):
			_ = c.send(ctx, engine.Pong(n))
		case n.Tag == "notification":
			_ = c.send(ctx, engine.Ack(n))
		case n.Tag == "stream:error" || n.Tag == "failure":
			return n, fmt.Errorf("waiting for %s: got %s %s", what, n.Tag, n.Attr("code")+n.Attr("reason"))
		}
	}
}

var payloadConfig = engine.PayloadConfig{
	Version:      engine.Version{2, 3000, 1031080782},
	OSName:       "walink-sim-load",
	PlatformType: waproto.DeviceProps_CHROME,
}

// dial connects and handshakes with payload.
func dial(ctx context.Context, cfg Config, d *store.Device, payload []byte) (*conn, error) {
	nc, err := transport.Dial(ctx, cfg.ServerURL, nil)
	if err != nil {
		return nil, err
	}
	tc, err := transport.Handshake(ctx, nc, transport.ClientConfig{NoiseKey: d.NoiseKey, RootKey: cfg.ServerRoot, Payload: payload})
	if err != nil {
		nc.Close()
		return nil, err
	}
	ids, err := engine.NewIDs(rand.Reader)
	if err != nil {
		tc.Close()
		return nil, err
	}
	return &conn{tc: tc, dict: binxml.DictV3, ids: ids}, nil
}

// linkOne links one companion and returns its link latency.
func linkOne(ctx context.Context, cfg Config, httpc *http.Client, ctrl *url.URL, number string, keep bool, f *Fleet) (time.Duration, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	d, err := newDevice()
	if err != nil {
		return 0, err
	}
	// 1. Registration: pair-device.
	payload, err := engine.RegistrationPayload(d, payloadConfig)
	if err != nil {
		return 0, err
	}
	c, err := dial(ctx, cfg, d, payload)
	if err != nil {
		return 0, fmt.Errorf("register: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { c.tc.Close() })
	defer stop()
	defer c.tc.Close()
	pd, err := c.expect(ctx, "pair-device", func(n binxml.Node) bool { _, ok := n.Child("pair-device"); return ok })
	if err != nil {
		return 0, err
	}
	refs, err := engine.ParsePairDevice(pd)
	if err != nil {
		return 0, err
	}
	if err := c.send(ctx, engine.IQResult(pd.Attr("id"))); err != nil {
		return 0, err
	}
	// 2. The phone scans the QR (the control call returns after the link).
	// A server that retires the first QR's adv secret
	// (companion_reg_refresh, CHANGES-2026 §1) answers that scan 409 and
	// gets a second one, of the QR re-rendered with a new secret.
	scanErr := make(chan error, 1)
	startScan := func() {
		qr := pairing.QR{Ref: refs[0], Noise: d.NoiseKey.Public, Identity: d.IdentityKey.Public, AdvSecret: d.AdvSecret, ClientType: pairing.ClientTypeChrome}
		go func() { scanErr <- scan(ctx, httpc, ctrl, number, qr.String()) }()
	}
	startScan()
	// 3. pair-success → pair-device-sign → 515.
	var ps binxml.Node
	for {
		ps, err = c.expect(ctx, "pair-success", func(n binxml.Node) bool {
			_, ok := n.Child("pair-success")
			return ok || engine.IsRegRefresh(n)
		})
		if err != nil {
			return 0, errors.Join(err, <-scanErr)
		}
		if !engine.IsRegRefresh(ps) {
			break
		}
		if err := c.send(ctx, engine.Ack(ps)); err != nil {
			return 0, errors.Join(err, <-scanErr)
		}
		if _, err := rand.Read(d.AdvSecret[:]); err != nil {
			return 0, errors.Join(err, <-scanErr)
		}
		if err := <-scanErr; err != nil && !errors.Is(err, errRescan) {
			return 0, err
		}
		startScan()
	}
	succ, err := engine.ParsePairSuccess(ps)
	if err != nil {
		return 0, errors.Join(err, <-scanErr)
	}
	v, err := pairing.VerifyPairSuccess(rand.Reader, d.AdvSecret, d.IdentityKey, succ.DeviceIdentity)
	if err != nil {
		return 0, errors.Join(fmt.Errorf("pair-success: %w", err), <-scanErr)
	}
	if err := c.send(ctx, engine.PairDeviceSign(ps.Attr("id"), v.Identity.KeyIndex, v.Reply)); err != nil {
		return 0, errors.Join(err, <-scanErr)
	}
	if _, err := c.expect(ctx, "515", func(n binxml.Node) bool { return n.Tag == "stream:error" && n.Attr("code") == "515" }); err != nil {
		return 0, errors.Join(err, <-scanErr)
	}
	c.tc.Close()
	if err := <-scanErr; err != nil {
		return 0, err
	}
	d.ID = succ.ID
	d.LID = succ.LID
	d.Account = v.Account
	// 4. Login, pre-keys, and stay.
	payload, err = engine.LoginPayload(d, payloadConfig)
	if err != nil {
		return 0, err
	}
	lc, err := dial(ctx, cfg, d, payload)
	if err != nil {
		return 0, fmt.Errorf("login: %w", err)
	}
	stopLogin := context.AfterFunc(ctx, func() { lc.tc.Close() })
	ok := false
	defer func() {
		if !stopLogin() || !ok {
			lc.tc.Close()
		}
	}()
	if _, err := lc.expect(ctx, "success", func(n binxml.Node) bool { return n.Tag == "success" }); err != nil {
		return 0, err
	}
	if cfg.PreKeys > 0 {
		id := lc.ids.Next()
		if err := lc.send(ctx, engine.PreKeyUpload(id, d.RegistrationID, d.IdentityKey.Public, randomPreKeys(cfg.PreKeys), d.SignedPreKey)); err != nil {
			return 0, err
		}
		r, err := lc.expect(ctx, "pre-key upload result", func(n binxml.Node) bool { return n.Tag == "iq" && n.Attr("id") == id })
		if err != nil {
			return 0, err
		}
		if r.Attr("type") != "result" {
			return 0, fmt.Errorf("pre-key upload refused: %s", r.Attr("type"))
		}
	}
	lat := time.Since(start)
	if keep && f.adopt(lc) {
		ok = true
	}
	return lat, nil
}

// adopt keeps an online companion and serves its socket until it ends.
func (f *Fleet) adopt(c *conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ctx.Err() != nil {
		return false
	}
	f.online = append(f.online, c)
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		defer c.closed.Store(true)
		defer c.tc.Close()
		for {
			n, err := c.read()
			if err != nil {
				if f.ctx.Err() == nil {
					f.dropped.Add(1)
				}
				return
			}
			switch {
			case engine.IsServerPing(n):
				_ = c.send(f.ctx, engine.Pong(n))
			case n.Tag == "notification":
				_ = c.send(f.ctx, engine.Ack(n))
			}
		}
	}()
	return true
}

// errRescan: the phone asked the companion for a re-rendered QR.
var errRescan = errors.New("simload: scan: rescan after companion_reg_refresh")

// scan posts the QR to the phone's scan endpoint.
func scan(ctx context.Context, httpc *http.Client, ctrl *url.URL, number, qr string) error {
	body, _ := json.Marshal(map[string]string{"qr": qr})
	u := ctrl.JoinPath("phones", number, "scan")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpc.Do(req)
	if err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode == http.StatusConflict && bytes.Contains(b, []byte("companion_reg_refresh")) {
		return errRescan
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("scan: http %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	return nil
}

// newDevice makes a companion's keys.
func newDevice() (*store.Device, error) {
	d := &store.Device{}
	var err error
	if d.NoiseKey, err = keys.NewKeyPair(rand.Reader); err != nil {
		return nil, err
	}
	if d.IdentityKey, err = keys.NewKeyPair(rand.Reader); err != nil {
		return nil, err
	}
	if d.SignedPreKey, err = keys.NewSignedPreKey(rand.Reader, d.IdentityKey.Private, 1); err != nil {
		return nil, err
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	d.RegistrationID = (uint32(b[0])<<8 | uint32(b[1])) & 0x3fff // 14 bits, as Baileys
	if _, err := rand.Read(d.AdvSecret[:]); err != nil {
		return nil, err
	}
	return d, nil
}

// randomPreKeys returns n pre-keys numbered from 1 whose public halves are
// random bytes (see the package doc).
func randomPreKeys(n int) []keys.PreKey {
	raw := make([]byte, n*keys.Size)
	_, _ = rand.Read(raw)
	out := make([]keys.PreKey, n)
	for i := range out {
		pub, _ := keys.PublicKeyFromBytes(raw[i*keys.Size : (i+1)*keys.Size])
		out[i] = keys.PreKey{ID: uint32(i + 1), KeyPair: keys.KeyPair{Public: pub}}
	}
	return out
}
