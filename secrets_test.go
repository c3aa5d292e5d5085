package walink_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walinkdev/walink"
	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/pairing"
	"github.com/walinkdev/walink/store"
	"github.com/walinkdev/walink/store/memstore"
)

// TestSecretsNeverLeak links over QR and over a pair code with every log
// line captured at debug level (text and JSON handlers), then scans the
// logs, every event (%v, %+v, %#v and JSON), every error string and the
// local WhatsApp's node log for the device's private keys (noise,
// identity, signed pre-key, the first pre-keys) and every adv secret it
// held, in hex, base64 (std, raw, URL, raw URL). The adv secret may appear
// only inside the QR strings that must carry it.
func TestSecretsNeverLeak(t *testing.T) {
	for _, flow := range []string{"qr", "pair-code"} {
		t.Run(flow, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var logs syncBuffer
			logger := slog.New(teeHandler{
				slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}),
				slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}),
			})
			srv := startServer(t, nil)
			st := memstore.New()
			cfg := clientConfig(t, srv)
			cfg.Logger = logger
			cli := walink.NewClient(st, cfg)
			rec := newRecorder()
			cli.AddEventHandler(rec.handle)
			defer cli.Close()
			var errs []error
			from := 0
			if err := cli.Connect(ctx); err != nil {
				t.Fatal(err)
			}
			phone := srv.Phone(testPhone)
			if flow == "qr" {
				qr := waitFor[walink.PairingQRCode](t, rec, &from, 5*time.Second)
				scanQR(t, ctx, phone, rec, &from, qr.Code)
			} else {
				// A wrong code first, for the error strings it makes.
				if _, err := cli.PairWithCode(ctx, walink.PairCodeOptions{PhoneNumber: "12"}); err != nil {
					errs = append(errs, err)
				}
				code, err := cli.PairWithCode(ctx, walink.PairCodeOptions{PhoneNumber: testPhone})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := phone.EnterCode(ctx, code); err != nil {
					t.Fatal(err)
				}
			}
			waitFor[walink.Connected](t, rec, &from, 10*time.Second)

			devs, err := st.Devices(ctx)
			if err != nil || len(devs) != 1 {
				t.Fatalf("devices: %d, %v", len(devs), err)
			}
			d := devs[0]
			secrets := deviceSecrets(t, ctx, st, d)
			advSecrets := map[string][]byte{"adv secret (stored)": d.AdvSecret[:]}
			var qrCodes []string
			for _, e := range rec.all() {
				if q, ok := e.(walink.PairingQRCode); ok {
					qrCodes = append(qrCodes, q.Code)
					if p, err := pairing.ParseQR(q.Code); err == nil {
						advSecrets[fmt.Sprintf("adv secret (QR %d)", len(qrCodes))] = bytes.Clone(p.AdvSecret[:])
					}
				}
			}

			if err := cli.Logout(ctx); err != nil {
				errs = append(errs, err)
			}
			if err := cli.Logout(ctx); err != nil { // a second one fails: its error too
				errs = append(errs, err)
			}
			closeWithin(t, cli, 10*time.Second)

			// Everything an application or operator could see.
			haystacks := map[string]string{"logs": logs.String()}
			var evText strings.Builder
			for _, e := range rec.all() {
				if q, ok := e.(walink.PairingQRCode); ok {
					q.Code = "<qr>" // checked separately below
					e = q
				}
				fmt.Fprintf(&evText, "%v\n%+v\n%#v\n", e, e, e)
				if b, err := json.Marshal(e); err == nil {
					evText.Write(b)
				}
				if pe, ok := e.(walink.PairError); ok && pe.Err != nil {
					errs = append(errs, pe.Err)
				}
			}
			haystacks["events"] = evText.String()
			var errText strings.Builder
			for _, err := range errs {
				fmt.Fprintf(&errText, "%v\n%+v\n%#v\n", err, err, err)
			}
			haystacks["errors"] = errText.String()
			var nodeLog strings.Builder
			for _, e := range srv.Events() {
				fmt.Fprintf(&nodeLog, "%s %s %s\n%v\n", e.Tag, e.XML, e.Note, e.Node)
			}
			haystacks["watest node log"] = nodeLog.String()
			if len(haystacks["logs"]) < 1000 || !strings.Contains(haystacks["logs"], "level=DEBUG") {
				t.Fatalf("captured only %d bytes of logs; debug logging not on?", len(haystacks["logs"]))
			}

			for where, text := range haystacks {
				for name, secret := range secrets {
					if enc, ok := findEncoded(text, secret); ok {
						t.Errorf("%s leaks the %s (%s)", where, name, enc)
					}
				}
				for name, secret := range advSecrets {
					if enc, ok := findEncoded(text, secret); ok {
						t.Errorf("%s leaks the %s (%s)", where, name, enc)
					}
				}
			}
			// QR strings carry their own adv secret and nothing else secret.
			for i, code := range qrCodes {
				for name, secret := range secrets {
					if enc, ok := findEncoded(code, secret); ok {
						t.Errorf("QR %d carries the %s (%s)", i+1, name, enc)
					}
				}
			}
		})
	}
}

// deviceSecrets returns the device's private keys by name.
func deviceSecrets(t *testing.T, ctx context.Context, st store.Store, d *store.Device) map[string][]byte {
	t.Helper()
	s := map[string][]byte{
		"noise private key":          d.NoiseKey.Private.Bytes(),
		"identity private key":       d.IdentityKey.Private.Bytes(),
		"signed pre-key private key": d.SignedPreKey.Private.Bytes(),
	}
	for id := uint32(1); id <= 5; id++ {
		pk, err := st.PreKey(ctx, d.NoiseKey.Public, id)
		if err != nil {
			t.Fatalf("pre-key %d: %v", id, err)
		}
		s[fmt.Sprintf("pre-key %d private key", id)] = pk.Private.Bytes()
	}
	for name, b := range s {
		if len(b) != keys.Size || bytes.Equal(b, make([]byte, keys.Size)) {
			t.Fatalf("%s is missing", name)
		}
	}
	return s
}

// findEncoded reports whether text holds secret in any common encoding.
// Base64 is matched on a 30-byte prefix in each of the three alignments,
// so a secret embedded in a longer base64 blob is found too.
func findEncoded(text string, secret []byte) (string, bool) {
	lower := strings.ToLower(text)
	if strings.Contains(lower, hex.EncodeToString(secret)) {
		return "hex", true
	}
	if strings.Contains(text, string(secret)) {
		return "raw bytes", true
	}
	for off := 0; off < 3; off++ {
		// Prefix the secret with off zero bytes, encode, and drop the
		// characters that depend on the padding: what remains appears in
		// any base64 text that holds the secret at that alignment.
		padded := append(make([]byte, off), secret...)
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			s := enc.EncodeToString(padded)
			start := (off*8 + 5) / 6 // first character not touched by the zero prefix
			core := s[start+1 : start+36]
			if strings.Contains(text, core) {
				return "base64", true
			}
		}
	}
	return "", false
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// teeHandler sends every record to both handlers.
type teeHandler [2]slog.Handler

func (h teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h[0].Enabled(ctx, l) || h[1].Enabled(ctx, l)
}

func (h teeHandler) Handle(ctx context.Context, r slog.Record) error {
	if err := h[0].Handle(ctx, r.Clone()); err != nil {
		return err
	}
	return h[1].Handle(ctx, r)
}

func (h teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return teeHandler{h[0].WithAttrs(as), h[1].WithAttrs(as)}
}

func (h teeHandler) WithGroup(name string) slog.Handler {
	return teeHandler{h[0].WithGroup(name), h[1].WithGroup(name)}
}

// TestFindEncoded: the scanner finds a secret in every encoding and at
// every base64 alignment, so TestSecretsNeverLeak can fail.
func TestFindEncoded(t *testing.T) {
	secret := bytes.Repeat([]byte{0xa5, 0x3c, 0x7e, 0x01}, 8)
	for off := 0; off < 3; off++ {
		blob := append(append(bytes.Repeat([]byte{9}, off+4), secret...), 1, 2, 3)
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if _, ok := findEncoded("x="+enc.EncodeToString(blob)+" y", secret); !ok {
				t.Errorf("base64 at offset %d not found", off)
			}
		}
	}
	if _, ok := findEncoded("key="+strings.ToUpper(hex.EncodeToString(secret)), secret); !ok {
		t.Error("upper-case hex not found")
	}
	if _, ok := findEncoded(hex.EncodeToString(secret[1:]), secret); ok {
		t.Error("a shorter string matched")
	}
}
