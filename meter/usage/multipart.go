package usage

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"strings"

	"github.com/creditgate/creditgate/meter"
)

// measureMultipart counts the files of a multipart body. A part is a file
// when it has a filename or a non-text Content-Type; other parts are form
// fields and count nothing. Nested multipart parts are files of kind other.
// A body without any part is malformed.
func measureMultipart(ctx context.Context, r io.Reader, boundary string, opts Options) (Usage, error) {
	if err := checkBoundary(boundary); err != nil {
		return Usage{}, err
	}
	src := &errRecorder{r: r}
	mr := multipart.NewReader(src, boundary)
	var u Usage
	for parts := 0; ; parts++ {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) && parts == 0 {
			// The reader also ends this way when the boundary never
			// occurs; a form without parts carries nothing anyway.
			return Usage{}, malformed(src, errors.New("no part found"))
		}
		if errors.Is(err, io.EOF) {
			return u, nil
		}
		if err != nil {
			return Usage{}, malformed(src, err)
		}
		if parts == opts.MaxFiles {
			part.Close()
			return Usage{}, meter.Errorf(meter.ECodeBadRequest,
				"the multipart body has more than %d parts", opts.MaxFiles).
				With("max_files", opts.MaxFiles)
		}
		pr := &errRecorder{r: part}
		f, isFile, err := measurePart(ctx, part, pr, opts)
		part.Close()
		var e *meter.Error
		switch {
		case err == nil:
		case errors.As(err, &e):
			return Usage{}, err
		case pr.err != nil: // the part itself could not be read
			return Usage{}, malformed(src, err)
		default: // spooling failed on our side
			return Usage{}, err
		}
		if isFile {
			u.add(f)
		}
	}
}

// measurePart classifies one part and counts its pages. Only PDF parts are
// copied into a spool of their own, since page counting reads at random
// offsets; the others are only read through to learn their size.
func measurePart(ctx context.Context, part *multipart.Part, body io.Reader, opts Options) (File, bool, error) {
	mediaType := ""
	if ct := part.Header.Get("Content-Type"); ct != "" {
		var err error
		mediaType, _, err = mime.ParseMediaType(ct)
		if err != nil && !errors.Is(err, mime.ErrInvalidMediaParameter) {
			return File{}, false, meter.Errorf(meter.ECodeBadRequest,
				"a multipart part has a malformed Content-Type")
		}
	}
	name := part.FileName()
	isFile := name != "" || (mediaType != "" && !strings.HasPrefix(mediaType, "text/"))
	if !isFile {
		_, err := io.Copy(io.Discard, body)
		return File{}, false, err
	}
	if name == "" {
		name = part.FormName()
	}

	f := File{Name: name, ContentType: mediaType}
	head := bufio.NewReaderSize(body, sniffLen)
	kind, err := classify(mediaType, name, head)
	if err != nil {
		return File{}, false, err
	}
	f.Kind = kind
	if kind != KindPDF {
		f.Size, err = io.Copy(io.Discard, head)
		if err == nil {
			err = countFile(ctx, &f, nil, opts)
		}
		return f, true, err
	}

	// The whole body is already within MaxBody, so a part is too.
	b, err := spool(head, opts.MaxBody, opts.MemoryThreshold, opts.TempDir, 0)
	if err != nil {
		return File{}, false, err
	}
	defer b.Close()
	f.Size = b.Size()
	if err := countFile(ctx, &f, b.ReaderAt(), opts); err != nil {
		return File{}, false, err
	}
	return f, true, nil
}

// checkBoundary enforces RFC 2046: 1 to 70 characters from a fixed set, not
// ending in a space.
func checkBoundary(b string) error {
	const bchars = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=? "
	switch {
	case b == "":
		return meter.Errorf(meter.ECodeBadRequest, "the multipart Content-Type has no boundary")
	case len(b) > 70 || strings.HasSuffix(b, " ") ||
		strings.IndexFunc(b, func(r rune) bool { return !strings.ContainsRune(bchars, r) }) >= 0:
		return meter.Errorf(meter.ECodeBadRequest, "the multipart boundary is invalid")
	}
	return nil
}

// malformed turns a multipart parsing error into a bad_request, unless the
// cause was reading the spooled body itself, which is the server's fault.
func malformed(src *errRecorder, err error) error {
	if src.err != nil {
		return fmt.Errorf("usage: read body: %w", src.err)
	}
	return &meter.Error{Code: meter.ECodeBadRequest,
		Message: "the multipart body is malformed or truncated", Err: err}
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
