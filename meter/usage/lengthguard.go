package usage

import (
	"bytes"
	"strconv"
)

// checkStreamLengths guards pdfcpu against lying stream lengths. pdfcpu
// allocates each stream's declared /Length before reading it, so a small
// file with thousands of streams that each claim a megabyte makes it
// allocate gigabytes (a 1.5 MB file reached 7 GB RSS in tests). Honest
// streams do not overlap, so their lengths add up to less than the file;
// this scan adds up what pdfcpu would allocate and refuses the document
// when that is far more than the file.
//
// It runs only on the pdfcpu fallback (scan.go), which reads the whole
// document anyway; the lazy scanner reads no stream but the xref and object
// streams, and checks each length against its endstream before reading.
//
// Lengths given as indirect objects are resolved when the object is plain
// text in the file. One stored in a compressed object stream cannot be
// seen here and is assumed honest (bounded by the distance to the next
// "endstream").
func checkStreamLengths(b []byte) error {
	size := int64(len(b))
	budget := 2*size + 1<<20
	ints := indirectInts(b)
	var total int64
	for i := 0; ; {
		j := bytes.Index(b[i:], []byte("stream"))
		if j < 0 {
			break
		}
		kw := i + j
		i = kw + len("stream")
		if kw >= 3 && string(b[kw-3:kw]) == "end" {
			continue
		}
		start, ok := streamDataStart(b, i)
		if !ok {
			continue
		}
		gap := size - int64(start)
		if e := bytes.Index(b[start:], []byte("endstream")); e >= 0 {
			gap = int64(e)
		}
		claim := gap
		if l, ok := declaredLength(b[max(0, kw-4096):kw], ints); ok {
			claim = min(l, size)
		}
		total += claim
		if total > budget {
			return unreadable(ReasonTooLarge, "declared stream lengths exceed %d bytes in a %d-byte file", budget, size)
		}
	}
	return nil
}

// streamDataStart returns where a stream's data begins after its keyword
// ending at i: the keyword is followed by CRLF or LF (CR alone is tolerated).
func streamDataStart(b []byte, i int) (int, bool) {
	switch {
	case i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n':
		return i + 2, true
	case i < len(b) && (b[i] == '\n' || b[i] == '\r'):
		return i + 1, true
	}
	return 0, false
}

// declaredLength parses the last /Length entry of the stream dictionary
// that ends the window before a "stream" keyword.
func declaredLength(window []byte, ints map[int]int64) (int64, bool) {
	if o := bytes.LastIndex(window, []byte(" obj")); o >= 0 {
		window = window[o:]
	}
	// The key must be followed by white space: /Length1 is another key.
	k := bytes.LastIndex(window, []byte("/Length"))
	for k >= 0 && (k+7 >= len(window) || !isSpace(window[k+7])) {
		k = bytes.LastIndex(window[:k], []byte("/Length"))
	}
	if k < 0 {
		return 0, false
	}
	rest := window[k+len("/Length"):]
	n1, rest, ok := parseUint(rest)
	if !ok {
		return 0, false
	}
	if _, after, ok := parseUint(rest); ok {
		if after = bytes.TrimLeft(after, " \t\r\n"); len(after) > 0 && after[0] == 'R' {
			v, found := ints[int(min(n1, 1<<31))]
			return v, found
		}
	}
	return n1, true
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == 0
}

// parseUint skips whitespace and parses an unsigned integer.
func parseUint(b []byte) (int64, []byte, bool) {
	b = bytes.TrimLeft(b, " \t\r\n")
	n := 0
	for n < len(b) && n < 18 && b[n] >= '0' && b[n] <= '9' {
		n++
	}
	if n == 0 {
		return 0, b, false
	}
	v, err := strconv.ParseInt(string(b[:n]), 10, 64)
	return v, b[n:], err == nil
}

// indirectInts maps the numbers of plain-text objects that hold a single
// integer ("12 0 obj 345 endobj") to that integer.
func indirectInts(b []byte) map[int]int64 {
	m := map[int]int64{}
	for i := 0; ; {
		j := bytes.Index(b[i:], []byte("obj"))
		if j < 0 {
			return m
		}
		kw := i + j
		i = kw + 3
		if kw >= 3 && string(b[kw-3:kw]) == "end" {
			continue
		}
		v, rest, ok := parseUint(b[i:])
		if !ok || !bytes.HasPrefix(bytes.TrimLeft(rest, " \t\r\n"), []byte("endobj")) {
			continue
		}
		if nr, ok := objNumberBefore(b[max(0, kw-32):kw]); ok {
			m[nr] = v
		}
	}
}

// objNumberBefore parses "<nr> <gen> " at the end of b.
func objNumberBefore(b []byte) (int, bool) {
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0, false
	}
	nr, err := strconv.Atoi(string(f[len(f)-2]))
	if err != nil || nr < 0 {
		return 0, false
	}
	if _, err := strconv.Atoi(string(f[len(f)-1])); err != nil {
		return 0, false
	}
	return nr, true
}
