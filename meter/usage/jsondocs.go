package usage

// Documents inside JSON: document APIs that take the file base64-encoded
// in a JSON field ({"document": "JVBERi0..."}) are counted like uploads.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"

	"github.com/creditgate/creditgate/meter"
)

// JSON document modes, for JSONDocs.Mode.
const (
	// JSONAuto: every string of a JSON body that decodes (base64, or a
	// data: URL) to a PDF or an image is a document.
	JSONAuto = ""
	// JSONOff: JSON bodies are not searched; one is unpriced.
	JSONOff = "off"
	// JSONSelect: the strings JSONDocs.Select chooses are documents; one
	// that is not a PDF or an image is unpriced (a URL, say).
	JSONSelect = "select"
)

// JSONDocs says which strings of a JSON body hold documents.
type JSONDocs struct {
	Mode string
	// Select returns the paths and values of the strings that hold
	// documents, for JSONSelect. The gateway builds it from JSONPath
	// queries (package pricing); an invalid body is an error.
	Select func(body []byte) (paths, values []string, err error)
}

// minDocLen is the shortest string tried as a document in JSONAuto mode:
// 24 decoded bytes, below the smallest PDF or image worth a page, so
// that short ids that happen to be base64 are not decoded.
const minDocLen = 32

// looksLikeJSON reports whether the body starts, after white space, as a
// JSON object or array.
func looksLikeJSON(b *Body) bool {
	head := make([]byte, 64)
	n, _ := b.ReaderAt().ReadAt(head, 0)
	t := bytes.TrimLeft(head[:n], " \t\r\n")
	return len(t) > 0 && (t[0] == '{' || t[0] == '[')
}

// measureJSON adds the documents of a JSON body to u and returns how many
// strings it took as documents: 0 leaves the body to be classified as a
// whole. A body that is not valid JSON carries what was found before the
// error. Its memory (the body and the decoded documents) is held from
// opts.Budget while it runs.
func measureJSON(ctx context.Context, u *Usage, body *Body, opts Options) (int, error) {
	need := 3 * body.Size()
	if opts.JSONDocuments.Mode == JSONSelect {
		need = 6 * body.Size() // the parsed tree, as pricing's JSON rules
	}
	release, err := opts.Budget.Hold(ctx, need)
	if err != nil {
		return 0, err
	}
	defer release()

	if opts.JSONDocuments.Mode == JSONSelect {
		raw := make([]byte, body.Size())
		if _, err := io.ReadFull(body.Reader(), raw); err != nil {
			return 0, err
		}
		paths, values, err := opts.JSONDocuments.Select(raw)
		if err != nil {
			return 0, nil // not JSON: the body is unpriced
		}
		if len(values) > opts.MaxFiles {
			return 0, tooManyJSONDocs(opts.MaxFiles)
		}
		for i, s := range values {
			f, err := jsonDoc(ctx, paths[i], s, opts)
			if err != nil {
				return 0, err
			}
			u.add(f)
			if f.Kind == KindOther {
				u.Unpriced++
			}
		}
		return len(values), nil
	}

	found := 0
	err = walkJSONStrings(body.Reader(), func(path, s string) error {
		if len(s) < minDocLen {
			return nil
		}
		f, err := jsonDoc(ctx, path, s, opts)
		if err == nil && f.Kind != KindOther {
			if found == opts.MaxFiles {
				return tooManyJSONDocs(opts.MaxFiles)
			}
			u.add(f)
			found++
		}
		return err
	})
	var se *json.SyntaxError
	if err != nil && !errors.As(err, &se) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return found, err
	}
	return found, nil
}

func tooManyJSONDocs(n int) error {
	return meter.Errorf(meter.ECodeBadRequest, "the JSON body carries more than %d documents", n).
		With("max_files", n)
}

// jsonDoc decodes and measures the document in one JSON string. A string
// that is not base64 is a file of kind other.
func jsonDoc(ctx context.Context, path, s string, opts Options) (File, error) {
	f := File{Name: path}
	doc, ok := decodeBase64Doc(s)
	if !ok {
		f.Kind, f.Size = KindOther, int64(len(s))
		return f, nil
	}
	f.Size = int64(len(doc))
	b := &Body{size: int64(len(doc)), mem: doc}
	defer b.Close()
	return f, measureFile(ctx, &f, b, opts)
}

// decodeBase64Doc decodes a base64 string (standard or URL alphabet,
// padded or not, broken into lines or not) or a base64 data: URL.
func decodeBase64Doc(s string) ([]byte, bool) {
	if rest, ok := strings.CutPrefix(s, "data:"); ok {
		meta, data, ok := strings.Cut(rest, ",")
		if !ok || !strings.HasSuffix(strings.ToLower(meta), ";base64") {
			return nil, false
		}
		s = data
	}
	if strings.ContainsAny(s, " \t\r\n") {
		s = strings.Map(func(r rune) rune {
			if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
				return -1
			}
			return r
		}, s)
	}
	s = strings.TrimRight(s, "=")
	enc := base64.RawStdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.RawURLEncoding
	}
	b, err := enc.DecodeString(s)
	return b, err == nil && len(b) > 0
}

// walkJSONStrings calls f with the path and value of every string value
// (not member name) of the JSON document read from r, in document order.
func walkJSONStrings(r io.Reader, f func(path, s string) error) error {
	type frame struct {
		obj    bool
		key    string
		index  int
		hasKey bool
	}
	var stack []frame
	dec := json.NewDecoder(r)
	path := func() string {
		var b strings.Builder
		b.WriteString("$")
		for _, fr := range stack {
			if fr.obj && isName(fr.key) {
				b.WriteString("." + fr.key)
			} else if fr.obj {
				b.WriteString("[" + strconv.Quote(fr.key) + "]")
			} else {
				b.WriteString("[" + strconv.Itoa(fr.index) + "]")
			}
		}
		return b.String()
	}
	// value ends a value in the innermost container.
	value := func() {
		if n := len(stack); n > 0 {
			if stack[n-1].obj {
				stack[n-1].hasKey = false
			} else {
				stack[n-1].index++
			}
		}
	}
	for {
		tok, err := dec.Token()
		if err == io.EOF && len(stack) == 0 {
			return nil
		}
		if err != nil {
			return err
		}
		if n := len(stack); n > 0 && stack[n-1].obj && !stack[n-1].hasKey {
			if k, ok := tok.(string); ok {
				stack[n-1].key, stack[n-1].hasKey = k, true
				continue
			}
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				stack = append(stack, frame{obj: t == '{'})
			default:
				stack = stack[:len(stack)-1]
				value()
			}
		case string:
			if err := f(path(), t); err != nil {
				return err
			}
			value()
		default:
			value()
		}
	}
}

// isName reports whether a member name can be written $.name.
func isName(s string) bool {
	for i, c := range s {
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return s != ""
}
