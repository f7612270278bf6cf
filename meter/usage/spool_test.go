package usage

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"testing"
	"testing/iotest"

	"github.com/creditgate/creditgate/meter"
)

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// tempFiles lists the spool files in dir.
func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestSpool(t *testing.T) {
	const threshold, maxBody = 1000, 5000
	tests := []struct {
		name     string
		size     int
		inMemory bool
		tooLarge bool
	}{
		{"empty", 0, true, false},
		{"below threshold", 999, true, false},
		{"at threshold", 1000, true, false},
		{"one over threshold goes to disk", 1001, false, false},
		{"exactly MaxBody", maxBody, false, false},
		{"MaxBody+1 is too large", maxBody + 1, false, true},
		{"far over MaxBody", 10 * maxBody, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			data := randomBytes(t, tc.size)
			opts := Options{MaxBody: maxBody, MemoryThreshold: threshold, TempDir: dir}
			b, err := Spool(bytes.NewReader(data), opts)
			if tc.tooLarge {
				var e *meter.Error
				if !errors.As(err, &e) || e.Code != meter.ECodeBodyTooLarge || e.Details["max_body"] != int64(maxBody) {
					t.Fatalf("err = %#v, want body_too_large with max_body", err)
				}
				if files := tempFiles(t, dir); len(files) != 0 {
					t.Errorf("temp files left on error: %v", files)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if b.Size() != int64(tc.size) || b.InMemory() != tc.inMemory {
				t.Errorf("Size = %d, InMemory = %v; want %d, %v", b.Size(), b.InMemory(), tc.size, tc.inMemory)
			}
			wantFiles := 0
			if !tc.inMemory {
				wantFiles = 1
			}
			if files := tempFiles(t, dir); len(files) != wantFiles {
				t.Errorf("temp files while open = %v, want %d", files, wantFiles)
			}

			// Two independent readers, the second after the first was drained.
			for i := range 2 {
				got, err := io.ReadAll(b.Reader())
				if err != nil {
					t.Fatal(err)
				}
				if sha256.Sum256(got) != sha256.Sum256(data) {
					t.Fatalf("reader %d: bytes differ", i)
				}
			}
			if err := iotest.TestReader(io.NewSectionReader(b.ReaderAt(), 0, b.Size()), data); err != nil {
				t.Error(err)
			}

			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			if err := b.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
			if files := tempFiles(t, dir); len(files) != 0 {
				t.Errorf("temp files after Close: %v", files)
			}
		})
	}
}

func TestSpoolReadErrorCleansUp(t *testing.T) {
	dir := t.TempDir()
	boom := errors.New("connection reset")
	r := io.MultiReader(bytes.NewReader(randomBytes(t, 3000)), iotest.ErrReader(boom))
	_, err := Spool(r, Options{MemoryThreshold: 1000, TempDir: dir})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want %v", err, boom)
	}
	if meter.ErrorCode(err) != meter.ECodeInternal {
		t.Errorf("code = %s, want internal", meter.ErrorCode(err))
	}
	if files := tempFiles(t, dir); len(files) != 0 {
		t.Errorf("temp files left: %v", files)
	}
}

func TestSpoolDefaults(t *testing.T) {
	o := Options{}.withDefaults()
	if o.MaxBody != 100<<20 || o.MemoryThreshold != 1<<20 || o.MaxFiles != 100 || o.PDF.Timeout.Seconds() != 10 {
		t.Errorf("defaults = %+v", o)
	}
}

// In-memory bodies come from a buffer pool: every size and size hint
// (right, too small, too large, none) gives back exactly the bytes read,
// across the pool's classes, in memory up to the threshold.
func TestSpoolPooledSizes(t *testing.T) {
	const threshold = 3 << 20
	for _, size := range []int{1, minPooled - 1, minPooled, minPooled + 1, 100 << 10, 1 << 20, threshold} {
		data := randomBytes(t, size)
		for _, hint := range []int64{0, int64(size), int64(size / 2), int64(2 * size)} {
			b, err := Spool(iotest.HalfReader(bytes.NewReader(data)), Options{MemoryThreshold: threshold, SizeHint: hint})
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(b.Reader())
			if !b.InMemory() || b.Size() != int64(size) || !bytes.Equal(got, data) {
				t.Fatalf("size %d hint %d: in memory %v, size %d, equal %v", size, hint, b.InMemory(), b.Size(), bytes.Equal(got, data))
			}
			b.Close()
		}
	}
}

// A pooled buffer goes back to the pool on Close: a reader of the closed
// body (an upstream transport may still read a request body after the
// handler returned) gets an error, never the next body's bytes.
func TestSpoolReadAfterCloseFails(t *testing.T) {
	first := bytes.Repeat([]byte("a"), 20<<10)
	b, err := Spool(bytes.NewReader(first), Options{SizeHint: int64(len(first))})
	if err != nil {
		t.Fatal(err)
	}
	r := b.Reader()
	head := make([]byte, 10)
	if _, err := io.ReadFull(r, head); err != nil || string(head) != "aaaaaaaaaa" {
		t.Fatalf("read %q, %v", head, err)
	}
	b.Close()
	second := bytes.Repeat([]byte("b"), 20<<10)
	b2, err := Spool(bytes.NewReader(second), Options{SizeHint: int64(len(second))})
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	rest, err := io.ReadAll(r)
	if !errors.Is(err, os.ErrClosed) || bytes.Contains(rest, []byte("b")) {
		t.Fatalf("read after close: %d bytes (%q...), %v", len(rest), rest[:min(len(rest), 8)], err)
	}
	got, _ := io.ReadAll(b2.Reader())
	if !bytes.Equal(got, second) {
		t.Fatal("the second body is not its own bytes")
	}
}

// Close while a reader copies: the race detector checks the guard.
func TestSpoolCloseDuringRead(t *testing.T) {
	for i := 0; i < 50; i++ {
		b, err := Spool(bytes.NewReader(randomBytes(t, 64<<10)), Options{})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = io.Copy(io.Discard, iotest.OneByteReader(b.Reader()))
		}()
		b.Close()
		<-done
	}
}

func TestPoolIndex(t *testing.T) {
	for _, tc := range []struct{ n, i int }{{1, 0}, {minPooled, 0}, {minPooled + 1, 1}, {2 * minPooled, 1}, {maxPooled, len(bufPools) - 1}, {maxPooled + 1, len(bufPools)}} {
		if got := poolIndex(tc.n); got != tc.i {
			t.Errorf("poolIndex(%d) = %d, want %d", tc.n, got, tc.i)
		}
		if tc.i < len(bufPools) && cap(getBuf(tc.n)) != minPooled<<tc.i {
			t.Errorf("getBuf(%d) has capacity %d", tc.n, cap(getBuf(tc.n)))
		}
	}
}
