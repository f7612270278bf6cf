package pdfscan

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync/atomic"
)

// Object streams the page walk will need next are decoded ahead, by one
// worker goroutine and by the walk itself: on a document whose pages sit
// in object streams, inflating them is more than half of the scan and
// parsing the pages the rest. The walk queues the streams that the refs on
// top of its stack live in; the worker decodes them in order; when the
// walk needs a stream the worker is still decoding, it decodes the next
// queued one itself instead of waiting idle.
//
// Decoding ahead only ever saves time; it never changes a result. The walk
// takes a stream decoded ahead only when it decoded without error and the
// scan's decode budget still covers it, and charges it then, as if it had
// decoded it when needed; in every other case (a stream that is not a
// plain FlateDecode object stream with a direct /Length, damage, a read
// error, a stream over prefetchMaxBytes, a bomb) the walk decodes the
// stream itself as before, and gets the same data or the same error. The
// worker reads with the caller's io.ReaderAt, which must allow parallel
// ReadAt calls (as io.ReaderAt documents).
const (
	// prefetchAhead is how many streams are queued ahead of the walk.
	prefetchAhead = 4
	// prefetchMaxBytes bounds what one stream decoded ahead may decode to
	// (qpdf writes 100 objects a stream, 20-40 KB decoded; a larger
	// stream is decoded again by the walk, up to MaxDecodeBytes): with
	// prefetchAhead, decoding ahead holds at most 4 MB more than the walk
	// alone, and wastes at most 1 MB of inflating a stream.
	prefetchMaxBytes = 1 << 20
	// prefetchLook is how many entries of the walk's stack are looked at
	// for streams to queue, each time the walk moves to another stream:
	// this bounds the cost of looking on hostile page trees.
	prefetchLook = 256
	// prefetchStale is how many moves of the walk a queued stream it has
	// not asked for stays queued (the walk went elsewhere).
	prefetchStale = 8
)

// prefetchMinProcs is the GOMAXPROCS below which nothing is decoded ahead
// (a variable for tests).
var prefetchMinProcs = 2

// errStopped ends the jobs left when the scan returns.
var errStopped = errors.New("pdfscan: prefetch stopped")

// prefetcher is the worker and the queued streams. Only the walk's
// goroutine touches its fields but stop; the worker sees its jobs and stop.
type prefetcher struct {
	jobs  chan *prefetchJob // nil until the first job
	done  chan struct{}     // closed when the worker has returned
	stop  atomic.Bool
	queue []*prefetchJob // queued, not taken, in order: at most prefetchAhead
	skip  map[int]bool   // streams the walk decodes itself
	cur   int            // the stream the walk used last
	moves int            // times the walk moved to another stream
	off   bool           // one CPU, or too much decoded for nothing
	taken int            // streams the walk took decoded ahead (for tests)

	wasted   int64 // bytes decoded ahead that the walk did not take
	maxWaste int64 // at most, then off

	inflated atomic.Int64 // jobs inflated (for tests)
}

// prefetchJob is one object stream to decode: what the walk read of its
// dictionary, and what the decoder made of its data. Whoever claims it
// (the worker or the walk) decodes it and closes ready.
type prefetchJob struct {
	num      int
	sec      *io.SectionReader // over the caller's io.ReaderAt
	lim      int64             // most bytes to decode
	n, first int64
	moves    int // the walk's moves when queued

	claimed atomic.Bool
	ready   chan struct{} // closed when s, size and err are set
	s       *objStream
	size    int // decoded bytes, charged to the budget when taken
	err     error
}

func (j *prefetchJob) claim() bool { return j.claimed.CompareAndSwap(false, true) }

func (j *prefetchJob) isReady() bool {
	select {
	case <-j.ready:
		return true
	default:
		return false
	}
}

// prefetch queues, when the walk has just moved to stream cur, the next
// streams that the refs on top of the walk's stack live in.
func (d *doc) prefetch(cur int) {
	p := &d.pre
	if cur == p.cur || p.off {
		return
	}
	p.cur = cur
	p.moves++
	if p.jobs == nil && runtime.GOMAXPROCS(0) < prefetchMinProcs {
		p.off = true
		return
	}
	p.queue = slices.DeleteFunc(p.queue, func(j *prefetchJob) bool {
		if p.moves-j.moves <= prefetchStale {
			return false
		}
		// Unclaimed, it is never decoded; claimed, dropped when done. The
		// walk decodes the stream itself if it comes to it after all.
		if j.claim() || j.isReady() {
			p.skipStream(j.num)
			p.waste(j)
			return true
		}
		return false
	})
	if p.off {
		return
	}
	last := cur // neighbours on the stack mostly share a stream
	if d.walk == nil {
		return
	}
	looked := 0
	d.walk.upcoming(func(v any) bool {
		if looked++; looked > prefetchLook || len(p.queue) >= prefetchAhead {
			return false
		}
		r, ok := v.(Ref)
		if !ok {
			return true
		}
		e := d.xref.lookup(r.Num)
		if e.typ != entryCompressed || r.Gen != 0 || int(e.off) == last {
			return true
		}
		num := int(e.off)
		last = num
		if num == cur || d.walk.seen.has(r.Num) || p.queued(num) != nil || p.skip[num] || d.streams.has(num) {
			return true
		}
		j := d.prefetchJob(num)
		if j == nil {
			p.skipStream(num)
			return true
		}
		return p.submit(j)
	})
}

// skipStream leaves stream num to the walk from now on.
func (p *prefetcher) skipStream(num int) {
	if p.skip == nil {
		p.skip = map[int]bool{}
	}
	p.skip[num] = true
}

// waste counts the work of a job the walk did not take, and stops decoding
// ahead once that is over MaxDecodeBytes: the walk's budget bounds what it
// decodes, and this what is decoded for nothing, whatever a hostile page
// tree makes the walk skip.
func (p *prefetcher) waste(j *prefetchJob) {
	if !j.isReady() {
		return // claimed by the walk to be dropped: never decoded
	}
	if j.err == nil {
		p.wasted += int64(j.size)
	} else {
		p.wasted += j.lim
	}
	if p.wasted > p.maxWaste {
		p.off = true
	}
}

func (p *prefetcher) queued(num int) *prefetchJob {
	for _, j := range p.queue {
		if j.num == num {
			return j
		}
	}
	return nil
}

// prefetchJob reads the dictionary of object stream num for decoding
// ahead, or returns nil when the walk should decode the stream itself:
// anything but a plain FlateDecode stream with a direct, correct /Length
// (resolving a reference here could reenter the walk's object stream
// code).
func (d *doc) prefetchJob(num int) *prefetchJob {
	e := d.xref.lookup(num)
	if e.typ != entryInUse || e.gen != 0 || e.off <= 0 || e.off >= d.src.size {
		return nil
	}
	obj, start, err := d.src.objectAt(e.off, num)
	dict, _ := obj.(Dict)
	if err != nil || dict == nil || start < 0 || dict["Type"] != Name("ObjStm") {
		return nil
	}
	n, ok1 := dict["N"].(int64)
	first, ok2 := dict["First"].(int64)
	length, ok3 := dict["Length"].(int64)
	if !ok1 || !ok2 || !ok3 || n < 0 || first < 0 || length < 0 ||
		length > d.src.size-start || length > d.lim.MaxStreamBytes || !d.endsAt(start+length) {
		return nil
	}
	filter := dict["Filter"]
	if a, ok := filter.(Array); ok && len(a) == 1 {
		filter = a[0]
	}
	parms := dict["DecodeParms"]
	d.src.recycle(dict) // parsed here, not referred to
	if filter != Name("FlateDecode") || parms != nil {
		return nil
	}
	return &prefetchJob{
		num:   num,
		sec:   io.NewSectionReader(stopReader{d.src.r.r, &d.pre.stop}, start, length),
		lim:   min(prefetchMaxBytes, d.lim.MaxDecodeBytes, d.budget),
		n:     n,
		first: first,
		moves: d.pre.moves,
		ready: make(chan struct{}),
	}
}

// submit queues j for the worker, starting it on the first job. It
// reports false when the worker's channel is full (of jobs the walk
// decoded, took or dropped that the worker has not reached yet: it skips
// them when it does).
func (p *prefetcher) submit(j *prefetchJob) bool {
	if p.jobs == nil {
		p.jobs = make(chan *prefetchJob, 8*prefetchAhead)
		p.done = make(chan struct{})
		go p.work()
	}
	select {
	case p.jobs <- j:
		p.queue = append(p.queue, j)
		return true
	default:
		return false
	}
}

// takePrefetched returns stream num if it was queued and decoded without
// error, charging its size to the budget; nil when the walk must decode it
// itself. While the worker decodes it, the walk decodes the next queued
// streams that nobody has started.
func (d *doc) takePrefetched(num int) *objStream {
	p := &d.pre
	j := p.queued(num)
	if j == nil {
		return nil
	}
	p.queue = slices.DeleteFunc(p.queue, func(q *prefetchJob) bool { return q == j })
	if j.claim() {
		d.decodeHere(j)
	}
	for !j.isReady() {
		var next *prefetchJob
		for _, q := range p.queue {
			if q.claim() {
				next = q
				break
			}
		}
		if next == nil {
			<-j.ready // the worker ends every job, after at most lim bytes
			break
		}
		d.decodeHere(next)
	}
	if j.err != nil || int64(j.size) > d.budget {
		p.waste(j)
		return nil // decoded again by the walk, for its exact error
	}
	d.budget -= int64(j.size)
	p.taken++
	return j.s
}

// decodeHere decodes a job the walk claimed, with the walk's inflater and
// scratch buffer (free here: takePrefetched runs before objectStream
// decodes anything).
func (d *doc) decodeHere(j *prefetchJob) {
	d.scratch = d.pre.decode(j, &d.inflater, d.scratch)
	close(j.ready)
}

// close stops the worker and waits for it: the scan's memory is the
// caller's until Scan returns, not after.
func (p *prefetcher) close() {
	if p.jobs == nil {
		return
	}
	p.stop.Store(true)
	close(p.jobs)
	<-p.done
}

// work decodes the jobs nobody claimed before it, in order, with its own
// inflater and buffer: nothing is shared with the walk but the
// io.ReaderAt.
func (p *prefetcher) work() {
	defer close(p.done)
	var in inflater
	var scratch []byte
	for j := range p.jobs {
		if j.claim() {
			scratch = p.decode(j, &in, scratch)
			close(j.ready)
		}
	}
}

// decode decodes j into scratch, returned for the next job. A panic is the
// job's error: the walk then decodes the stream itself, where a panic is
// caught and reported by the caller of Scan.
func (p *prefetcher) decode(j *prefetchJob, in *inflater, scratch []byte) (out []byte) {
	defer func() {
		if v := recover(); v != nil {
			j.s, j.err = nil, fmt.Errorf("pdfscan: decoding ahead panicked: %v", v)
			*in = inflater{} // its state is unknown
			out = nil
		}
	}()
	if p.stop.Load() {
		j.err = errStopped
		return scratch
	}
	p.inflated.Add(1)
	j.sec.Seek(0, io.SeekStart)
	data, err := in.inflate(j.sec, j.lim, scratch[:0], nil) // bounded by prefetchMaxBytes
	if err != nil {
		j.err = err
		return scratch
	}
	s := &objStream{}
	if err := s.set(j.num, j.n, j.first, data); err != nil {
		j.err = err
		return data[:0]
	}
	j.s, j.size = s, len(data)
	return data[:0]
}

// stopReader fails once the scan has returned, so that the worker ends its
// job early.
type stopReader struct {
	r    io.ReaderAt
	stop *atomic.Bool
}

func (s stopReader) ReadAt(b []byte, off int64) (int, error) {
	if s.stop.Load() {
		return 0, errStopped
	}
	return s.r.ReadAt(b, off)
}
