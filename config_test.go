package walink

import (
	"errors"
	"testing"
	"time"

	"github.com/walinkdev/walink/engine"
	"github.com/walinkdev/walink/transport"
	"github.com/walinkdev/walink/waproto"
)

// TestConfigDefaults: the zero Config resolves to the defaults documented
// on its fields, and set fields are kept.
func TestConfigDefaults(t *testing.T) {
	cfg, v, err := Config{}.resolved()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"ServerURL", cfg.ServerURL, transport.DefaultURL},
		{"Version", cfg.Version, DefaultVersion},
		{"OSName", cfg.OSName, "walink"},
		{"PlatformType", cfg.PlatformType, PlatformChrome},
		{"QRFirstTimeout", cfg.QRFirstTimeout, 60 * time.Second},
		{"QRNextTimeout", cfg.QRNextTimeout, 20 * time.Second},
		{"PairCodeTimeout", cfg.PairCodeTimeout, 180 * time.Second},
		{"PairCodeFinishTimeout", cfg.PairCodeFinishTimeout, 60 * time.Second},
		{"PairConfirmTimeout", cfg.PairConfirmTimeout, 20 * time.Second},
		{"KeepaliveMin", cfg.KeepaliveMin, 20 * time.Second},
		{"KeepaliveMax", cfg.KeepaliveMax, 30 * time.Second},
		{"KeepaliveTimeout", cfg.KeepaliveTimeout, 10 * time.Second},
		{"KeepaliveGiveUp", cfg.KeepaliveGiveUp, 3 * time.Minute},
		{"HandshakeTimeout", cfg.HandshakeTimeout, 20 * time.Second},
		{"IQTimeout", cfg.IQTimeout, 75 * time.Second},
		{"LogoutTimeout", cfg.LogoutTimeout, 10 * time.Second},
		{"PreKeyCount", cfg.PreKeyCount, 812},
		{"Reconnect.Disabled", cfg.Reconnect.Disabled, false},
		{"Reconnect.MinDelay", cfg.Reconnect.MinDelay, time.Second},
		{"Reconnect.MaxDelay", cfg.Reconnect.MaxDelay, 2 * time.Minute},
		{"Reconnect.Multiplier", cfg.Reconnect.Multiplier, 2.0},
		{"Reconnect.Jitter", cfg.Reconnect.Jitter, 0.2},
		{"Reconnect.RateLimitDelay", cfg.Reconnect.RateLimitDelay, 30 * time.Second},
		{"Version parsed", v, engine.Version{2, 3000, 1045368834}},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if cfg.Logger == nil || cfg.Rand == nil || cfg.Now == nil || cfg.Proxy != nil || !cfg.ServerRoot.IsZero() {
		t.Error("Logger, Rand, Now must default to non-nil; Proxy to nil (direct); ServerRoot to zero (WhatsApp's)")
	}
	pc := cfg.payloadConfig(v)
	if pc.OSName != "walink" || pc.PlatformType != waproto.DeviceProps_CHROME || pc.PushName != "" {
		t.Errorf("payload config %+v", pc)
	}

	set := Config{ServerURL: "ws://x/ws/chat", Version: "2.3000.7", OSName: "os", PlatformType: PlatformSafari,
		QRFirstTimeout: time.Second, QRNextTimeout: 2 * time.Second,
		Reconnect: ReconnectPolicy{Disabled: true, MinDelay: 3 * time.Second, MaxDelay: 4 * time.Second, Multiplier: 3, Jitter: 0.5, RateLimitDelay: 5 * time.Second}}
	got, _, err := set.resolved()
	if err != nil {
		t.Fatal(err)
	}
	if got.ServerURL != set.ServerURL || got.Version != set.Version || got.OSName != set.OSName || got.PlatformType != set.PlatformType ||
		got.QRFirstTimeout != set.QRFirstTimeout || got.QRNextTimeout != set.QRNextTimeout || got.Reconnect != set.Reconnect {
		t.Errorf("set fields not kept: %+v", got)
	}
	if _, _, err := (Config{Version: "2.x"}).resolved(); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("bad Version: %v", err)
	}
	// The QR's client-type field is CompanionWebClientType, not PlatformType.
	for p, want := range map[PlatformType]string{PlatformChrome: "1", PlatformEdge: "2", PlatformFirefox: "3", PlatformSafari: "6", PlatformDesktop: "7", PlatformIPad: "9"} {
		if got := p.clientType(); got != want {
			t.Errorf("client type of %d = %q, want %q", p, got, want)
		}
	}
}
