package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/walinkdev/walink"

	"github.com/walinkdev/walink/serve"
	"github.com/walinkdev/walink/serve/lease"
	"github.com/walinkdev/walink/store"
	"github.com/walinkdev/walink/store/postgres"
	"github.com/walinkdev/walink/store/seal"
	"github.com/walinkdev/walink/watest"
)

// cmdServe runs `walink serve`: many accounts in one process, the HTTP API
// and the page. Everything but flags and wiring is in package serve.
func cmdServe(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "serve", "[--listen ADDR] [--store PATH | --postgres DSN [--replica-id ID] [--advertise-url URL]] [--api-key-file FILE] [--sim] [flags]")
	listen := fs.String("listen", "127.0.0.1:8080", "listen `address` of the API and the page")
	storePath := fs.String("store", "", "SQLite store `path` (default $WALINK_STORE or the user config dir; --sim: a temporary file)")
	pgDSN := fs.String("postgres", "", "PostgreSQL `DSN` instead of SQLite (default $WALINK_POSTGRES_DSN)")
	keyFile := fs.String("api-key-file", "", "`file` of API keys, one per line (or sha256:HEX); also $WALINK_API_KEY_FILE, or one key in $WALINK_API_KEY")
	tlsCert := fs.String("tls-cert", "", "TLS certificate `file`")
	tlsKey := fs.String("tls-key", "", "TLS key `file`")
	insecure := fs.Bool("insecure-listen", false, "allow a non-loopback --listen without TLS (behind a TLS-terminating proxy)")
	metricsListen := fs.String("metrics-listen", "", "serve /metrics unauthenticated on this `address` instead of on --listen")
	webhookURL := fs.String("webhook-url", "", "`URL` that receives the events of every session")
	webhookSecretFile := fs.String("webhook-secret-file", "", "`file` holding the HMAC secret of --webhook-url (or $WALINK_WEBHOOK_SECRET)")
	conc := fs.Int("start-concurrency", 8, "handshakes started at once when reconnecting sessions")
	shutdown := fs.Duration("shutdown-timeout", 10*time.Second, "time to close connections and flush webhooks on SIGTERM")
	sim := fs.Bool("sim", false, "run the local WhatsApp in-process with a virtual phone on the page (a demo; no real account is touched)")
	server := fs.String("server", "", "WhatsApp WebSocket `URL` (default: the real one)")
	serverRoot := fs.String("server-root", "", "`hex` root public key of --server")
	replicaID := fs.String("replica-id", "", "with --postgres: this replica's `id` among those sharing the database (default HOSTNAME:PORT of --listen)")
	advertise := fs.String("advertise-url", "", "with --postgres: `URL` where the other replicas reach this one's API (default http(s)://HOST:PORT of --listen, HOST the hostname when --listen is a wildcard)")
	leaseTTL := fs.Duration("lease-ttl", 15*time.Second, "with --postgres: how long a session's lease lives without renewal; a replica cut off from the database closes its connections before that")
	leaseRenew := fs.Duration("lease-renew", 0, "with --postgres: lease renewal `interval` (default lease-ttl/3; renew*2 + ttl/5 must stay below the TTL)")
	listenDSN := fs.String("postgres-listen", "", "with --postgres: `DSN` of the connection that LISTENs for the other replicas' events, when --postgres goes through a transaction-pooling proxy (LISTEN needs a session of its own; default --postgres)")
	writeLog := fs.Bool("lease-write-log", false, "with --postgres: record every fenced store write (session, replica, epoch) in serve_write_log (an audit; grows without bound)")
	versionURL := fs.String("version-url", "", "service-worker script `URL` the sessions fetch the current WhatsApp Web version from when WhatsApp refuses theirs (default https://web.whatsapp.com/sw.js; --sim: the local WhatsApp's /sw.js)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if (*tlsCert == "") != (*tlsKey == "") {
		return fail(exitUsage, "serve: --tls-cert and --tls-key go together")
	}
	if err := serve.CheckListen(*listen, *tlsCert != "", *insecure); err != nil {
		return fail(exitUsage, "%v", err)
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))

	// API keys.
	keys, shownKey, err := loadAPIKeys(e, *keyFile, *sim)
	if err != nil {
		return err
	}
	whSecret := e.getenv("WALINK_WEBHOOK_SECRET")
	if *webhookSecretFile != "" {
		b, err := os.ReadFile(*webhookSecretFile)
		if err != nil {
			return fail(exitUsage, "serve: %v", err)
		}
		whSecret = strings.TrimSpace(string(b))
	}
	if *webhookURL != "" && whSecret == "" {
		return fail(exitUsage, "serve: --webhook-url needs a secret (--webhook-secret-file or $WALINK_WEBHOOK_SECRET)")
	}

	root, err := parseRoot(*serverRoot)
	if err != nil {
		return err
	}
	ccfg := walink.Config{ServerURL: *server, ServerRoot: root, VersionURL: *versionURL}
	var simSrv *watest.Server
	if *sim {
		simSrv, err = watest.Start(ctx, watest.Config{Logger: log.With("component", "sim")})
		if err != nil {
			return fmt.Errorf("serve: starting the local WhatsApp: %w", err)
		}
		defer simSrv.Close()
		ccfg.ServerURL, ccfg.ServerRoot = simSrv.URL(), simSrv.RootKey()
		if ccfg.VersionURL == "" {
			ccfg.VersionURL = simSrv.VersionURL()
		}
	}

	// Store and the service's tables, in the same database.
	var st store.Store
	var db *serve.DB
	if *pgDSN == "" {
		*pgDSN = e.getenv("WALINK_POSTGRES_DSN")
	}
	if *pgDSN != "" {
		c, err := seal.FromEnv(os.Getenv, rand.Reader)
		if err != nil {
			return fmt.Errorf("store encryption key: %w", err)
		}
		var opts []postgres.Option
		if c != nil {
			opts = append(opts, postgres.WithCipher(c))
		}
		if st, err = postgres.Open(ctx, *pgDSN, opts...); err != nil {
			return err
		}
		if db, err = serve.OpenPostgres(ctx, *pgDSN); err != nil {
			st.Close()
			return err
		}
	} else {
		path := *storePath
		if path == "" && *sim {
			dir, err := os.MkdirTemp("", "walink-sim-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			path = filepath.Join(dir, "walink.db")
		} else if path == "" {
			path = defaultStorePath(e)
		}
		if st, err = openStore(ctx, path); err != nil {
			return err
		}
		if db, err = serve.OpenSQLite(ctx, path); err != nil {
			st.Close()
			return err
		}
	}
	defer st.Close()
	defer db.Close()

	cfg := serve.Config{Store: st, DB: db, Client: ccfg, APIKeys: keys, StartConcurrency: *conc,
		MetricsOnOwnListener: *metricsListen != "", Logger: log, Passkey: serve.ClientPasskey{}}
	if *webhookURL != "" {
		cfg.Webhook = serve.WebhookConfig{URL: *webhookURL, Secret: whSecret}
	}
	if simSrv != nil {
		cfg.Sim = serve.WatestSim{Server: simSrv}
	}
	// Listen first: the replica's default id and advertise URL name the
	// port actually bound.
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer ln.Close()
	var mgr *lease.Manager
	if *pgDSN != "" {
		id, adv, err := replicaDefaults(*replicaID, *advertise, ln.Addr(), *tlsCert != "")
		if err != nil {
			return err
		}
		mgr, err = lease.New(ctx, lease.Config{DSN: *pgDSN, ReplicaID: id, AdvertiseURL: adv, TTL: *leaseTTL, Renew: *leaseRenew,
			WriteLog: *writeLog, SessionTable: "serve_sessions", Logger: log.With("component", "lease")})
		if err != nil {
			if errors.Is(err, lease.ErrConfig) {
				return fail(exitUsage, "serve: %v", err)
			}
			return err
		}
		defer mgr.Close()
		cfg.Owner = leaseOwner{mgr}
		ldsn := *listenDSN
		if ldsn == "" {
			ldsn = *pgDSN
		}
		cfg.Cluster = &serve.Cluster{ReplicaID: id, AdvertiseURL: adv, DSN: ldsn, Locator: mgr}
		log.Info("serve: replica", "id", id, "advertise", adv, "lease_ttl", mgr.Config().TTL, "lease_renew", mgr.Config().Renew)
	}
	svc, err := serve.New(ctx, cfg)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: svc.Handler(), ReadHeaderTimeout: 10 * time.Second}
	var ms *http.Server
	if *metricsListen != "" {
		mln, err := net.Listen("tcp", *metricsListen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("serve: metrics: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", svc.MetricsHandler())
		ms = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go ms.Serve(mln)
	}
	svc.Start()
	scheme := "http"
	errc := make(chan error, 1)
	go func() {
		if *tlsCert != "" {
			errc <- hs.ServeTLS(ln, *tlsCert, *tlsKey)
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	if *tlsCert != "" {
		scheme = "https"
	}
	fmt.Fprintf(e.stdout, "walink serve: open %s://%s/\n", scheme, ln.Addr())
	if shownKey != "" {
		// Printed once to the terminal that started the demo, never logged.
		fmt.Fprintf(e.stdout, "API key (sign in with it; generated for this run): %s\n", shownKey)
	}
	if simSrv != nil {
		fmt.Fprintf(e.stdout, "Simulator: the local WhatsApp runs in-process; link with the page's virtual phone.\n")
	}

	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			log.Error("serve: listener failed", "err", err)
		}
	}
	// SIGTERM: end the SSE streams, stop accepting, close every connection
	// (no logout), flush the webhooks, within --shutdown-timeout.
	sctx, cancel := context.WithTimeout(context.Background(), *shutdown)
	defer cancel()
	svc.CloseStreams()
	hs.Shutdown(sctx)
	if ms != nil {
		ms.Shutdown(sctx)
	}
	// With replicas, Shutdown first drains: each session's lease is
	// given up as its connection closes, and another replica takes it.
	if err := svc.Shutdown(sctx); err != nil {
		log.Warn("serve: shutdown", "err", err)
	}
	return nil
}

// replicaDefaults fills in the replica id (HOSTNAME:PORT) and advertise
// URL (scheme://HOST:PORT of the bound address, the hostname when it is a
// wildcard) left empty.
func replicaDefaults(id, adv string, addr net.Addr, tls bool) (string, string, error) {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "", "", err
	}
	hostname, err := os.Hostname()
	if err != nil || hostname == "" {
		hostname = "localhost"
	}
	if id == "" {
		id = net.JoinHostPort(hostname, port)
	}
	if adv == "" {
		if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
			host = hostname
		}
		scheme := "http"
		if tls {
			scheme = "https"
		}
		adv = scheme + "://" + net.JoinHostPort(host, port)
	}
	return id, adv, nil
}

// leaseOwner is the lease manager as the service's Owner, with its
// counters as Prometheus metrics (the service registers an Owner that is
// a prometheus.Collector).
type leaseOwner struct{ *lease.Manager }

var (
	leasesHeldDesc     = prometheus.NewDesc("walink_leases_held", "Session leases this replica holds.", nil, nil)
	leasesWaitingDesc  = prometheus.NewDesc("walink_leases_waiting", "Sessions this replica waits to acquire.", nil, nil)
	leasesAcquiredDesc = prometheus.NewDesc("walink_leases_acquired_total", "Session leases acquired.", nil, nil)
	leasesLostDesc     = prometheus.NewDesc("walink_leases_lost_total", "Session leases lost (expired, taken over, given up for balance or drain).", nil, nil)
	leasesReleasedDesc = prometheus.NewDesc("walink_leases_released_total", "Session leases released.", nil, nil)
	fencedDesc         = prometheus.NewDesc("walink_fenced_writes_refused_total", "Store writes refused because their lease was no longer held.", nil, nil)
	renewFailDesc      = prometheus.NewDesc("walink_lease_renew_failures_total", "Lease heartbeats that failed.", nil, nil)
	replicasDesc       = prometheus.NewDesc("walink_replicas_live", "Live replicas (not draining) at the last balance check.", nil, nil)
)

func (o leaseOwner) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{leasesHeldDesc, leasesWaitingDesc, leasesAcquiredDesc, leasesLostDesc, leasesReleasedDesc, fencedDesc, renewFailDesc, replicasDesc} {
		ch <- d
	}
}

func (o leaseOwner) Collect(ch chan<- prometheus.Metric) {
	st := o.Stats()
	g := func(d *prometheus.Desc, t prometheus.ValueType, v float64) {
		ch <- prometheus.MustNewConstMetric(d, t, v)
	}
	g(leasesHeldDesc, prometheus.GaugeValue, float64(st.Held))
	g(leasesWaitingDesc, prometheus.GaugeValue, float64(st.Waiting))
	g(leasesAcquiredDesc, prometheus.CounterValue, float64(st.Acquired))
	g(leasesLostDesc, prometheus.CounterValue, float64(st.Lost))
	g(leasesReleasedDesc, prometheus.CounterValue, float64(st.Released))
	g(fencedDesc, prometheus.CounterValue, float64(st.Fenced))
	g(renewFailDesc, prometheus.CounterValue, float64(st.RenewFailures))
	g(replicasDesc, prometheus.GaugeValue, float64(st.Replicas))
}

// loadAPIKeys reads the keys; with --sim and no key configured it makes
// one for the run and returns it to be shown.
func loadAPIKeys(e env, file string, sim bool) ([]serve.KeyHash, string, error) {
	if file == "" {
		file = e.getenv("WALINK_API_KEY_FILE")
	}
	var keys []serve.KeyHash
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return nil, "", fail(exitUsage, "serve: %v", err)
		}
		defer f.Close()
		if keys, err = serve.ParseAPIKeys(f); err != nil {
			return nil, "", fail(exitUsage, "%v", err)
		}
	}
	if k := e.getenv("WALINK_API_KEY"); k != "" {
		if len(k) < 16 {
			return nil, "", fail(exitUsage, "serve: WALINK_API_KEY needs at least 16 characters")
		}
		keys = append(keys, serve.HashAPIKey(k))
	}
	if len(keys) > 0 {
		return keys, "", nil
	}
	if !sim {
		return nil, "", fail(exitUsage, "serve: no API key: use --api-key-file FILE or set WALINK_API_KEY")
	}
	var b [16]byte
	rand.Read(b[:])
	k := hex.EncodeToString(b[:])
	return []serve.KeyHash{serve.HashAPIKey(k)}, k, nil
}
