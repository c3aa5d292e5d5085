package engine

import (
	"fmt"
	"time"

	"github.com/walinkdev/walink/store"
)

// Client version decisions (CHANGES-2026 §8). The driver asks
// ChooseVersion before each connect; on failure 405 it asks
// OnClientOutdated whether to fetch, fetches (package waversion), and asks
// AfterVersionFetch what to do with the result; on a client_expiration
// notice it fetches at VersionRefetchAt. Each fetch is stored in the
// device (WebVersion, WebVersionFetchedAt), so the guard against loops
// holds across reconnects and processes.

const (
	// VersionCacheTTL is how long a fetched version is fresh; an older one
	// is still used, but refetched in the background at connect.
	VersionCacheTTL = 24 * time.Hour
	// VersionRefetchGuard: a 405 for a version fetched less than this long
	// ago is final (ClientOutdated), never a second fetch.
	VersionRefetchGuard = time.Minute
	// versionExpiryMargin is how long before a client_expiration deadline
	// the version is refetched.
	versionExpiryMargin = time.Hour
)

// VersionSource says where the version in use came from.
type VersionSource int

// Version sources.
const (
	VersionBuiltIn VersionSource = iota + 1 // the library's built-in version
	VersionPinned                           // Config.Version
	VersionFetched                          // fetched from WhatsApp Web and stored in the device
)

func (s VersionSource) String() string {
	switch s {
	case VersionBuiltIn:
		return "built-in"
	case VersionPinned:
		return "pinned"
	case VersionFetched:
		return "fetched"
	}
	return fmt.Sprintf("VersionSource(%d)", int(s))
}

// VersionChoice is the version for the next connect.
type VersionChoice struct {
	Version Version
	Source  VersionSource
	// RefetchInBackground: the stored version is older than
	// VersionCacheTTL; connect with it and fetch a fresh one meanwhile
	// (whatsapp-rust fetches at connect in parallel with the transport).
	RefetchInBackground bool
}

// ChooseVersion picks the version for d's next connect: pinned when not
// zero (Config.Version), else the newer of builtIn and the version stored
// in d (nil d, or none stored: builtIn).
func ChooseVersion(pinned, builtIn Version, d *store.Device, now time.Time) VersionChoice {
	if pinned != (Version{}) {
		return VersionChoice{Version: pinned, Source: VersionPinned}
	}
	c := VersionChoice{Version: builtIn, Source: VersionBuiltIn}
	if d == nil || d.WebVersion == "" {
		return c
	}
	fetched, err := ParseVersion(d.WebVersion)
	if err != nil || fetched.Less(builtIn) {
		// A newer walink's built-in version beats an old fetch.
		return c
	}
	return VersionChoice{Version: fetched, Source: VersionFetched, RefetchInBackground: now.Sub(d.WebVersionFetchedAt) >= VersionCacheTTL}
}

// Less reports whether v is older than w.
func (v Version) Less(w Version) bool {
	for i := range v {
		if v[i] != w[i] {
			return v[i] < w[i]
		}
	}
	return false
}

// OutdatedAction answers a failure 405.
type OutdatedAction struct {
	// Fetch: fetch the current version, then call AfterVersionFetch.
	Fetch bool
	// GiveUp, when Fetch is false: the reason for ClientOutdated.
	GiveUp string
}

// OnClientOutdated decides what a 405 for the version in use leads to:
// one fetch, unless the version is pinned or d's stored version was
// fetched less than VersionRefetchGuard ago (then ClientOutdated; this is
// what stops a fetch-reconnect loop).
func OnClientOutdated(inUse VersionChoice, d *store.Device, now time.Time) OutdatedAction {
	if inUse.Source == VersionPinned {
		return OutdatedAction{GiveUp: fmt.Sprintf("WhatsApp refuses client version %s, which Config.Version pins; update it or leave it empty to follow WhatsApp Web", inUse.Version)}
	}
	if d != nil && !d.WebVersionFetchedAt.IsZero() {
		if age := now.Sub(d.WebVersionFetchedAt); age >= 0 && age < VersionRefetchGuard {
			return OutdatedAction{GiveUp: fmt.Sprintf("WhatsApp refuses client version %s although version %s was fetched from WhatsApp Web %s ago", inUse.Version, d.WebVersion, age.Round(time.Second))}
		}
	}
	return OutdatedAction{Fetch: true}
}

// FetchedAction says what to do with a fetch's outcome.
type FetchedAction struct {
	// Store: set d.WebVersion = Version.String() and
	// d.WebVersionFetchedAt = the fetch time, and PutDevice.
	Store   bool
	Version Version
	// Reconnect: connect again at once with Version (no backoff).
	Reconnect bool
	// GiveUp, when not empty: end with ClientOutdated and this reason.
	GiveUp string
}

// AfterVersionFetch decides what follows the fetch made for a 405 of
// refused: a failed fetch gives up; a fetched version that is not newer
// than refused is stored (its fetch time arms the guard) and gives up,
// since reconnecting with it would get 405 again; a newer one is stored
// and reconnects once.
func AfterVersionFetch(refused, fetched Version, fetchErr error) FetchedAction {
	if fetchErr != nil {
		return FetchedAction{GiveUp: fmt.Sprintf("WhatsApp refuses client version %s and fetching the current WhatsApp Web version failed: %v", refused, fetchErr)}
	}
	if !refused.Less(fetched) {
		return FetchedAction{Store: true, Version: fetched, GiveUp: fmt.Sprintf("WhatsApp refuses client version %s and WhatsApp Web's current version is %s, no newer", refused, fetched)}
	}
	return FetchedAction{Store: true, Version: fetched, Reconnect: true}
}

// VersionRefetchAt is when to fetch the version after WhatsApp announced
// that the one in use expires at expiration: versionExpiryMargin (1 h)
// before it, or halfway there when it is nearer, and now when it has
// passed. The fetched version is stored for the next connect.
func VersionRefetchAt(expiration, now time.Time) time.Time {
	left := expiration.Sub(now)
	switch {
	case left <= 0:
		return now
	case left <= 2*versionExpiryMargin:
		return now.Add(left / 2)
	}
	return expiration.Add(-versionExpiryMargin)
}

// AfterExpiryFetch says whether to store the version fetched at
// VersionRefetchAt, ahead of a client_expiration deadline for inUse: yes
// when the fetch worked and brought a newer version (the next connect
// uses it; the running connection is left alone). Otherwise nothing is
// stored, so the 405 guard stays unarmed: should WhatsApp refuse inUse
// at the deadline, OnClientOutdated still allows its one fetch.
func AfterExpiryFetch(inUse, fetched Version, fetchErr error) bool {
	return fetchErr == nil && inUse.Less(fetched)
}

// AfterStaleFetch says whether to store the version fetched in the
// background because the stored one was older than VersionCacheTTL
// (VersionChoice.RefetchInBackground): yes when the fetch worked and its
// version is not older than inUse. The same version is stored too, with
// its new fetch time, so that the next connects do not fetch again for a
// day; an older one (WhatsApp Web rolled back) is ignored, as ChooseVersion
// would keep the newer built-in one anyway.
func AfterStaleFetch(inUse, fetched Version, fetchErr error) bool {
	return fetchErr == nil && fetched != (Version{}) && !fetched.Less(inUse)
}
