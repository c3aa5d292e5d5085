// Package clientcheck holds only tests: walink's own client against the
// local WhatsApp, driven through the control API over HTTP the way a script
// or another language's test suite would drive `walink sim`. It lives apart
// from package watest so that watest's tests never depend on the client
// compiling.
package clientcheck
