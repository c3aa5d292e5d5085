package serve

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walinkdev/walink/jid"
	wakeys "github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/store"
	"github.com/walinkdev/walink/watest"
)

// TestIdleScale is the service's scale measurement (bench/RESULTS.md,
// "walink serve: idle sessions"): N linked sessions connected and idle in
// one service, the local WhatsApp in a child process so the RSS measured
// is the service's alone. Devices are provisioned at the local WhatsApp
// (watest.Phone.Provision: linked without a pairing conversation), so the
// run measures logins and idle state, not linking. It reports heap and
// RSS per session (after − before the sessions, both with the service
// running, including the service's own state), then the latency of
// GET /v1/sessions/{id} (p50/p99, 4 readers) with 50 SSE subscribers on
// /v1/events, beside GET /healthz on the same server as the reference.
// Run with WALINK_SERVE_SCALE_N=N (skipped otherwise: a measurement).
func TestIdleScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("WALINK_SERVE_SCALE_N"))
	if n <= 0 {
		t.Skip("set WALINK_SERVE_SCALE_N")
	}
	child := startWatestChild(t)
	e := newEnv(t, envOpts{srv: nil, serverURL: child.url, mutate: func(c *Config) {
		c.StartConcurrency = 16
		c.Client.ServerRoot = child.root
	}, external: true})
	debug.FreeOSMemory()
	heap0, rss0 := memNow()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = e.must(201, "POST", "/v1/sessions", map[string]any{"start": false})["id"].(string)
	}
	// Provision a linked device per session, store it, and point the
	// session's record at it (as a finished link would have).
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	t0 := time.Now()
	for i, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			d := child.provision(t, fmt.Sprintf("1557%07d", i))
			if err := e.st.PutDevice(context.Background(), d); err != nil {
				t.Error(err)
				return
			}
			ss := e.svc.get(id)
			e.svc.apply(ss, 0, func(r *record) []StoredEvent {
				r.Device, r.WantRunning = d.ID.String(), true
				return nil
			})
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	e.restart()
	deadline := time.Now().Add(time.Duration(n)*20*time.Millisecond + time.Minute)
	for {
		c := 0
		for _, s := range e.must(200, "GET", "/v1/sessions", nil)["sessions"].([]any) {
			if s.(map[string]any)["status"] == "connected" {
				c++
			}
		}
		if c == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d connected", c, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
	up := time.Since(t0)
	time.Sleep(5 * time.Second) // idle: keepalives, no bootstrap left
	debug.FreeOSMemory()
	heap1, rss1 := memNow()
	t.Logf("SCALE n=%d connected in %v; heap %.1f KiB/session, RSS %.1f KiB/session, goroutines %.2f/session (total %d); watest child RSS %d MiB",
		n, up.Round(time.Second), float64(heap1-heap0)/1024/float64(n), float64(rss1-rss0)/1024/float64(n),
		float64(runtime.NumGoroutine())/float64(n), runtime.NumGoroutine(), child.rss()/(1<<20))

	for range 50 {
		e.stream("/v1/events", "")
	}
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	for _, name := range []string{"healthz", "session"} {
		lat := make([]time.Duration, 0, 8000)
		var mu sync.Mutex
		var rw sync.WaitGroup
		for w := range 4 {
			rw.Add(1)
			go func() {
				defer rw.Done()
				for i := w; i < 8000; i += 4 {
					u := e.http.URL + "/healthz"
					if name == "session" {
						u = e.http.URL + "/v1/sessions/" + ids[(i*7919)%n]
					}
					req, _ := http.NewRequest("GET", u, nil)
					req.Header.Set("Authorization", "Bearer "+testKey)
					s := time.Now()
					resp, err := c.Do(req)
					if err != nil {
						t.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					d := time.Since(s)
					mu.Lock()
					lat = append(lat, d)
					mu.Unlock()
				}
			}()
		}
		rw.Wait()
		slices.Sort(lat)
		t.Logf("SCALE n=%d %s: p50 %v p99 %v (%d requests, 4 readers, 50 SSE subscribers)",
			n, name, lat[len(lat)/2].Round(time.Microsecond), lat[len(lat)*99/100].Round(time.Microsecond), len(lat))
	}
	c.CloseIdleConnections()
}

// watestChild is the local WhatsApp in a child process (this test binary
// re-run with WALINK_SERVE_WATEST_CHILD=1), with a provisioning endpoint.
type watestChild struct {
	cmd     *exec.Cmd
	url     string
	root    wakeys.PublicKey
	control string
}

func startWatestChild(t *testing.T) *watestChild {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "WALINK_SERVE_WATEST_CHILD=1")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("watest child: %v", err)
	}
	f := strings.Fields(line)
	if len(f) != 3 {
		t.Fatalf("watest child said %q", line)
	}
	rb, _ := hex.DecodeString(f[1])
	root, err := wakeys.PublicKeyFromBytes(rb)
	if err != nil {
		t.Fatal(err)
	}
	return &watestChild{cmd: cmd, url: f[0], root: root, control: f[2]}
}

func (c *watestChild) rss() int64 { return rssOfPid(c.cmd.Process.Pid) }

func rssOfPid(pid int) int64 {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			return v * 1024
		}
	}
	return 0
}

type provisionReq struct {
	Phone, Noise, Identity, SPK, SPKSig string
	RegID, SPKID                        uint32
}

// provision makes a device, has the child's phone link it without
// pairing, and returns the device as a finished link stores it.
func (c *watestChild) provision(t *testing.T, phone string) *store.Device {
	d := &store.Device{NextPreKeyID: 1, CreatedAt: time.Now()}
	var err error
	if d.NoiseKey, err = wakeys.NewKeyPair(rand.Reader); err != nil {
		t.Fatal(err)
	}
	if d.IdentityKey, err = wakeys.NewKeyPair(rand.Reader); err != nil {
		t.Fatal(err)
	}
	if d.SignedPreKey, err = wakeys.NewSignedPreKey(rand.Reader, d.IdentityKey.Private, 1); err != nil {
		t.Fatal(err)
	}
	if d.RegistrationID, err = wakeys.NewRegistrationID(rand.Reader); err != nil {
		t.Fatal(err)
	}
	rand.Read(d.AdvSecret[:])
	body, _ := json.Marshal(provisionReq{Phone: phone, Noise: d.NoiseKey.Public.String(), Identity: d.IdentityKey.Public.String(),
		SPK: d.SignedPreKey.Public.String(), SPKSig: hex.EncodeToString(d.SignedPreKey.Signature[:]),
		RegID: d.RegistrationID, SPKID: d.SignedPreKey.ID})
	resp, err := http.Post("http://"+c.control+"/provision", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("provision: %s", b)
	}
	id, err := jid.Parse(string(b))
	if err != nil {
		t.Fatal(err)
	}
	d.ID = id
	d.Platform = "Chrome (Linux)"
	return d
}

// runWatestChild is the child: the local WhatsApp and /provision, until
// stdin closes.
func runWatestChild() {
	sc := watest.DefaultScenario()
	sc.QRRefresh = false
	srv, err := watest.Start(context.Background(), watest.Config{Scenario: &sc})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	key := func(s string) wakeys.PublicKey {
		b, _ := hex.DecodeString(s)
		k, _ := wakeys.PublicKeyFromBytes(b)
		return k
	}
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req provisionReq
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		spk := wakeys.SignedPreKey{PreKey: wakeys.PreKey{ID: req.SPKID, KeyPair: wakeys.KeyPair{Public: key(req.SPK)}}}
		sig, _ := hex.DecodeString(req.SPKSig)
		copy(spk.Signature[:], sig)
		id, err := srv.Phone(req.Phone).Provision(key(req.Noise), key(req.Identity), req.RegID, spk)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		io.WriteString(w, id.String())
	}))
	fmt.Printf("%s %s %s\n", srv.URL(), srv.RootKey().String(), ln.Addr())
	io.Copy(io.Discard, os.Stdin)
	srv.Close()
	os.Exit(0)
}
