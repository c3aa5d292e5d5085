package engine

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/walinkdev/walink/store"
	"github.com/walinkdev/walink/store/storetest"
)

func TestChooseVersion(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	builtIn := Version{2, 3000, 1045368834}
	pinned := Version{2, 3000, 1}
	d := func(v string, age time.Duration) *store.Device {
		dev := storetest.NewDevice(t, 1, true)
		dev.WebVersion, dev.WebVersionFetchedAt = v, now.Add(-age)
		if v == "" {
			dev.WebVersionFetchedAt = time.Time{}
		}
		return dev
	}
	for _, tc := range []struct {
		name    string
		pinned  Version
		d       *store.Device
		want    Version
		source  VersionSource
		refetch bool
	}{
		{"pinned wins", pinned, d("2.3000.1099999999", time.Hour), pinned, VersionPinned, false},
		{"nothing fetched", Version{}, d("", 0), builtIn, VersionBuiltIn, false},
		{"nil device", Version{}, nil, builtIn, VersionBuiltIn, false},
		{"fresh fetch", Version{}, d("2.3000.1099999999", time.Hour), Version{2, 3000, 1099999999}, VersionFetched, false},
		{"stale fetch is used and refetched", Version{}, d("2.3000.1099999999", 25*time.Hour), Version{2, 3000, 1099999999}, VersionFetched, true},
		{"older fetch than built-in", Version{}, d("2.3000.1000000000", time.Hour), builtIn, VersionBuiltIn, false},
		{"unparsable stored version", Version{}, d("junk", time.Hour), builtIn, VersionBuiltIn, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ChooseVersion(tc.pinned, builtIn, tc.d, now)
			if c.Version != tc.want || c.Source != tc.source || c.RefetchInBackground != tc.refetch {
				t.Fatalf("got %+v", c)
			}
		})
	}
}

// The 405 path never loops: a second 405 within a minute of a fetch is
// final, a failed fetch is final, a fetch that brings nothing newer is
// final, and only a newer version reconnects (once).
func TestClientOutdatedNoLoop(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	builtIn := Version{2, 3000, 1045368834}
	newer := Version{2, 3000, 1045368999}
	dev := storetest.NewDevice(t, 1, true)
	dev.WebVersion, dev.WebVersionFetchedAt = "", time.Time{}

	if a := OnClientOutdated(VersionChoice{Version: Version{2, 3000, 1}, Source: VersionPinned}, dev, now); a.Fetch || !strings.Contains(a.GiveUp, "Config.Version") {
		t.Fatalf("pinned: %+v", a)
	}
	inUse := ChooseVersion(Version{}, builtIn, dev, now)
	a := OnClientOutdated(inUse, dev, now)
	if !a.Fetch {
		t.Fatalf("first 405: %+v", a)
	}
	if f := AfterVersionFetch(inUse.Version, Version{}, errors.New("dial tcp: refused")); f.Store || f.Reconnect || !strings.Contains(f.GiveUp, "dial tcp: refused") {
		t.Fatalf("failed fetch: %+v", f)
	}
	if f := AfterVersionFetch(inUse.Version, builtIn, nil); !f.Store || f.Reconnect || f.GiveUp == "" {
		t.Fatalf("same version fetched: %+v", f)
	}
	f := AfterVersionFetch(inUse.Version, newer, nil)
	if !f.Store || !f.Reconnect || f.GiveUp != "" || f.Version != newer {
		t.Fatalf("newer version: %+v", f)
	}
	// The driver stores it with the fetch time and reconnects.
	dev.WebVersion, dev.WebVersionFetchedAt = f.Version.String(), now
	inUse = ChooseVersion(Version{}, builtIn, dev, now.Add(time.Second))
	if inUse.Version != newer || inUse.Source != VersionFetched {
		t.Fatalf("after the fetch: %+v", inUse)
	}
	// Refused again within the minute: final.
	if a := OnClientOutdated(inUse, dev, now.Add(30*time.Second)); a.Fetch || !strings.Contains(a.GiveUp, newer.String()) {
		t.Fatalf("second 405 within a minute: %+v", a)
	}
	// Days later, the server moves on again: one more fetch is fine.
	if a := OnClientOutdated(inUse, dev, now.Add(48*time.Hour)); !a.Fetch {
		t.Fatalf("405 two days later: %+v", a)
	}
}

func TestVersionRefetchAt(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		exp, want time.Time
	}{
		{now.Add(48 * time.Hour), now.Add(47 * time.Hour)},
		{now.Add(2 * time.Hour), now.Add(time.Hour)},
		{now.Add(10 * time.Minute), now.Add(5 * time.Minute)},
		{now, now},
		{now.Add(-time.Hour), now},
	} {
		if got := VersionRefetchAt(tc.exp, now); !got.Equal(tc.want) {
			t.Errorf("expiration %v: refetch at %v, want %v", tc.exp.Sub(now), got.Sub(now), tc.want.Sub(now))
		}
		if got := VersionRefetchAt(tc.exp, now); got.Before(now) || (tc.exp.After(now) && !got.Before(tc.exp)) {
			t.Errorf("refetch %v not in [now, expiration)", got.Sub(now))
		}
	}
}

func TestAfterExpiryFetch(t *testing.T) {
	inUse := Version{2, 3000, 1045368834}
	for _, tc := range []struct {
		fetched Version
		err     error
		want    bool
	}{
		{Version{2, 3000, 1045368999}, nil, true},
		{inUse, nil, false},
		{Version{2, 3000, 1}, nil, false},
		{Version{2, 3000, 1045368999}, errors.New("timeout"), false},
	} {
		if got := AfterExpiryFetch(inUse, tc.fetched, tc.err); got != tc.want {
			t.Errorf("AfterExpiryFetch(%v, %v) = %v", tc.fetched, tc.err, got)
		}
	}
}

func TestAfterStaleFetch(t *testing.T) {
	inUse := Version{2, 3000, 1045368834}
	for _, tc := range []struct {
		fetched Version
		err     error
		want    bool
	}{
		{Version{2, 3000, 1045368999}, nil, true},
		{inUse, nil, true}, // same version: its fetch time is renewed
		{Version{2, 3000, 1}, nil, false},
		{Version{}, nil, false},
		{Version{2, 3000, 1045368999}, errors.New("timeout"), false},
	} {
		if got := AfterStaleFetch(inUse, tc.fetched, tc.err); got != tc.want {
			t.Errorf("AfterStaleFetch(%v, %v) = %v", tc.fetched, tc.err, got)
		}
	}
}
