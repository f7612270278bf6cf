package pdfscan

import (
	"bytes"
	"io"
	"regexp"
)

// firstObject finds "N G obj" at the start of a line in a file's head.
var firstObject = regexp.MustCompile(`(?:^|[\r\n\t\f ])(\d+)[\r\n\t\f ]+\d+[\r\n\t\f ]+obj`)

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
	head := make([]byte, min(s.size, 1024))
	n, _ := s.r.ReadAt(head, 0)
	head = head[:n]
	i := bytes.Index(head, []byte("%PDF-"))
	if i < 0 {
		return 0
	}
	m := firstObject.FindSubmatchIndex(head[i:])
	if m == nil {
		return 0
	}
	obj, _, err := s.objectAt(int64(i+m[2]), -1)
	dict, ok := obj.(Dict)
	if err != nil || !ok {
		return 0
	}
	if _, ok := number(dict["Linearized"]); !ok {
		return 0
	}
	l, ok1 := dict["L"].(int64)
	pages, ok2 := dict["N"].(int64)
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
