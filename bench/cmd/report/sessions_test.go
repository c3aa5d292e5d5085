package main

import (
	"strings"
	"testing"
)

// A whatsmeow run whose budget ended before all N were connected must not
// be divided by the few still connected and compared (bench/RESULTS.md
// once showed 1188.7 KiB per whatsmeow session at N = 5000 from 460 of
// 5000 connected).
func TestSessionsSectionIncompleteRow(t *testing.T) {
	ss := []Session{
		{Impl: "walink", Store: "sqlite", N: 5000, Linked: 5000, Connected: 5000, HeapPerSession: 13 << 10, HeapAllocPerSession: 7 << 10, RSSPerSession: 23 << 10, GoroutinesPerSession: 1, DevicesPerSec: 55},
		{Impl: "whatsmeow", Store: "sqlite (sqlstore)", N: 5000, Linked: 4802, Connected: 460, HeapPerSession: 1188 << 10, HeapAllocPerSession: 842 << 10, RSSPerSession: 1263 << 10, DevicesPerSec: 11},
	}
	var w strings.Builder
	targets := sessionsSection(&w, ss)
	got := w.String()
	if !strings.Contains(got, "| 460 of 5000 (budget ran out) |") {
		t.Errorf("incomplete row not marked:\n%s", got)
	}
	if strings.Contains(got, "1188") {
		t.Errorf("incomplete row's per-session memory shown:\n%s", got)
	}
	if !strings.Contains(got, "| 5000 | – | – | – | – | – (whatsmeow run incomplete) |") {
		t.Errorf("ratio row for the incomplete N not marked:\n%s", got)
	}
	for _, tg := range targets {
		if strings.Contains(tg, "whatsmeow") {
			t.Errorf("target from the incomplete run: %s", tg)
		}
	}
	if len(targets) == 0 {
		t.Error("walink's own targets at N = 5000 dropped with whatsmeow's row")
	}
}
