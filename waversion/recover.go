package waversion

import (
	"context"
	"time"

	"github.com/walinkdev/walink/engine"
	"github.com/walinkdev/walink/store"
)

// Recovery is the outcome of Recover.
type Recovery struct {
	engine.FetchedAction
	// Fetched reports whether a fetch was made (its result, or its
	// failure, is in FetchedAction); FetchedAt is when it ended.
	Fetched   bool
	FetchedAt time.Time
}

// Recover runs the answer to a failure 405 for the version inUse of
// device d: engine.OnClientOutdated decides whether to fetch at all; if
// so, f fetches (bounded by ctx and f.Timeout) and engine.AfterVersionFetch
// decides what follows. now is the clock (the store keeps its readings).
// The caller does what the result says: when Store, set d.WebVersion =
// Version.String() and d.WebVersionFetchedAt = FetchedAt and store d;
// then reconnect once when Reconnect, else end with ClientOutdated{GiveUp}.
// It never loops: one call fetches at most once.
func (f *Fetcher) Recover(ctx context.Context, inUse engine.VersionChoice, d *store.Device, now func() time.Time) Recovery {
	act := engine.OnClientOutdated(inUse, d, now())
	if !act.Fetch {
		return Recovery{FetchedAction: engine.FetchedAction{GiveUp: act.GiveUp}}
	}
	v, err := f.Fetch(ctx)
	at := now()
	return Recovery{FetchedAction: engine.AfterVersionFetch(inUse.Version, v, err), Fetched: true, FetchedAt: at}
}
