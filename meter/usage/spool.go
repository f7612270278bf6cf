package usage

import (
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"sync"

	"github.com/creditgate/creditgate/meter"
)

// Body is a request body spooled once so it can be measured and then
// forwarded byte for byte. Small bodies live in memory, larger ones in a
// temp file that Close removes.
type Body struct {
	size int64
	mem  []byte   // set when the body stayed in memory
	file *os.File // set when the body was spooled to disk
	// pooled: mem came from the buffer pool and goes back to it on
	// Close. memMu orders that against reads: a reader still at work
	// (an upstream transport may read a request body after the handler
	// returned) holds it shared, Close exclusively; after Close reads
	// fail instead of seeing another request's bytes.
	pooled bool
	memMu  sync.RWMutex
	closed bool

	closeOnce sync.Once
	closeErr  error
	onClose   []func()

	// marks are the PDF marks of the body, found while it was written to
	// its spool file; nil until then (marksOf scans an in-memory body).
	marks *markScan
}

// Spool reads r into a Body. It reads at most opts.MaxBody+1 bytes: one
// byte more than allowed is how an oversized body is told apart from one of
// exactly MaxBody bytes. On any error nothing is left behind on disk.
func Spool(r io.Reader, opts Options) (*Body, error) {
	opts = opts.withDefaults()
	return spool(r, opts.MaxBody, opts.MemoryThreshold, opts.TempDir, opts.SizeHint)
}

func spool(r io.Reader, maxBody, threshold int64, tempDir string, hint int64) (*Body, error) {
	threshold = min(threshold, maxBody)

	// Read up to threshold+1 bytes into memory first: most bodies end
	// there. The buffer comes from a pool, sized by the declared length
	// when there is one: a buffer grown by doubling, then dropped, was
	// most of a metered request's allocations.
	start := int64(minPooled)
	if hint > 0 {
		start = min(hint+1, threshold+1)
	}
	buf, n, err := readInto(getBuf(int(start)), io.LimitReader(r, threshold+1))
	if err != nil {
		putBuf(buf)
		return nil, fmt.Errorf("usage: read body: %w", err)
	}
	if n <= threshold {
		return &Body{size: n, mem: buf[:n], pooled: true}, nil
	}
	if n > maxBody {
		putBuf(buf)
		return nil, tooLarge(maxBody)
	}

	f, err := createSpoolFile(tempDir)
	if err != nil {
		putBuf(buf)
		return nil, fmt.Errorf("usage: create spool file: %w", err)
	}
	// A body this large is scanned for PDF marks as it is written, not
	// read again from disk to be classified.
	b := &Body{file: f, marks: newMarkScan()}
	b.marks.Write(buf[:n])
	_, err = f.Write(buf[:n])
	putBuf(buf)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("usage: write spool file: %w", err)
	}
	m, err := io.Copy(f, io.TeeReader(io.LimitReader(r, maxBody+1-n), b.marks))
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("usage: spool body: %w", err)
	}
	b.size = n + m
	if b.size > maxBody {
		b.Close()
		return nil, tooLarge(maxBody)
	}
	return b, nil
}

// readInto reads r to its end into buf (a pooled buffer, length 0),
// moving to a larger pooled buffer when it is full.
func readInto(buf []byte, r io.Reader) ([]byte, int64, error) {
	for {
		if len(buf) == cap(buf) {
			bigger := getBuf(2 * cap(buf))
			bigger = append(bigger, buf...)
			putBuf(buf)
			buf = bigger
		}
		m, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err == io.EOF {
			return buf, int64(len(buf)), nil
		}
		if err != nil {
			return buf, int64(len(buf)), err
		}
	}
}

func tooLarge(maxBody int64) *meter.Error {
	return meter.Errorf(meter.ECodeBodyTooLarge, "request body exceeds %d bytes", maxBody).
		With("max_body", maxBody)
}

// Size returns the number of bytes in the body.
func (b *Body) Size() int64 { return b.size }

// Reader returns a fresh reader positioned at byte 0. Each call returns an
// independent reader, so the body can be forwarded after it was measured.
func (b *Body) Reader() io.ReadSeeker {
	return io.NewSectionReader(b.ReaderAt(), 0, b.size)
}

// ReaderAt returns the body as an io.ReaderAt, safe for concurrent use.
// After Close its reads fail.
func (b *Body) ReaderAt() io.ReaderAt {
	if b.file != nil {
		return b.file
	}
	return memReader{b}
}

// memReader reads an in-memory body while it is open.
type memReader struct{ b *Body }

func (m memReader) ReadAt(p []byte, off int64) (int, error) {
	b := m.b
	b.memMu.RLock()
	defer b.memMu.RUnlock()
	if b.closed {
		return 0, os.ErrClosed
	}
	if off < 0 {
		return 0, errors.New("usage: negative offset")
	}
	if off >= int64(len(b.mem)) {
		return 0, io.EOF
	}
	n := copy(p, b.mem[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// InMemory reports whether the body stayed in memory.
func (b *Body) InMemory() bool { return b.file == nil }

// OnClose registers f to run when the body is closed (releasing what was
// held for it). Not safe for use concurrent with Close.
func (b *Body) OnClose(f func()) { b.onClose = append(b.onClose, f) }

// Close removes the temp file of a spooled body; readers of that file fail
// afterwards. It is safe to call more than once.
func (b *Body) Close() error {
	b.closeOnce.Do(func() {
		for _, f := range b.onClose {
			f()
		}
		if b.file == nil {
			b.memMu.Lock()
			b.closed = true
			if b.pooled {
				putBuf(b.mem)
			}
			b.mem = nil
			b.memMu.Unlock()
			return
		}
		// Removed before it is closed: closing releases the file's lock,
		// after which RemoveStaleSpools may remove it first.
		name := b.file.Name()
		b.closeErr = errors.Join(os.Remove(name), b.file.Close())
	})
	return b.closeErr
}

// The buffer pool: one sync.Pool per power-of-two capacity from minPooled
// to maxPooled. Larger buffers (a memory_threshold above maxPooled) are
// allocated and left to the garbage collector.
const (
	minPooled = 16 << 10
	maxPooled = 4 << 20
)

// 9 pools: 16 KiB << 0..8, up to maxPooled.
var bufPools [9]sync.Pool

// poolIndex is the pool of buffers of capacity minPooled << i >= n.
func poolIndex(n int) int {
	if n <= minPooled {
		return 0
	}
	return bits.Len(uint((n - 1) / minPooled))
}

// getBuf returns an empty buffer of capacity at least n.
func getBuf(n int) []byte {
	i := poolIndex(n)
	if i >= len(bufPools) {
		return make([]byte, 0, n)
	}
	if p, ok := bufPools[i].Get().(*[]byte); ok {
		return (*p)[:0]
	}
	return make([]byte, 0, minPooled<<i)
}

// putBuf returns a buffer of getBuf to its pool.
func putBuf(b []byte) {
	c := cap(b)
	if c < minPooled || c > maxPooled || c&(c-1) != 0 {
		return
	}
	i := poolIndex(c)
	b = b[:0]
	bufPools[i].Put(&b)
}
