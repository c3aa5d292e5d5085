// Package waversion finds the current WhatsApp Web client version, for a
// client whose built-in version WhatsApp refuses with failure 405
// (CHANGES-2026 §8).
//
// WhatsApp Web's service-worker script (https://web.whatsapp.com/sw.js)
// carries the revision of the web client it serves as
// "client_revision":N; the version is 2.3000.N. Fetcher.Fetch downloads
// the script the way whatsapp-rust does (a desktop Chrome User-Agent,
// Sec-Fetch-Site: none), through the caller's http.Client (so its proxy
// applies), bounded by the context and a timeout, and ParseServiceWorker
// reads the revision from it.
//
// When to fetch, and what to do with the result, is decided by pure
// functions in package engine (ChooseVersion, OnClientOutdated,
// AfterVersionFetch, VersionRefetchAt); this package does the IO, and
// Fetcher.Recover strings the three steps of a 405's answer together for
// a driver (decide, fetch at most once, decide again).
// The local WhatsApp (package watest) serves such a script at /sw.js, so
// tests point Fetcher.URL there.
package waversion
