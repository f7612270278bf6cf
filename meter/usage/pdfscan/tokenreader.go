package pdfscan

// tokenReader reads the tokens of a classic xref table sequentially, in
// chunks, so that a table of a million entries is never held whole.
type tokenReader struct {
	src *source
	pos int64  // file offset of buf[i]
	buf []byte // the chunk read at pos-i
	i   int
}

const tokenChunk = 64 << 10

// start reads from off of src, keeping t's buffer.
func (t *tokenReader) start(src *source, off int64) {
	*t = tokenReader{src: src, pos: off, buf: t.buf[:0]}
}

// fill makes at least n bytes available from i, fewer at the end of the
// file, and returns how many are.
func (t *tokenReader) fill(n int) (int, error) {
	if len(t.buf)-t.i >= n {
		return len(t.buf) - t.i, nil
	}
	if t.pos >= t.src.size {
		return 0, nil
	}
	b, err := t.src.read(t.pos, max(n, tokenChunk))
	if err != nil {
		return 0, err
	}
	// The source reuses its buffer: keep a copy.
	t.buf = append(t.buf[:0], b...)
	t.i = 0
	return len(t.buf), nil
}

func (t *tokenReader) advance(n int) {
	t.i += n
	t.pos += int64(n)
}

// token skips white space and returns the next run of regular characters.
func (t *tokenReader) token() (string, error) {
	for {
		n, err := t.fill(1)
		if err != nil {
			return "", err
		}
		if n == 0 {
			return "", damaged("xref table ends at %d", t.pos)
		}
		if !isWhite(t.buf[t.i]) {
			break
		}
		t.advance(1)
	}
	var tok []byte
	for len(tok) < 64 {
		n, err := t.fill(1)
		if err != nil {
			return "", err
		}
		if n == 0 || !isRegular(t.buf[t.i]) {
			break
		}
		tok = append(tok, t.buf[t.i])
		t.advance(1)
	}
	switch string(tok) {
	case "":
		return "", damaged("unexpected %q in xref table at %d", t.buf[t.i], t.pos)
	case "xref": // every table's, as constants: no allocation
		return "xref", nil
	case "trailer":
		return "trailer", nil
	}
	return string(tok), nil
}

// entry reads "oooooooooo ggggg n" (or f).
func (t *tokenReader) entry() (off, gen int64, typ byte, err error) {
	for { // the end of the previous line
		n, err := t.fill(1)
		if err != nil {
			return 0, 0, 0, err
		}
		if n == 0 || !isWhite(t.buf[t.i]) {
			break
		}
		t.advance(1)
	}
	if n, err := t.fill(18); err != nil {
		return 0, 0, 0, err
	} else if n >= 18 {
		b := t.buf[t.i : t.i+18]
		o, ok1 := digits(b[:10])
		g, ok2 := digits(b[11:16])
		if ok1 && ok2 && b[10] == ' ' && b[16] == ' ' && (b[17] == 'n' || b[17] == 'f') &&
			(n == 18 || !isRegular(t.buf[t.i+18])) {
			t.advance(18)
			return o, g, b[17], nil
		}
	}
	var toks [3]string
	for i := range toks {
		if toks[i], err = t.token(); err != nil {
			return 0, 0, 0, err
		}
	}
	o, ok1 := digits([]byte(toks[0]))
	g, ok2 := digits([]byte(toks[1]))
	if !ok1 || !ok2 || (toks[2] != "n" && toks[2] != "f") {
		return 0, 0, 0, damaged("bad xref entry %q at %d", toks, t.pos)
	}
	return o, g, toks[2][0], nil
}

// digits parses an unsigned decimal of up to 18 digits.
func digits(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}
