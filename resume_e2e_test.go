package walink_test

// End-to-end tests of reconnecting like WhatsApp Web (issue 17) through
// walink.Client against the local WhatsApp over real loopback sockets:
// Noise IK resume, XXfallback after a server key rotation, a refused
// resume, recovery from failure 405 by fetching the version from watest's
// /sw.js, and client_expiration.

import (
	"context"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walinkdev/walink"
	"github.com/walinkdev/walink/store"
	"github.com/walinkdev/walink/store/memstore"
	"github.com/walinkdev/walink/watest"
)

// wire counts a client's connections and, per connection, the round
// trips made before the client's reader saw its first stanza: the bursts
// of writes, each started by the first write after data arrived (or the
// connection's first write). During a handshake each burst waits for its
// answer, so this does not depend on when a reader calls Read.
type wire struct {
	dials atomic.Int32
	mu    sync.Mutex
	cur   *tripConn
	first []int // round trips to the first stanza, per connection
}

type tripConn struct {
	net.Conn
	mu      sync.Mutex
	gotData bool // data arrived since the last write
	writes  int
	trips   int
	seen    bool // the first stanza was read
}

func (c *tripConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.writes == 0 || c.gotData {
		c.trips++
		c.gotData = false
	}
	c.writes++
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *tripConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.mu.Lock()
		c.gotData = true
		c.mu.Unlock()
	}
	return n, err
}

// dialer dials srv over TCP and counts.
func (w *wire) dialer(srv *watest.Server) func(ctx context.Context) (net.Conn, error) {
	u, err := url.Parse(srv.URL())
	if err != nil {
		panic(err)
	}
	return func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		nc, err := d.DialContext(ctx, "tcp", u.Host)
		if err != nil {
			return nil, err
		}
		w.dials.Add(1)
		tc := &tripConn{Conn: nc}
		w.mu.Lock()
		w.cur = tc
		w.mu.Unlock()
		return tc, nil
	}
}

// stanzaSeen is called when the client logs a received stanza (its
// reader logs before the session acts on it, so no post-handshake write
// has happened yet for the first one).
func (w *wire) stanzaSeen() {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.cur
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.seen {
		c.seen = true
		w.first = append(w.first, c.trips)
	}
}

func (w *wire) lastTrips(t *testing.T) int {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.first) == 0 {
		t.Fatal("no connection read a stanza")
	}
	return w.first[len(w.first)-1]
}

// logHook is a slog handler that calls on for every record (and forwards
// to next when set).
type logHook struct {
	on   func(slog.Record)
	next slog.Handler
}

func (h logHook) Enabled(context.Context, slog.Level) bool { return true }
func (h logHook) Handle(ctx context.Context, r slog.Record) error {
	h.on(r)
	if h.next != nil && h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}
func (h logHook) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h logHook) WithGroup(string) slog.Handler      { return h }

// resumeClient is a client on srv whose wire and log are watched.
func resumeClient(t *testing.T, srv *watest.Server, st store.Store, w *wire, tweak func(*walink.Config), onLog func(slog.Record)) (*walink.Client, *recorder) {
	t.Helper()
	cfg := clientConfig(t, srv)
	cfg.Dial = w.dialer(srv)
	cfg.VersionURL = srv.VersionURL()
	cfg.VersionFetchTimeout = 5 * time.Second
	var next slog.Handler
	if l := testLogger(t); l != nil {
		next = l.Handler()
	}
	cfg.Logger = slog.New(logHook{next: next, on: func(r slog.Record) {
		if r.Message == "recv" {
			w.stanzaSeen()
		}
		if onLog != nil {
			onLog(r)
		}
	}})
	if tweak != nil {
		tweak(&cfg)
	}
	return newClient(t, st, cfg)
}

// reconnect disconnects cli and connects it again, waiting for Connected.
func reconnect(t *testing.T, ctx context.Context, cli *walink.Client, rec *recorder, from *int) {
	t.Helper()
	cli.Disconnect()
	if err := cli.Connect(ctx); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	waitFor[walink.Connected](t, rec, from, 10*time.Second)
}

func storedDevice(t *testing.T, ctx context.Context, st store.Store, cli *walink.Client) *store.Device {
	t.Helper()
	d, err := st.DeviceByJID(ctx, cli.ID())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func countNotes(srv *watest.Server, sub string) int {
	n := 0
	for _, e := range srv.Events() {
		if e.Dir == watest.DirInfo && strings.Contains(e.Note, sub) {
			n++
		}
	}
	return n
}

func TestE2EResumeIK(t *testing.T) {
	walink.ResetResumeDisabled()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv := startServer(t, nil)
	st := memstore.New()
	w := &wire{}
	cli, rec := resumeClient(t, srv, st, w, nil, nil)
	from := 0
	linkByQR(t, ctx, srv, cli, rec, &from)
	// Pairing and the login after its 515 are full handshakes; the login
	// stores the verified chain.
	if got := cli.LastHandshake(); got != "xx" {
		t.Fatalf("handshake after pairing = %q, want xx", got)
	}
	d := storedDevice(t, ctx, st, cli)
	if d.ServerChain.IsZero() || !d.ServerChain.LeafKey.Equal(srv.StaticKey()) {
		t.Fatal("the login after pairing did not store the server's chain")
	}
	if ik, why := walink.ResumeStatus(d, time.Now(), false); !ik {
		t.Fatalf("ResumeStatus = false (%s)", why)
	}
	xxTrips := w.lastTrips(t)

	ikBefore := countNotes(srv, "IK resume")
	reconnect(t, ctx, cli, rec, &from)
	if got := cli.LastHandshake(); got != "ik" {
		t.Fatalf("reconnect handshake = %q, want ik", got)
	}
	if countNotes(srv, "IK resume") != ikBefore+1 {
		t.Fatal("watest's node log shows no IK resume")
	}
	ikTrips := w.lastTrips(t)
	t.Logf("round trips to the first stanza: XX %d, IK %d", xxTrips, ikTrips)
	if ikTrips != xxTrips-1 {
		t.Fatalf("round trips to the first stanza: IK %d, XX %d; want one fewer", ikTrips, xxTrips)
	}

	// Config.DisableResume: XX always, the chain is kept.
	cli.Close()
	cli2, rec2 := resumeClient(t, srv, st, w, func(c *walink.Config) { c.DisableResume = true }, nil)
	from2 := 0
	if err := cli2.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor[walink.Connected](t, rec2, &from2, 10*time.Second)
	if got := cli2.LastHandshake(); got != "xx" {
		t.Fatalf("DisableResume: handshake = %q, want xx", got)
	}
	if w.lastTrips(t) != xxTrips {
		t.Fatalf("DisableResume: %d round trips, want %d", w.lastTrips(t), xxTrips)
	}
	if countNotes(srv, "IK resume") != ikBefore+1 {
		t.Fatal("DisableResume: the server saw an IK resume")
	}
	if walink.ResumeDisabledInProcess() {
		t.Fatal("IK disabled for the process without a failed resume")
	}
}

func TestE2EResumeFallbackAfterRotation(t *testing.T) {
	walink.ResetResumeDisabled()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv := startServer(t, nil)
	st := memstore.New()
	w := &wire{}
	cli, rec := resumeClient(t, srv, st, w, nil, nil)
	from := 0
	linkByQR(t, ctx, srv, cli, rec, &from)
	old := storedDevice(t, ctx, st, cli).ServerChain
	newKey, err := srv.RotateKey()
	if err != nil {
		t.Fatal(err)
	}
	reconnect(t, ctx, cli, rec, &from)
	if got := cli.LastHandshake(); got != "xxfallback" {
		t.Fatalf("handshake after rotation = %q, want xxfallback", got)
	}
	if countNotes(srv, "XXfallback after an IK resume") != 1 {
		t.Fatal("watest's node log shows no XXfallback")
	}
	d := storedDevice(t, ctx, st, cli)
	if !d.ServerChain.LeafKey.Equal(newKey) || d.ServerChain.LeafKey.Equal(old.LeafKey) {
		t.Fatal("the new chain was not stored after XXfallback")
	}
	reconnect(t, ctx, cli, rec, &from)
	if got := cli.LastHandshake(); got != "ik" {
		t.Fatalf("handshake after fallback = %q, want ik to the new key", got)
	}
}

func TestE2EResumeRefused(t *testing.T) {
	walink.ResetResumeDisabled()
	defer walink.ResetResumeDisabled()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv := startServer(t, nil)
	st := memstore.New()
	w := &wire{}
	cli, rec := resumeClient(t, srv, st, w, nil, nil)
	from := 0
	linkByQR(t, ctx, srv, cli, rec, &from)
	sc := srv.Scenario()
	sc.IK = watest.IKRefuse
	if err := srv.UpdateScenario(sc); err != nil {
		t.Fatal(err)
	}
	dials := w.dials.Load()
	idx := len(rec.all())
	reconnect(t, ctx, cli, rec, &from)
	// The refused resume is retried at once with XX, without a backoff or
	// an event, and IK is off for the process.
	if got := cli.LastHandshake(); got != "xx" {
		t.Fatalf("handshake after a refused resume = %q, want xx", got)
	}
	if n := w.dials.Load() - dials; n != 2 {
		t.Fatalf("%d dials for a refused resume, want 2 (IK, then XX)", n)
	}
	if !walink.ResumeDisabledInProcess() {
		t.Fatal("a refused resume did not disable IK for the process")
	}
	disc := 0
	for _, e := range rec.all()[idx:] {
		if _, ok := e.(walink.Disconnected); ok {
			disc++
		}
	}
	if disc != 1 { // Disconnect's own
		t.Fatalf("%d Disconnected events around a refused resume, want 1", disc)
	}
	// Resume disabled: the next connect is XX although the server accepts
	// IK again.
	sc.IK = watest.IKAccept
	if err := srv.UpdateScenario(sc); err != nil {
		t.Fatal(err)
	}
	reconnect(t, ctx, cli, rec, &from)
	if got := cli.LastHandshake(); got != "xx" {
		t.Fatalf("handshake with IK disabled = %q, want xx", got)
	}
	if ik, _ := walink.ResumeStatus(storedDevice(t, ctx, st, cli), time.Now(), false); ik {
		t.Fatal("ResumeStatus says IK while it is disabled for the process")
	}
}

// linkedClients links n clients (their own stores) to one phone.
func linkedClients(t *testing.T, ctx context.Context, srv *watest.Server, n int) ([]*walink.Client, []*recorder, []*wire, []int, []store.Store) {
	var (
		clis  []*walink.Client
		recs  []*recorder
		wires []*wire
		froms []int
		sts   []store.Store
	)
	for range n {
		st := memstore.New()
		w := &wire{}
		cli, rec := resumeClient(t, srv, st, w, nil, nil)
		from := 0
		linkByQR(t, ctx, srv, cli, rec, &from)
		clis, recs, wires, froms, sts = append(clis, cli), append(recs, rec), append(wires, w), append(froms, from), append(sts, st)
	}
	return clis, recs, wires, froms, sts
}

func TestE2EClientOutdatedRecovers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv := startServer(t, nil)
	clis, recs, wires, froms, sts := linkedClients(t, ctx, srv, 2)
	const next = watest.DefaultWebRevision + 7
	if err := srv.SetWebRevision(next); err != nil {
		t.Fatal(err)
	}
	want := "2.3000.1045368841"
	if err := srv.SetMinClientVersion(want); err != nil {
		t.Fatal(err)
	}
	for i, cli := range clis {
		dials := wires[i].dials.Load()
		if err := srv.Kick(ctx, cli.ID(), "503"); err != nil {
			t.Fatal(err)
		}
		waitFor[walink.Disconnected](t, recs[i], &froms[i], 10*time.Second)
		waitFor[walink.Connected](t, recs[i], &froms[i], 10*time.Second)
		// The reconnect got 405, fetched, and connected once more.
		if n := wires[i].dials.Load() - dials; n != 2 {
			t.Fatalf("client %d: %d dials to recover, want 2", i, n)
		}
		for _, e := range recs[i].all() {
			if _, ok := e.(walink.ClientOutdated); ok {
				t.Fatalf("client %d: ClientOutdated although it recovered", i)
			}
		}
		if v, src := cli.VersionInUse(); v != want || src != "fetched" {
			t.Fatalf("client %d: version in use %s (%s), want %s fetched", i, v, src, want)
		}
		d := storedDevice(t, ctx, sts[i], cli)
		if d.WebVersion != want || d.WebVersionFetchedAt.IsZero() {
			t.Fatalf("client %d: stored version %q at %v", i, d.WebVersion, d.WebVersionFetchedAt)
		}
	}
	// A new process on the same store starts with the fetched version.
	clis[0].Close()
	cli, rec := resumeClient(t, srv, sts[0], &wire{}, nil, nil)
	from := 0
	if err := cli.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor[walink.Connected](t, rec, &from, 10*time.Second)
	if v, _ := cli.VersionInUse(); v != want {
		t.Fatalf("new process uses %s, want the stored %s", v, want)
	}
}

func TestE2EClientOutdatedFetchFails(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv := startServer(t, nil)
	clis, recs, wires, froms, _ := linkedClients(t, ctx, srv, 1)
	cli, rec, w := clis[0], recs[0], wires[0]
	if err := srv.SetWebRevision(0); err != nil { // /sw.js answers 404
		t.Fatal(err)
	}
	if err := srv.SetMinClientVersion("2.3000.1045368841"); err != nil {
		t.Fatal(err)
	}
	dials := w.dials.Load()
	if err := srv.Kick(ctx, cli.ID(), "503"); err != nil {
		t.Fatal(err)
	}
	co := waitFor[walink.ClientOutdated](t, rec, &froms[0], 10*time.Second)
	if !strings.Contains(co.Message, "fetching the current WhatsApp Web version failed") || !strings.Contains(co.Message, "404") {
		t.Fatalf("ClientOutdated.Message = %q", co.Message)
	}
	// The runner has stopped: Disconnect returns at once, and no attempt
	// followed the one that got 405.
	cli.Disconnect()
	if n := w.dials.Load() - dials; n != 1 {
		t.Fatalf("%d connection attempts after the kick, want 1", n)
	}
	n := 0
	for _, e := range rec.all() {
		if _, ok := e.(walink.ClientOutdated); ok {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d ClientOutdated events, want 1", n)
	}
	if cli.IsConnected() {
		t.Fatal("connected after ClientOutdated")
	}
}

func TestE2EClientOutdatedPinned(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv := startServer(t, nil)
	if err := srv.SetMinClientVersion("2.3000.1045368841"); err != nil {
		t.Fatal(err)
	}
	w := &wire{}
	cli, rec := resumeClient(t, srv, memstore.New(), w, func(c *walink.Config) { c.Version = walink.DefaultVersion }, nil)
	from := 0
	if err := cli.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	co := waitFor[walink.ClientOutdated](t, rec, &from, 10*time.Second)
	if !strings.Contains(co.Message, "pins") {
		t.Fatalf("ClientOutdated.Message = %q", co.Message)
	}
	cli.Disconnect()
	if n := w.dials.Load(); n != 1 {
		t.Fatalf("%d dials with a pinned, refused version; want 1", n)
	}
}

func TestE2EClientExpiration(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv := startServer(t, nil)
	st := memstore.New()
	fetched := make(chan struct{}, 1)
	cli, rec := resumeClient(t, srv, st, &wire{}, nil, func(r slog.Record) {
		if strings.HasPrefix(r.Message, "fetched the current WhatsApp Web version ahead") {
			select {
			case fetched <- struct{}{}:
			default:
			}
		}
	})
	from := 0
	linkByQR(t, ctx, srv, cli, rec, &from)
	const next = watest.DefaultWebRevision + 3
	if err := srv.SetWebRevision(next); err != nil {
		t.Fatal(err)
	}
	// A deadline that has passed: the refetch is due at once.
	at := time.Now().Add(-time.Minute).Truncate(time.Second)
	if err := srv.SendClientExpiration(ctx, cli.ID(), at); err != nil {
		t.Fatal(err)
	}
	ce := waitFor[walink.ClientExpiration](t, rec, &from, 10*time.Second)
	if !ce.At.Equal(at) {
		t.Fatalf("ClientExpiration.At = %v, want %v", ce.At, at)
	}
	select {
	case <-fetched:
	case <-ctx.Done():
		t.Fatal("no version fetch after client_expiration")
	}
	if v, _ := cli.VersionInUse(); v != walink.DefaultVersion {
		t.Fatalf("the running connection's version changed to %s", v)
	}
	// The next connect uses (and stores) the version fetched ahead.
	reconnect(t, ctx, cli, rec, &from)
	want := "2.3000.1045368837"
	if v, src := cli.VersionInUse(); v != want || src != "fetched" {
		t.Fatalf("version after reconnect %s (%s), want %s fetched", v, src, want)
	}
	if d := storedDevice(t, ctx, st, cli); d.WebVersion != want {
		t.Fatalf("stored version %q, want %s", d.WebVersion, want)
	}
}

// A stored version older than a day is used for the connect and fetched
// anew in the background (engine.VersionCacheTTL): the same version gets a
// new fetch time, a newer one is used from the next connect on.
func TestE2EStaleVersionRefetch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv := startServer(t, nil)
	clis, _, _, _, sts := linkedClients(t, ctx, srv, 1)
	st := sts[0]
	id := clis[0].ID()
	clis[0].Close()
	age := func(version string) {
		t.Helper()
		d, err := st.DeviceByJID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		d.WebVersion, d.WebVersionFetchedAt = version, time.Now().Add(-25*time.Hour)
		if err := st.PutDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	refreshed := make(chan struct{}, 4)
	start := func() (*walink.Client, *recorder, *int) {
		t.Helper()
		cli, rec := resumeClient(t, srv, st, &wire{}, nil, func(r slog.Record) {
			if strings.HasPrefix(r.Message, "refreshed the stored WhatsApp Web version") {
				refreshed <- struct{}{}
			}
		})
		from := 0
		if err := cli.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		waitFor[walink.Connected](t, rec, &from, 10*time.Second)
		return cli, rec, &from
	}
	waitRefresh := func() {
		t.Helper()
		select {
		case <-refreshed:
		case <-ctx.Done():
			t.Fatal("no background fetch of a stale version")
		}
	}

	// The same version as WhatsApp Web serves: only its fetch time moves.
	age(walink.DefaultVersion)
	cli, rec, from := start()
	if v, src := cli.VersionInUse(); v != walink.DefaultVersion || src != "fetched" {
		t.Fatalf("version in use %s (%s)", v, src)
	}
	waitRefresh()
	reconnect(t, ctx, cli, rec, from)
	if d := storedDevice(t, ctx, st, cli); d.WebVersion != walink.DefaultVersion || time.Since(d.WebVersionFetchedAt) > time.Minute {
		t.Fatalf("stored %q fetched at %v, want %s fetched now", d.WebVersion, d.WebVersionFetchedAt, walink.DefaultVersion)
	}
	// Fresh now: the reconnect fetched nothing more.
	select {
	case <-refreshed:
		t.Fatal("a fresh version was fetched again")
	case <-time.After(300 * time.Millisecond):
	}
	cli.Close()

	// WhatsApp Web moved on: the connect still uses the stored version,
	// the next one the fetched.
	const next = watest.DefaultWebRevision + 5
	if err := srv.SetWebRevision(next); err != nil {
		t.Fatal(err)
	}
	age(walink.DefaultVersion)
	cli, rec, from = start()
	if v, _ := cli.VersionInUse(); v != walink.DefaultVersion {
		t.Fatalf("version in use %s, want the stored %s until the next connect", v, walink.DefaultVersion)
	}
	waitRefresh()
	reconnect(t, ctx, cli, rec, from)
	want := "2.3000.1045368839"
	if v, src := cli.VersionInUse(); v != want || src != "fetched" {
		t.Fatalf("version after reconnect %s (%s), want %s fetched", v, src, want)
	}
	if d := storedDevice(t, ctx, st, cli); d.WebVersion != want {
		t.Fatalf("stored version %q, want %s", d.WebVersion, want)
	}
}
