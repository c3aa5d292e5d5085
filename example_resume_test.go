package walink_test

import (
	"fmt"
	"time"

	"github.com/walinkdev/walink"
	"github.com/walinkdev/walink/store"
)

// How a tool shows what a stored device's next connect will use (as
// `walink status` does): the version, and whether it resumes with Noise
// IK. A device that never logged in has no verified server chain yet, so
// it connects with the full XX handshake and the built-in version.
func ExampleResumeStatus() {
	d := &store.Device{} // as loaded from a store
	now := time.Now()
	v, source, _ := walink.VersionStatus(d, "", now)
	ik, why := walink.ResumeStatus(d, now, false)
	fmt.Println(v, source)
	fmt.Println(ik, why)
	// Output:
	// 2.3000.1045368834 built-in
	// false not registered
}

// Reconnecting like WhatsApp Web needs no configuration: leave Version
// empty to follow WhatsApp (a refused version is replaced by the one
// WhatsApp Web currently serves, once), and keep DisableResume false to
// resume with Noise IK.
func ExampleConfig_versionRecovery() {
	cfg := walink.Config{
		// VersionURL: "http://127.0.0.1:PORT/sw.js", // e.g. watest's VersionURL()
		VersionFetchTimeout: 10 * time.Second,
	}
	fmt.Println(cfg.Version == "", cfg.DisableResume)
	// Output: true false
}
