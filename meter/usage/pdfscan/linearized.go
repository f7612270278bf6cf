package pdfscan

import (
	"bytes"
	"io"
)

// firstObject returns where the number of the first "N G obj" in b starts
// (at b's start or after white space), or -1: what the regular expression
// (?:^|[\r\n\t\f ])(\d+)[\r\n\t\f ]+\d+[\r\n\t\f ]+obj matches first,
// without its cost on every scan. Its classes are disjoint, so reading
// each run greedily is the only way it can match.
func firstObject(b []byte) int {
	for i := range b {
		if i > 0 && !isHeadSpace(b[i-1]) {
			continue
		}
		j := digitRun(b, i)
		if j == i {
			continue
		}
		k := spaceRun(b, j)
		if k == j {
			continue
		}
		l := digitRun(b, k)
		if l == k {
			continue
		}
		m := spaceRun(b, l)
		if m > l && bytes.HasPrefix(b[m:], []byte("obj")) {
			return i
		}
	}
	return -1
}

func isHeadSpace(c byte) bool {
	return c == '\r' || c == '\n' || c == '\t' || c == '\f' || c == ' '
}

func digitRun(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

func spaceRun(b []byte, i int) int {
	for i < len(b) && isHeadSpace(b[i]) {
		i++
	}
	return i
}

// LinearizedPages returns the page count (/N) of the linearization
// dictionary that opens the PDF of size bytes in r when its /L is the
// file's length, else 0. pdfinfo reports that /N rather than the page
// tree's, so the count must not be below it.
func LinearizedPages(r io.ReaderAt, size int64) int64 {
	src := source{r: &recorder{r: r}, size: size}
	defer src.release()
	return src.linearizedPages()
}

func (s *source) linearizedPages() int64 {
	// The reuse window, not a buffer of its own: head is done with
	// before objectAt reads into the window again.
	head, err := s.read(0, 1024)
	if err != nil {
		return 0
	}
	i := bytes.Index(head, []byte("%PDF-"))
	if i < 0 {
		return 0
	}
	m := firstObject(head[i:])
	if m < 0 {
		return 0
	}
	obj, _, err := s.objectAt(int64(i+m), -1)
	dict, ok := obj.(Dict)
	if err != nil || !ok {
		return 0
	}
	_, ok = number(dict["Linearized"])
	l, ok1 := dict["L"].(int64)
	pages, ok2 := dict["N"].(int64)
	s.recycle(dict) // parsed here, not referred to
	if !ok {
		return 0
	}
	if !ok1 || !ok2 || l != s.size || pages <= 0 {
		return 0
	}
	return min(pages, maxCount)
}

// AtLeast returns p counting at least n pages (a linearization /N), or
// ErrTooManyPages when n is over max (if positive). The pages it adds have
// no known box.
func (p Pages) AtLeast(n, max int64) (Pages, error) {
	if max > 0 && n > max {
		return Pages{}, &TooManyPages{n, max}
	}
	if int64(p.Count) < n {
		p.Count = int(n)
	}
	return p, nil
}
