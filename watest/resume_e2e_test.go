package watest

// End-to-end tests of reconnecting like WhatsApp Web (issue 17) at the
// transport level, over real loopback sockets: a companion that keeps its
// session in a SQLite store and makes its decisions with the engine's pure
// functions (ChooseHandshake / ClassifyHandshake, ChooseVersion /
// OnClientOutdated / AfterVersionFetch), exactly the calls the walink
// client makes, and fetches the version with package waversion from this
// server's /sw.js.

import (
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/engine"
	"github.com/walinkdev/walink/noise"
	"github.com/walinkdev/walink/store"
	"github.com/walinkdev/walink/store/sqlite"
	"github.com/walinkdev/walink/transport"
	"github.com/walinkdev/walink/waversion"
)

// countingConn records the order of reads and writes on the client's
// socket: a read that follows a write is one round trip.
type countingConn struct {
	net.Conn
	mu        sync.Mutex
	lastWrite bool
	trips     int
	writes    int
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.lastWrite = true
	c.writes++
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *countingConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	if c.lastWrite {
		c.trips++
		c.lastWrite = false
	}
	c.mu.Unlock()
	return c.Conn.Read(p)
}

func (c *countingConn) counts() (trips, writes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.trips, c.writes
}

// storedClient is a linked companion whose session lives in a store.
type storedClient struct {
	t          *testing.T
	c          *companion
	s          *Server
	st         store.Store
	ikDisabled bool // the process-wide flag the client keeps
	builtIn    engine.Version
	now        func() time.Time
	fetcher    *waversion.Fetcher
}

func newStoredClient(t *testing.T, s *Server, st store.Store) *storedClient {
	t.Helper()
	ctx := testCtx(t)
	c := newCompanion(t)
	builtIn := engine.Version{2, 3000, DefaultWebRevision}
	c.version = builtIn
	linkQR(ctx, t, s, c)
	// What pairing stores: keys and identity, no chain, no fetched version.
	d := &store.Device{NoiseKey: c.noise, IdentityKey: c.identity, SignedPreKey: c.spk, RegistrationID: c.regID,
		AdvSecret: c.advSecret, ID: c.id, LID: c.lid, CreatedAt: time.Now()}
	if err := st.PutDevice(ctx, d); err != nil {
		t.Fatal(err)
	}
	return &storedClient{t: t, c: c, s: s, st: st, builtIn: builtIn, now: time.Now,
		fetcher: &waversion.Fetcher{URL: s.ControlURL() + "/sw.js", Timeout: 5 * time.Second}}
}

func (sc *storedClient) device() *store.Device {
	sc.t.Helper()
	d, err := sc.st.Device(testCtx(sc.t), sc.c.noise.Public)
	if err != nil {
		sc.t.Fatal(err)
	}
	return d
}

// attempt is one connection attempt's outcome.
type attempt struct {
	choice  engine.HandshakeChoice
	verdict engine.HandshakeVerdict
	w       *wconn
	first   binxml.Node // success or failure; zero when the handshake failed
	trips   int         // round trips until the first stanza
	writes  int
	err     error
}

// connect runs one attempt: choose IK or XX from the stored device, dial,
// handshake, classify, apply the verdict to the store, read the first
// stanza.
func (sc *storedClient) connect(v engine.Version) attempt {
	sc.t.Helper()
	ctx := testCtx(sc.t)
	d := sc.device()
	var a attempt
	a.choice = engine.ChooseHandshake(d, sc.now(), sc.ikDisabled)
	nc, err := transport.Dial(ctx, sc.s.URL(), nil)
	if err != nil {
		sc.t.Fatal(err)
	}
	cc := &countingConn{Conn: nc}
	sc.c.version = v
	tc, err := transport.Handshake(ctx, cc, transport.ClientConfig{
		NoiseKey: sc.c.noise, RootKey: sc.s.RootKey(), Payload: sc.c.loginPayload(), Resume: a.choice.Resume,
	})
	var mode noise.Mode
	var cert *noise.CertInfo
	if err == nil {
		mode, cert = tc.Mode(), tc.ServerCert()
	}
	a.err = err
	a.verdict = engine.ClassifyHandshake(d.ServerChain, mode, cert, err)
	if a.verdict.PutChain {
		d.ServerChain = a.verdict.Chain
		if perr := sc.st.PutDevice(ctx, d); perr != nil {
			sc.t.Fatal(perr)
		}
	}
	sc.ikDisabled = sc.ikDisabled || a.verdict.DisableIK
	if err != nil {
		nc.Close()
		return a
	}
	a.w = newReader(sc.t, tc)
	sc.t.Cleanup(a.w.close)
	a.first = a.w.expect("success or failure", func(n binxml.Node) bool { return n.Tag == "success" || n.Tag == "failure" })
	a.trips, a.writes = cc.counts()
	return a
}

// newReader is companion.connect's reader for a Conn made here.
func newReader(t testing.TB, tc *transport.Conn) *wconn {
	w := &wconn{t: t, tc: tc, dict: binxml.DictV3, nodes: make(chan binxml.Node, 64), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		defer close(w.nodes)
		for {
			f, err := tc.ReadFrame()
			if err != nil {
				w.err = err
				return
			}
			n, err := binxml.DictV3.Unmarshal(f)
			if err != nil {
				w.err = err
				return
			}
			w.nodes <- n
		}
	}()
	return w
}

func openSQLite(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlite.Open(testCtx(t), filepath.Join(t.TempDir(), "walink.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func countNotes(s *Server, note string) int {
	n := 0
	for _, e := range s.Events() {
		if strings.Contains(e.Note, note) {
			n++
		}
	}
	return n
}

// TestResumeEndToEnd: link; the first login is XX and stores the chain;
// the next resumes with IK (one round trip fewer, the node log shows it);
// after the server rotates its key the resume is answered with XXfallback
// and the new chain is stored; the next reconnect is IK again, to the new
// key; a server that refuses IK makes the client forget the chain, stop
// resuming in this process and connect with XX at once.
func TestResumeEndToEnd(t *testing.T) {
	s := startServer(t, func(sc *Scenario) { sc.QRRefresh = false }, Config{})
	st := openSQLite(t)
	cl := newStoredClient(t, s, st)
	login := func(wantChoice noise.Mode, wantResult engine.HandshakeResult) attempt {
		t.Helper()
		a := cl.connect(cl.builtIn)
		if a.err != nil || a.first.Tag != "success" {
			t.Fatalf("login: %v %s", a.err, xmlString(a.first))
		}
		if a.choice.Mode != wantChoice || a.verdict.Result != wantResult {
			t.Fatalf("chose %v (%s), got %v; want %v, %v", a.choice.Mode, a.choice.Why, a.verdict.Result, wantChoice, wantResult)
		}
		if r := a.w.reply(a.w.iq("w:p", "get")); r.Attr("type") != "result" {
			t.Fatalf("ping: %s", xmlString(r))
		}
		a.w.close()
		return a
	}

	// First login after pairing: XX, and the chain is stored.
	xx := login(noise.ModeXX, engine.ResultXX)
	d := cl.device()
	if d.ServerChain.IsZero() || !d.ServerChain.LeafKey.Equal(s.StaticKey()) || d.ServerChain.IntermediateSerial != 7 {
		t.Fatalf("stored chain after XX: %+v", d.ServerChain)
	}

	// Reconnect: IK, accepted, nothing to store, one round trip fewer.
	ik := login(noise.ModeIK, engine.ResultIK)
	awaitNote(t, s, "handshake done (IK resume, dictionary v3)")
	if ik.verdict.PutChain {
		t.Error("an accepted resume rewrote the chain")
	}
	if xx.trips != 2 || ik.trips != 1 || xx.writes != 2 || ik.writes != 1 {
		t.Fatalf("round trips to the first stanza: XX %d (%d writes), IK %d (%d writes); want 2 (2) and 1 (1)", xx.trips, xx.writes, ik.trips, ik.writes)
	}
	t.Logf("round trips until success: XX %d, IK %d", xx.trips, ik.trips)

	// The server rotates its key: the resume is answered with XXfallback,
	// and the new chain is persisted through the store.
	oldLeaf := d.ServerChain.LeafKey
	newKey, err := s.RotateKey()
	if err != nil {
		t.Fatal(err)
	}
	fb := login(noise.ModeIK, engine.ResultFallback)
	awaitNote(t, s, "handshake done (XXfallback after an IK resume, dictionary v3)")
	if !fb.verdict.PutChain || fb.trips != 2 {
		t.Fatalf("fallback verdict %+v, %d round trips", fb.verdict, fb.trips)
	}
	d = cl.device()
	if !d.ServerChain.LeafKey.Equal(newKey) || d.ServerChain.LeafKey.Equal(oldLeaf) {
		t.Fatal("the new chain was not persisted")
	}
	// Next reconnect: IK again, to the new key.
	before := countNotes(s, "IK resume,")
	login(noise.ModeIK, engine.ResultIK)
	if countNotes(s, "IK resume,") != before+1 {
		t.Fatal("no IK resume in the node log after the fallback")
	}

	// A server that refuses IK: crypto-fatal before the pivot. The chain
	// is cleared, IK disabled for the process, XX at once.
	sc := s.Scenario()
	sc.IK = IKRefuse
	if err := s.UpdateScenario(sc); err != nil {
		t.Fatal(err)
	}
	refused := cl.connect(cl.builtIn)
	if !errors.Is(refused.err, transport.ErrResumeFailed) || !errors.Is(refused.err, noise.ErrResumeFailed) {
		t.Fatalf("refused resume: %v", refused.err)
	}
	if refused.verdict.Result != engine.ResultResumeFailed || !refused.verdict.RetryNow || !cl.ikDisabled || !cl.device().ServerChain.IsZero() {
		t.Fatalf("after the refusal: %+v, ik disabled %v, chain zero %v", refused.verdict, cl.ikDisabled, cl.device().ServerChain.IsZero())
	}
	awaitNote(t, s, "unsupported handshake pattern")
	login(noise.ModeXX, engine.ResultXX)
	if cl.device().ServerChain.IsZero() {
		t.Fatal("the XX after the refusal stored no chain")
	}
	// The chain is stored again, but this process resumes no more, even
	// once the server would accept.
	sc.IK = IKAccept
	if err := s.UpdateScenario(sc); err != nil {
		t.Fatal(err)
	}
	login(noise.ModeXX, engine.ResultXX)
	// A new process (flag cleared) resumes with the stored chain.
	cl.ikDisabled = false
	login(noise.ModeIK, engine.ResultIK)
}

// TestResumeTimeoutKeepsChain: a server that never answers the resume (a
// handshake timeout) leaves the stored chain and IK alone.
func TestResumeTimeoutKeepsChain(t *testing.T) {
	s := startServer(t, func(sc *Scenario) { sc.QRRefresh = false }, Config{})
	st := openSQLite(t)
	cl := newStoredClient(t, s, st)
	if a := cl.connect(cl.builtIn); a.err != nil {
		t.Fatal(a.err)
	} else {
		a.w.close()
	}
	stored := cl.device().ServerChain
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() { // accepts the WebSocket, reads the hello, never answers
		defer wg.Done()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 4096)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	}()
	d := cl.device()
	choice := engine.ChooseHandshake(d, time.Now(), false)
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_, err = transport.Handshake(testCtx(t), nc, transport.ClientConfig{
		NoiseKey: cl.c.noise, RootKey: s.RootKey(), Payload: cl.c.loginPayload(), Resume: choice.Resume, HandshakeTimeout: 150 * time.Millisecond,
	})
	v := engine.ClassifyHandshake(d.ServerChain, 0, nil, err)
	if choice.Mode != noise.ModeIK || !errors.Is(err, transport.ErrHandshakeTimeout) || v.Result != engine.ResultFailed || v.PutChain || v.DisableIK {
		t.Fatalf("timeout: choice %v, err %v, verdict %+v", choice.Mode, err, v)
	}
	if !engine.SameChain(stored, cl.device().ServerChain) {
		t.Fatal("the timeout changed the stored chain")
	}
}

// recover is the client's reconnect with version recovery: connect; on
// failure 405 run waversion's Recover (OnClientOutdated, fetch,
// AfterVersionFetch), store, and reconnect once. It returns the connection attempts made and the
// ClientOutdated reasons given (at most one per call).
func (sc *storedClient) recover(pinned engine.Version) (attempts int, outdated []string, final attempt) {
	sc.t.Helper()
	ctx := testCtx(sc.t)
	for {
		d := sc.device()
		choice := engine.ChooseVersion(pinned, sc.builtIn, d, sc.now())
		attempts++
		a := sc.connect(choice.Version)
		final = a
		if a.err != nil {
			sc.t.Fatalf("connect: %v", a.err)
		}
		if a.first.Tag == "success" {
			return attempts, outdated, a
		}
		a.w.close()
		if f := engine.ParseFailure(a.first); f.Reason != 405 {
			sc.t.Fatalf("login failure %d", f.Reason)
		}
		fa := sc.fetcher.Recover(ctx, choice, d, sc.now)
		if fa.Store {
			d.WebVersion, d.WebVersionFetchedAt = fa.Version.String(), fa.FetchedAt
			if err := sc.st.PutDevice(ctx, d); err != nil {
				sc.t.Fatal(err)
			}
		}
		if !fa.Reconnect {
			return attempts, append(outdated, fa.GiveUp), a
		}
		if attempts > 5 {
			sc.t.Fatal("reconnect storm")
		}
	}
}

// TestVersionRecovery: the server raises its minimum version while two
// devices are connected. They stay connected; at their next login each
// gets 405, fetches the new revision from /sw.js, stores it and is
// connected again, in two attempts. Later the server raises it again
// while /sw.js fails: exactly one ClientOutdated per device, one attempt,
// no storm. A 405 within a minute of a fetch is final too.
func TestVersionRecovery(t *testing.T) {
	s := startServer(t, func(sc *Scenario) { sc.QRRefresh = false }, Config{})
	st := openSQLite(t)
	clock := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	var clockMu sync.Mutex
	now := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return clock }
	advance := func(d time.Duration) { clockMu.Lock(); clock = clock.Add(d); clockMu.Unlock() }
	var cls []*storedClient
	var live []*wconn
	for range 2 {
		cl := newStoredClient(t, s, st)
		cl.now = now
		a := cl.connect(cl.builtIn)
		if a.first.Tag != "success" {
			t.Fatalf("first login: %s", xmlString(a.first))
		}
		cls = append(cls, cl)
		live = append(live, a.w)
	}

	const newRev = DefaultWebRevision + 1000
	if err := s.SetWebRevision(newRev); err != nil {
		t.Fatal(err)
	}
	if err := s.SetMinClientVersion("2.3000.1045369834"); err != nil {
		t.Fatal(err)
	}
	// Connected devices are not cut off.
	for _, w := range live {
		if r := w.reply(w.iq("w:p", "get")); r.Attr("type") != "result" {
			t.Fatalf("ping after the raise: %s", xmlString(r))
		}
		w.close()
	}
	for i, cl := range cls {
		attempts, outdated, a := cl.recover(engine.Version{})
		if attempts != 2 || len(outdated) != 0 || a.first.Tag != "success" {
			t.Fatalf("device %d: %d attempts, outdated %q", i, attempts, outdated)
		}
		a.w.close()
		d := cl.device()
		if d.WebVersion != "2.3000.1045369834" || !d.WebVersionFetchedAt.Equal(now()) {
			t.Fatalf("device %d stored %q at %v", i, d.WebVersion, d.WebVersionFetchedAt)
		}
	}

	// Raised again at once: the version fetched seconds ago is refused, so
	// the guard ends it without a fetch.
	if err := s.SetWebRevision(newRev + 1); err != nil {
		t.Fatal(err)
	}
	if err := s.SetMinClientVersion("2.3000.1045369835"); err != nil {
		t.Fatal(err)
	}
	advance(20 * time.Second)
	attempts, outdated, _ := cls[0].recover(engine.Version{})
	if attempts != 1 || len(outdated) != 1 || !strings.Contains(outdated[0], "fetched from WhatsApp Web 20s ago") {
		t.Fatalf("405 within a minute of a fetch: %d attempts, %q", attempts, outdated)
	}

	// Ten minutes later, with /sw.js failing: one fetch, one ClientOutdated.
	advance(10 * time.Minute)
	if err := s.SetWebRevision(0); err != nil {
		t.Fatal(err)
	}
	handshakes := countNotes(s, "handshake done")
	attempts, outdated, _ = cls[1].recover(engine.Version{})
	if attempts != 1 || len(outdated) != 1 || !strings.Contains(outdated[0], "http status 404") {
		t.Fatalf("failed fetch: %d attempts, %q", attempts, outdated)
	}
	if n := countNotes(s, "handshake done") - handshakes; n != 1 {
		t.Fatalf("%d connections to the server for one failed recovery", n)
	}
	// A pinned version is never refetched.
	attempts, outdated, _ = cls[1].recover(engine.Version{2, 3000, 1})
	if attempts != 1 || len(outdated) != 1 || !strings.Contains(outdated[0], "Config.Version") {
		t.Fatalf("pinned: %d attempts, %q", attempts, outdated)
	}
}

// TestClientExpirationEndToEnd: the server announces a deadline to a
// connected device (Go method and control API); the device parses it,
// schedules the refetch before it and fetches the version /sw.js serves.
func TestClientExpirationEndToEnd(t *testing.T) {
	s := startServer(t, func(sc *Scenario) { sc.QRRefresh = false }, Config{})
	st := openSQLite(t)
	cl := newStoredClient(t, s, st)
	a := cl.connect(cl.builtIn)
	if a.first.Tag != "success" {
		t.Fatalf("login: %s", xmlString(a.first))
	}
	at := time.Now().Add(72 * time.Hour).Truncate(time.Second)
	if err := s.SendClientExpiration(testCtx(t), cl.c.id, at); err != nil {
		t.Fatal(err)
	}
	n := a.w.expect("client_expiration", hasChild("client_expiration"))
	got, ok, err := engine.ParseClientExpiration(n)
	if !ok || err != nil || !got.Equal(at) {
		t.Fatalf("parsed %v %v %v from %s", got, ok, err, xmlString(n))
	}
	now := time.Now()
	if when := engine.VersionRefetchAt(got, now); !when.Equal(at.Add(-time.Hour)) {
		t.Fatalf("refetch at %v, want an hour before %v", when, at)
	}
	v, err := cl.fetcher.Fetch(testCtx(t))
	if err != nil || v != (engine.Version{2, 3000, DefaultWebRevision}) || engine.AfterExpiryFetch(cl.builtIn, v, err) {
		t.Fatalf("fetch: %v %v: nothing newer to keep", v, err)
	}
	// WhatsApp Web moved on: the newer revision is kept for the next connect.
	if err := s.SetWebRevision(DefaultWebRevision + 7); err != nil {
		t.Fatal(err)
	}
	if v, err = cl.fetcher.Fetch(testCtx(t)); !engine.AfterExpiryFetch(cl.builtIn, v, err) || v[2] != DefaultWebRevision+7 {
		t.Fatalf("fetch after the site moved on: %v %v", v, err)
	}

	// The same through the control API.
	code, out := doJSON(t, "POST", s.ControlURL()+"/phones/"+cl.c.id.User+"/devices/"+strconv.Itoa(int(cl.c.id.Device))+"/client-expiration", map[string]any{"t": at.Unix() + 60})
	if code != 200 {
		t.Fatalf("control API: %d %v", code, out)
	}
	n = a.w.expect("client_expiration", hasChild("client_expiration"))
	if got, _, _ := engine.ParseClientExpiration(n); !got.Equal(at.Add(time.Minute)) {
		t.Fatalf("control API deadline %v", got)
	}
	evs := s.Events()
	mark := evs[len(evs)-1].Seq
	a.w.close()
	if _, err := s.AwaitNodeFrom(testCtx(t), mark, func(e Event) bool { return e.Note == "connection closed" }); err != nil {
		t.Fatal(err)
	}
	// Not connected: a clear error.
	if err := s.SendClientExpiration(testCtx(t), cl.c.id, at); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("not connected: %v", err)
	}
}
