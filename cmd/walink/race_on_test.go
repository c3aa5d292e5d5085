//go:build race

package main

// raceEnabled: the race detector slows every process several times.
const raceEnabled = true
