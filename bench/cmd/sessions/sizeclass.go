package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
)

// The per-size-class view of the heap (-sizeclasses): which classes hold
// the difference between heap in use and live heap. The runtime reports
// in-use spans only as a total, so the harness writes a heap dump
// (debug.WriteHeapDump), whose object records list every allocated object
// span by span, and counts the spans holding at least one.

// sizeClasses and classPages are Go 1.26's small size classes and their
// span sizes in 8 KiB pages (internal/runtime/gc/sizeclasses.go).
var sizeClasses = []int{0, 8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256, 288, 320, 352, 384, 416, 448, 480, 512, 576, 640, 704, 768, 896, 1024, 1152, 1280, 1408, 1536, 1792, 2048, 2304, 2688, 3072, 3200, 3456, 4096, 4864, 5376, 6144, 6528, 6784, 6912, 8192, 9472, 9728, 10240, 10880, 12288, 13568, 14336, 16384, 18432, 19072, 20480, 21760, 24576, 27264, 28672, 32768}
var classPages = []int{0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1, 2, 1, 2, 1, 3, 2, 3, 1, 3, 2, 3, 4, 5, 6, 1, 7, 6, 5, 4, 3, 5, 7, 2, 9, 7, 5, 8, 3, 10, 7, 4}

const pageSize = 8192

// classStat is one size class in the dump: live objects and bytes, spans
// holding them, and the burst's allocations of that size (MemStats.BySize).
type classStat struct {
	Size, Objects, Spans int
	Live, InUse          int64
	Mallocs              uint64
}

// sizeClassStats writes a heap dump to path and reads it back.
func sizeClassStats(path string, before, after *runtime.MemStats) ([]classStat, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	debug.WriteHeapDump(f.Fd())
	f.Close()
	f, err = os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	stats, err := readDumpObjects(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return nil, err
	}
	for i := range stats {
		for j, bs := range after.BySize {
			if int(bs.Size) == stats[i].Size {
				stats[i].Mallocs = bs.Mallocs - before.BySize[j].Mallocs
			}
		}
	}
	return stats, nil
}

// readDumpObjects parses a heap dump up to the end of its object records
// (they follow the params and itab records) and groups objects into spans:
// consecutive objects of one size within one span's extent.
func readDumpObjects(r *bufio.Reader) ([]classStat, error) {
	hdr := make([]byte, 16)
	if _, err := io.ReadFull(r, hdr); err != nil || string(hdr) != "go1.7 heap dump\n" {
		return nil, fmt.Errorf("not a heap dump: %q %v", hdr, err)
	}
	u := func() uint64 {
		v, err := binary.ReadUvarint(r)
		if err != nil {
			panic(err)
		}
		return v
	}
	skip := func() uint64 { // a length-prefixed byte string; returns its length
		n := u()
		if _, err := r.Discard(int(n)); err != nil {
			panic(err)
		}
		return n
	}
	byClass := map[int]*classStat{}
	var curSize int
	var spanStart, spanEnd, prev uint64
	defer func() { recover() }()
	for {
		switch tag := u(); tag {
		case 6: // params
			u()
			u()
			u()
			u()
			skip()
			skip()
			u()
		case 3: // type
			u()
			u()
			skip()
			u()
		case 8: // itab
			u()
			u()
		case 1: // object
			addr := u()
			size := int(skip())
			for u() != 0 { // fields: kind, offset … until kind 0
				u()
			}
			cs := byClass[size]
			if cs == nil {
				cs = &classStat{Size: size}
				byClass[size] = cs
			}
			cs.Objects++
			cs.Live += int64(size)
			if size != curSize || addr <= prev || addr >= spanEnd {
				cls := slices.Index(sizeClasses, size)
				span := uint64((size + pageSize - 1) / pageSize * pageSize) // a large object
				if cls > 0 {
					span = uint64(classPages[cls] * pageSize)
				}
				spanStart = addr &^ (pageSize - 1)
				spanEnd = spanStart + span
				cs.Spans++
				cs.InUse += int64(span)
				curSize = size
			}
			prev = addr
			_ = spanStart
		default:
			// Goroutines and the rest follow the objects.
			out := make([]classStat, 0, len(byClass))
			for _, cs := range byClass {
				out = append(out, *cs)
			}
			slices.SortFunc(out, func(a, b classStat) int { return a.Size - b.Size })
			return out, nil
		}
	}
}

// printSizeClasses writes the per-class table, biggest gap first, per
// session.
func printSizeClasses(w io.Writer, stats []classStat, n int) {
	slices.SortFunc(stats, func(a, b classStat) int { return int((b.InUse - b.Live) - (a.InUse - a.Live)) })
	var live, inuse int64
	for _, s := range stats {
		live += s.Live
		inuse += s.InUse
	}
	fmt.Fprintf(w, "size classes (per session, KiB; N = %d): live %.2f, in spans %.2f\n", n, float64(live)/1024/float64(n), float64(inuse)/1024/float64(n))
	fmt.Fprintf(w, "%8s %10s %8s %8s %8s %8s %12s\n", "size", "objs/sess", "live", "inuse", "gap", "spans", "burst mallocs/sess")
	for _, s := range stats {
		if s.InUse < 8<<10 {
			continue
		}
		fn := float64(n)
		fmt.Fprintf(w, "%8d %10.2f %8.3f %8.3f %8.3f %8d %12.1f\n", s.Size, float64(s.Objects)/fn, float64(s.Live)/1024/fn, float64(s.InUse)/1024/fn, float64(s.InUse-s.Live)/1024/fn, s.Spans, float64(s.Mallocs)/fn)
	}
}
