package pdfscan

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// scanDoc scans b with decoding ahead on (forced, whatever the CPUs) or
// off, and returns the doc too.
func scanDoc(b []byte, lim Limits, ahead bool) (Info, *doc, error) {
	defer func(old int) { prefetchMinProcs = old }(prefetchMinProcs)
	prefetchMinProcs = 0
	if !ahead {
		prefetchMinProcs = 1 << 30
	}
	d := newDoc(context.Background(), bytes.NewReader(b), int64(len(b)), lim)
	info, err := d.scan()
	return info, d, err
}

// sameBothWays scans b with and without decoding ahead and fails unless
// both give the same pages, boxes and error; it returns the result with
// decoding ahead and how many streams it took from it.
func sameBothWays(t *testing.T, b []byte, lim Limits) (Info, int, error) {
	t.Helper()
	want, _, wantErr := scanDoc(b, lim, false)
	got, d, err := scanDoc(b, lim, true)
	if fmt.Sprint(err) != fmt.Sprint(wantErr) || !reflect.DeepEqual(got, want) {
		t.Fatalf("decoding ahead: %d pages, err %v; without: %d pages, err %v", got.Pages, err, want.Pages, wantErr)
	}
	if d.pre.jobs != nil && !isClosed(d.pre.done) {
		t.Fatal("the worker runs after Scan returned")
	}
	return got, d.pre.taken, err
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// streamsDoc writes a catalog (1) and a /Pages node (2) over pages in
// object streams of per pages each, a page followed by per-1 other objects
// (as qpdf writes them), the streams numbered from 10,000; edit may change stream i's dictionary
// extra, padding, or raw data (nil: built from the bodies).
func streamsDoc(pages, per int, kidsOrder func([]int) []int, edit func(i int, nums []int, bodies []string) (extra string, pad int, raw []byte)) []byte {
	f := newFile()
	f.obj(1, "<</Type /Catalog /Pages 2 0 R>>")
	var pageNums []int
	num := 10
	for s := 0; len(pageNums) < pages; s++ {
		var bodies []string
		var nums []int
		for k := 0; k < per && len(pageNums) < pages; k++ {
			pageNums = append(pageNums, num)
			nums = append(nums, num)
			bodies = append(bodies, fmt.Sprintf("<</Type /Page /Parent 2 0 R /MediaBox [0 0 %d 842] /Resources <</Font <</F1 5 0 R>>>>>>", 500+num%100))
			num++
			for range per - 1 {
				nums = append(nums, num)
				bodies = append(bodies, fmt.Sprintf("<</Type /Font /Subtype /Type1 /BaseFont /F%d>>", num))
				num++
			}
		}
		extra, pad, raw := "", 0, []byte(nil)
		if edit != nil {
			extra, pad, raw = edit(s, nums, bodies)
		}
		stm := 10_000 + s
		if raw == nil {
			f.objStm(stm, nums[0], extra, pad, bodies...)
			continue
		}
		for i, n := range nums {
			f.pending[n] = entry{2, int64(stm), int64(i)}
		}
		z := deflate(raw)
		f.pending[stm] = entry{1, int64(f.buf.Len()), 0}
		fmt.Fprintf(&f.buf, "%d 0 obj\n<</Type /ObjStm /N %d /First %d /Filter /FlateDecode /Length %d%s>>\nstream\n%s\nendstream\nendobj\n",
			stm, len(nums), bytes.IndexByte(raw, '<'), len(z), extra, z)
	}
	if kidsOrder != nil {
		pageNums = kidsOrder(pageNums)
	}
	var refs strings.Builder
	for _, n := range pageNums {
		fmt.Fprintf(&refs, "%d 0 R ", n)
	}
	f.obj(2, fmt.Sprintf("<</Type /Pages /Kids [%s] /Count %d>>", refs.String(), len(pageNums)))
	return f.end(f.xrefStream(20_000, "/Size 20001 /Root 1 0 R", true, false))
}

// header returns an object stream's data with the given header pairs.
func header(pairs [][2]int, bodies []string) []byte {
	var head, body bytes.Buffer
	for _, p := range pairs {
		fmt.Fprintf(&head, "%d %d ", p[0], p[1])
	}
	for _, b := range bodies {
		body.WriteString(b + "\n")
	}
	return append(head.Bytes(), body.Bytes()...)
}

// offsets are the offsets of bodies in header's data.
func offsets(bodies []string) []int {
	var offs []int
	n := 0
	for _, b := range bodies {
		offs = append(offs, n)
		n += len(b) + 1
	}
	return offs
}

func TestPrefetchDecodesAhead(t *testing.T) {
	pdf := qpdfLike(300, 5)
	info, taken, err := sameBothWays(t, pdf, testLimits)
	if err != nil || info.Pages != 300 {
		t.Fatalf("pages = %d, err = %v", info.Pages, err)
	}
	// 18 streams: the first holds the /Pages node's first page and is
	// decoded by the walk before it knows what comes next.
	if taken < 15 {
		t.Errorf("%d streams decoded ahead, want at least 15 of 18", taken)
	}
}

func TestPrefetchSameResults(t *testing.T) {
	reverse := func(n []int) []int {
		out := make([]int, len(n))
		for i, v := range n {
			out[len(n)-1-i] = v
		}
		return out
	}
	interleave := func(n []int) []int { // pages from streams far apart, in turns
		var out []int
		for i := range len(n) / 2 {
			out = append(out, n[i], n[len(n)/2+i])
		}
		return out
	}
	// edits of stream 3 (of about 12), which the walk decodes ahead.
	third := func(f func(nums []int, bodies []string) (string, int, []byte)) func(int, []int, []string) (string, int, []byte) {
		return func(i int, nums []int, bodies []string) (string, int, []byte) {
			if i != 3 {
				return "", 0, nil
			}
			return f(nums, bodies)
		}
	}
	pairs := func(nums []int, offs []int) [][2]int {
		var p [][2]int
		for i := range nums {
			p = append(p, [2]int{nums[i], offs[i]})
		}
		return p
	}
	big := strings.Repeat("x", 400<<10)
	tests := []struct {
		name  string
		pdf   []byte
		pages int   // when err is nil; -1: any
		err   error // else
		lim   Limits
	}{
		{"plain", streamsDoc(120, 10, nil, nil), 120, nil, testLimits},
		{"pages in reverse", streamsDoc(120, 10, reverse, nil), 120, nil, testLimits},
		{"pages from two places in turns", streamsDoc(120, 10, interleave, nil), 120, nil, testLimits},
		{"a stream that /Extends itself", streamsDoc(120, 10, nil, third(func([]int, []string) (string, int, []byte) {
			return " /Extends 10003 0 R", 0, nil
		})), 120, nil, testLimits},
		{"header offsets unsorted", streamsDoc(120, 10, nil, third(func(nums []int, bodies []string) (string, int, []byte) {
			offs := offsets(bodies)
			p := pairs(nums, offs)
			p[0], p[len(p)-1] = p[len(p)-1], p[0]
			return "", 0, header(p, bodies)
		})), 120, nil, testLimits},
		{"header offsets past the end", streamsDoc(120, 10, nil, third(func(nums []int, bodies []string) (string, int, []byte) {
			offs := offsets(bodies)
			offs[0] = 1 << 20
			return "", 0, header(pairs(nums, offs), bodies)
		})), 0, ErrDamaged, testLimits},
		{"header offsets all point at the first object", streamsDoc(120, 10, nil, third(func(nums []int, bodies []string) (string, int, []byte) {
			return "", 0, header(pairs(nums, make([]int, len(nums))), bodies)
		})), 120, nil, testLimits},
		{"header offsets into the middle of objects", streamsDoc(120, 10, nil, third(func(nums []int, bodies []string) (string, int, []byte) {
			offs := offsets(bodies)
			for i := range offs {
				offs[i] += 7
			}
			return "", 0, header(pairs(nums, offs), bodies)
		})), -1, nil, testLimits},
		{"header names other objects", streamsDoc(120, 10, nil, third(func(nums []int, bodies []string) (string, int, []byte) {
			n := append([]int(nil), nums...)
			n[0] = 9999
			return "", 0, header(pairs(n, offsets(bodies)), bodies)
		})), 0, ErrDamaged, testLimits},
		{"header cut short", streamsDoc(120, 10, nil, third(func(nums []int, bodies []string) (string, int, []byte) {
			return "", 0, []byte(fmt.Sprintf("%d 0 <<>>", nums[0]))
		})), 0, ErrDamaged, testLimits},
		{"/N larger than the data", streamsDoc(120, 10, nil, third(func(nums []int, bodies []string) (string, int, []byte) {
			return " /N 100000", 0, nil // the second /N wins
		})), 0, ErrDamaged, testLimits},
		{"a flate bomb", streamsDoc(120, 10, nil, third(func([]int, []string) (string, int, []byte) {
			return "", 4 << 20, nil
		})), 0, ErrLimit, testLimits},
		{"a stream over what is decoded ahead, within the limits", streamsDoc(120, 10, nil, third(func([]int, []string) (string, int, []byte) {
			return "", prefetchMaxBytes + 1000, nil
		})), 120, nil, Limits{MaxStreamBytes: 1 << 30, MaxDecodeBytes: 2 * prefetchMaxBytes, MaxObjects: 1_000_000, MaxDepth: 64}},
		{"many small streams", streamsDoc(120, 2, nil, nil), 120, nil, testLimits},
		{"the scan's decode budget runs out", streamsDoc(60, 5, nil, func(i int, nums []int, bodies []string) (string, int, []byte) {
			bodies[1] = "(" + big + ")" // 400 KB a stream, 4.8 MB in all
			return "", 0, nil
		}), 0, ErrLimit, testLimits},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			info, _, err := sameBothWays(t, tc.pdf, tc.lim)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil || info.Pages != tc.pages && tc.pages >= 0 {
				t.Fatalf("pages = %d, err = %v; want %d", info.Pages, err, tc.pages)
			}
		})
	}
}

func TestPrefetchOddStreams(t *testing.T) {
	// Streams decoded by the walk itself, not ahead: an indirect /Length
	// (to a missing object: found by endstream), a wrong /Length, the
	// filter in an array (decoded ahead), /DecodeParms.
	for _, extra := range []string{" /Length 3 0 R", " /Length 99999999", " /Filter [/FlateDecode]", " /DecodeParms <</Predictor 1>>"} {
		t.Run(extra, func(t *testing.T) {
			pdf := streamsDoc(120, 10, nil, func(i int, _ []int, _ []string) (string, int, []byte) {
				if i%2 == 1 {
					return extra, 0, nil // the later key wins
				}
				return "", 0, nil
			})
			sameBothWays(t, pdf, testLimits)
		})
	}
}

func TestPrefetchSmallCache(t *testing.T) {
	// A cache of a few streams of 8 KB: streams are decoded again when
	// the walk comes back to them, ahead or not, until the budget runs out.
	lim := testLimits
	lim.MaxDecodeBytes = 40 << 10
	interleave := func(n []int) []int {
		var out []int
		for i := range len(n) / 2 {
			out = append(out, n[i], n[len(n)/2+i])
		}
		return out
	}
	shuffle := func(n []int) []int {
		out := append([]int(nil), n...)
		for i := range out {
			j := (i*7919 + 13) % len(out)
			out[i], out[j] = out[j], out[i]
		}
		return out
	}
	info, taken, err := sameBothWays(t, streamsDoc(100, 10, interleave, nil), lim)
	if err != nil || info.Pages != 100 || taken == 0 {
		t.Errorf("interleaved: pages = %d, err = %v, %d streams decoded ahead", info.Pages, err, taken)
	}
	sameBothWays(t, streamsDoc(100, 10, shuffle, nil), lim)
}

// Truncating a file with many object streams anywhere gives the same
// result with and without decoding ahead.
func TestPrefetchTruncated(t *testing.T) {
	pdf := streamsDoc(60, 5, nil, nil)
	for i := range 100 {
		sameBothWays(t, pdf[:len(pdf)*i/100], testLimits)
	}
}

// cancelAfter is a reader that cancels its context after n reads.
type cancelAfter struct {
	r      *bytes.Reader
	n      atomic.Int64
	cancel context.CancelFunc
	ctx    context.Context
}

func (c *cancelAfter) ReadAt(b []byte, off int64) (int, error) {
	if c.n.Add(-1) == 0 {
		c.cancel()
	}
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.ReadAt(b, off)
}

func TestPrefetchCancelled(t *testing.T) {
	defer func(old int) { prefetchMinProcs = old }(prefetchMinProcs)
	prefetchMinProcs = 0
	pdf := qpdfLike(600, 5)
	before := runtime.NumGoroutine()
	for n := int64(1); n < 120; n += 7 {
		ctx, cancel := context.WithCancel(context.Background())
		r := &cancelAfter{r: bytes.NewReader(pdf), cancel: cancel, ctx: ctx}
		r.n.Store(n)
		_, err := Scan(ctx, r, int64(len(pdf)), testLimits)
		if err == nil {
			t.Fatalf("cancelled after %d reads: no error", n)
		}
		cancel()
	}
	time.Sleep(10 * time.Millisecond)
	if after := runtime.NumGoroutine(); after > before {
		t.Errorf("%d goroutines before, %d after", before, after)
	}
}

// A stream queued ahead that the walk takes long to reach is dropped, and
// then left to the walk: not decoded again and again while the walk moves
// between other streams (here 400 moves, a page in A and its box in B,
// with page x in stream X at the bottom of the stack all along).
func TestPrefetchStaleNotRequeued(t *testing.T) {
	f := newFile()
	f.obj(1, "<</Type /Catalog /Pages 2 0 R>>")
	var pages []string
	for range 200 {
		pages = append(pages, "<</Type /Page /MediaBox 300 0 R>>")
	}
	f.objStm(10, 100, "", 0, pages...)                             // A: pages 100-299
	f.objStm(11, 300, "", 0, "[0 0 595 842]")                      // B: the box
	f.objStm(12, 400, "", 0, "<</Type /Page>>", "<</Type /Font>>") // X: page 400
	f.obj(2, fmt.Sprintf("<</Type /Pages /Kids [%s 400 0 R]>>", strings.TrimSuffix(strings.TrimPrefix(kids(100, 200), "["), "]")))
	pdf := f.end(f.xrefStream(500, "/Size 501 /Root 1 0 R", true, false))
	info, _, err := sameBothWays(t, pdf, testLimits)
	if err != nil || info.Pages != 201 {
		t.Fatalf("pages = %d, err = %v", info.Pages, err)
	}
	_, d, _ := scanDoc(pdf, testLimits, true)
	if n := d.pre.inflated.Load(); n > 3 {
		t.Errorf("%d streams inflated ahead, want at most 3 (B, X once, maybe A)", n)
	}
}

// Past MaxDecodeBytes decoded for nothing, nothing more is decoded ahead.
func TestPrefetchWasteBounded(t *testing.T) {
	p := prefetcher{maxWaste: 100}
	done := func(size int, err error) *prefetchJob {
		j := &prefetchJob{size: size, err: err, lim: 60, ready: make(chan struct{})}
		close(j.ready)
		return j
	}
	p.waste(&prefetchJob{ready: make(chan struct{})}) // never decoded
	p.waste(done(50, nil))
	if p.off {
		t.Fatal("off after 50 bytes")
	}
	p.waste(done(0, ErrLimit)) // counts its limit, 60
	if !p.off || p.wasted != 110 {
		t.Errorf("off = %v, wasted = %d; want true, 110", p.off, p.wasted)
	}
}
