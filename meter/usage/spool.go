package usage

import (
	"bytes"
	"errors"
	"fmt"
	"io"
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

	closeOnce sync.Once
	closeErr  error
	onClose   []func()
}

// Spool reads r into a Body. It reads at most opts.MaxBody+1 bytes: one
// byte more than allowed is how an oversized body is told apart from one of
// exactly MaxBody bytes. On any error nothing is left behind on disk.
func Spool(r io.Reader, opts Options) (*Body, error) {
	opts = opts.withDefaults()
	return spool(r, opts.MaxBody, opts.MemoryThreshold, opts.TempDir)
}

func spool(r io.Reader, maxBody, threshold int64, tempDir string) (*Body, error) {
	threshold = min(threshold, maxBody)

	// Read up to threshold+1 bytes into memory first: most bodies end there.
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(r, threshold+1))
	if err != nil {
		return nil, fmt.Errorf("usage: read body: %w", err)
	}
	if n <= threshold {
		return &Body{size: n, mem: buf.Bytes()}, nil
	}
	if n > maxBody {
		return nil, tooLarge(maxBody)
	}

	f, err := os.CreateTemp(tempDir, "creditgate-body-*")
	if err != nil {
		return nil, fmt.Errorf("usage: create spool file: %w", err)
	}
	b := &Body{file: f}
	if _, err := f.Write(buf.Bytes()); err != nil {
		b.Close()
		return nil, fmt.Errorf("usage: write spool file: %w", err)
	}
	m, err := io.Copy(f, io.LimitReader(r, maxBody+1-n))
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
func (b *Body) ReaderAt() io.ReaderAt {
	if b.file != nil {
		return b.file
	}
	return bytes.NewReader(b.mem)
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
			return
		}
		name := b.file.Name()
		b.closeErr = errors.Join(b.file.Close(), os.Remove(name))
	})
	return b.closeErr
}
