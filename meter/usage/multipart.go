package usage

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"strings"

	"github.com/creditgate/creditgate/meter"
)

// maxNesting is how deep multipart bodies are opened inside multipart
// parts (multipart/mixed inside form-data is one level); deeper is a
// bad_request, since a reader that opens it would find files not counted.
const maxNesting = 4

// measureMultipart adds the files of a multipart body to u. Every part,
// form fields included, is classified by its content, after its
// Content-Transfer-Encoding (base64; quoted-printable is decoded by
// mime/multipart) is undone. A part with a filename, or a non-text
// Content-Type, is a file; a PDF or an image in any other part (a form
// field) is a file too, and the other fields count nothing. A nested
// multipart part is opened and its parts counted. A body without any
// part is malformed.
//
// seen counts the parts inspected, nested ones included: one more than
// MaxFiles is a bad_request.
func measureMultipart(ctx context.Context, u *Usage, r io.Reader, boundary string, opts Options, depth int, seen *int) error {
	if err := checkBoundary(boundary); err != nil {
		return err
	}
	src := &errRecorder{r: r}
	mr := multipart.NewReader(src, boundary)
	for parts := 0; ; parts++ {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) && parts == 0 {
			// The reader also ends this way when the boundary never
			// occurs; a form without parts carries nothing anyway.
			return malformed(src, errors.New("no part found"))
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return malformed(src, err)
		}
		if *seen == opts.MaxFiles {
			part.Close()
			return meter.Errorf(meter.ECodeBadRequest,
				"the multipart body has more than %d parts", opts.MaxFiles).
				With("max_files", opts.MaxFiles)
		}
		*seen++
		pr := &errRecorder{r: part}
		err = measurePart(ctx, u, part, pr, opts, depth, seen)
		part.Close()
		var e *meter.Error
		switch {
		case err == nil:
		case errors.As(err, &e):
			return err
		case pr.err != nil: // the part itself could not be read
			return malformed(src, err)
		default: // spooling failed on our side
			return err
		}
	}
}

// measurePart spools one part (memory, or a file past MemoryThreshold),
// decoded, then classifies it and counts its pages.
func measurePart(ctx context.Context, u *Usage, part *multipart.Part, body io.Reader, opts Options, depth int, seen *int) error {
	mediaType, params := "", map[string]string(nil)
	if ct := part.Header.Get("Content-Type"); ct != "" {
		var err error
		mediaType, params, err = mime.ParseMediaType(ct)
		if err != nil && !errors.Is(err, mime.ErrInvalidMediaParameter) {
			return meter.Errorf(meter.ECodeBadRequest,
				"a multipart part has a malformed Content-Type")
		}
	}
	filename := part.FileName()
	name := filename
	if name == "" {
		name = part.FormName()
	}
	isJSONPart := depth == 0 && opts.JSONPart != "" && part.FormName() == opts.JSONPart
	if opts.PartOnly && !isJSONPart && depth > 0 {
		_, err := io.Copy(io.Discard, body) // no JSON can name a nested part
		return err
	}

	// The whole body is already within MaxBody, so a part is too.
	b, err := spoolScanned(body, opts)
	if err != nil {
		return err
	}
	defer b.Close()
	if cte := strings.ToLower(strings.TrimSpace(part.Header.Get("Content-Transfer-Encoding"))); cte == "base64" {
		// Decoded as the upstream would decode it. Data that is not
		// base64 is left as sent: it is classified as it is.
		if d, err := spoolScanned(base64.NewDecoder(base64.StdEncoding, &spaceDropper{r: b.Reader()}), opts); err == nil {
			defer d.Close()
			b = d
		} else if meter.ErrorCode(err) != meter.ECodeBadRequest {
			return err
		}
	}

	if isJSONPart {
		return readJSONPart(ctx, u, b, opts)
	}
	if opts.PartOnly {
		// Classified by its bytes, not counted: the JSON that prices the
		// request may name it, and its declared type is no proof.
		f := File{Name: name, Field: part.FormName(), ContentType: mediaType, Size: b.Size()}
		if f.Kind, err = kindOf(b, mediaType, name); err != nil {
			return err
		}
		u.add(f)
		return nil
	}
	if strings.HasPrefix(mediaType, "multipart/") && depth >= maxNesting {
		return meter.Errorf(meter.ECodeBadRequest, "multipart bodies are nested more than %d levels deep", maxNesting).
			With("max_nesting", maxNesting)
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		// Counted apart, so that a nested body that is not multipart
		// after all adds nothing and is classified as a file instead.
		var nested Usage
		err := measureMultipart(ctx, &nested, b.Reader(), params["boundary"], opts, depth+1, seen)
		if err == nil {
			for _, f := range nested.Files {
				u.add(f)
			}
			u.Unpriced += nested.Unpriced
			return nil
		}
		if !errors.Is(err, errMalformed) {
			return err
		}
	}

	f := File{Name: name, ContentType: mediaType, Size: b.Size()}
	if depth == 0 {
		f.Field = part.FormName()
	}
	if err := measureFile(ctx, &f, b, opts); err != nil {
		return err
	}
	isFile := filename != "" || (mediaType != "" && !strings.HasPrefix(mediaType, "text/"))
	switch {
	case f.Kind != KindOther:
		u.add(f) // a document, whatever the part says
	case isFile:
		u.add(f)
		if filename != "" {
			u.Unpriced++ // a named file the pages cannot price
		}
	}
	return nil
}

// spoolScanned spools r within MaxBody and MemoryThreshold; a body that
// goes to disk has its PDF marks found as it is written (spool). A read
// error of a base64 decoder is a bad_request.
func spoolScanned(r io.Reader, opts Options) (*Body, error) {
	b, err := spool(r, opts.MaxBody, opts.MemoryThreshold, opts.TempDir, 0)
	var ce base64.CorruptInputError
	if errors.As(err, &ce) {
		return nil, meter.Errorf(meter.ECodeBadRequest, "a part's base64 content is malformed")
	}
	return b, err
}

// spaceDropper drops the white space base64 bodies are broken into lines
// with (base64.NewDecoder drops only CR and LF).
type spaceDropper struct{ r io.Reader }

func (s *spaceDropper) Read(p []byte) (int, error) {
	for {
		n, err := s.r.Read(p)
		j := 0
		for _, c := range p[:n] {
			if c != ' ' && c != '\t' {
				p[j] = c
				j++
			}
		}
		if j > 0 || err != nil {
			return j, err
		}
	}
}

// checkBoundary enforces RFC 2046: 1 to 70 characters from a fixed set, not
// ending in a space.
func checkBoundary(b string) error {
	const bchars = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=? "
	switch {
	case b == "":
		return &meter.Error{Code: meter.ECodeBadRequest, Message: "the multipart Content-Type has no boundary", Err: errMalformed}
	case len(b) > 70 || strings.HasSuffix(b, " ") ||
		strings.IndexFunc(b, func(r rune) bool { return !strings.ContainsRune(bchars, r) }) >= 0:
		return &meter.Error{Code: meter.ECodeBadRequest, Message: "the multipart boundary is invalid", Err: errMalformed}
	}
	return nil
}

// errMalformed is behind the bad_request of a body that is not multipart
// as declared: a nested part that is not is classified as a file instead.
var errMalformed = errors.New("malformed multipart")

// malformed turns a multipart parsing error into a bad_request, unless the
// cause was reading the spooled body itself, which is the server's fault.
func malformed(src *errRecorder, err error) error {
	if src.err != nil {
		return fmt.Errorf("usage: read body: %w", src.err)
	}
	return &meter.Error{Code: meter.ECodeBadRequest,
		Message: "the multipart body is malformed or truncated", Err: fmt.Errorf("%w: %w", errMalformed, err)}
}

// errRecorder remembers the first error other than io.EOF from r.
type errRecorder struct {
	r   io.Reader
	err error
}

func (e *errRecorder) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && e.err == nil {
		e.err = err
	}
	return n, err
}
