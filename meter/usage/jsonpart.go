package usage

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/creditgate/creditgate/meter"
)

// MaxJSONPart bounds the multipart part read as JSON for pricing
// (Options.JSONPart): it is parsed in memory.
const MaxJSONPart = 16 << 20

// readJSONPart keeps the content of the part Options.JSONPart names in
// u.JSONPart, instead of measuring it as a file. The bytes and their
// parsed form live in memory: about 4x its size is held against the
// Budget until Usage.Release. A second part of that name is refused: the
// upstream would read one of them, and the gateway cannot know which.
func readJSONPart(ctx context.Context, u *Usage, b *Body, opts Options) error {
	if u.JSONPart != nil {
		return meter.Errorf(meter.ECodeBadRequest, "the multipart body has more than one %q part", opts.JSONPart).
			With("part", opts.JSONPart)
	}
	if b.Size() > MaxJSONPart {
		return meter.Errorf(meter.ECodeBodyTooLarge, "the %q part priced by its JSON may be at most %d bytes", opts.JSONPart, MaxJSONPart).
			With("max_body", MaxJSONPart)
	}
	release, err := opts.Budget.Hold(ctx, 4*b.Size())
	if err != nil {
		return err
	}
	u.holds = append(u.holds, release)
	data := make([]byte, b.Size())
	if _, err := io.ReadFull(b.Reader(), data); err != nil {
		return fmt.Errorf("usage: read part: %w", err)
	}
	u.JSONPart = data
	return nil
}

// Release gives back the memory held for JSONPart; the caller calls it
// once it no longer needs JSONPart (when the request ends). Safe to call
// more than once.
func (u *Usage) Release() {
	for _, r := range u.holds {
		r()
	}
	u.holds = nil
}

// TypedJSONPart returns JSONPart with the declared types of the files it
// names replaced by what their bytes are: every object whose "file" is the
// form name of a top-level part of the request gets that part's
// "content_type" from its Kind (a PDF "application/pdf"; an image keeps a
// declared image/* type, else "image/*"). A Build request priced by the
// types its instructions declare (PSPDFKit's image conversion) is then
// priced by what it sends: declaring another type, or none, changes
// nothing. Objects naming no such part, and JSON that does not parse (its
// pricing refuses it), are returned as they are.
func (u *Usage) TypedJSONPart() []byte {
	kinds := map[string]File{}
	for _, f := range u.Files {
		if f.Field != "" && f.Kind != KindOther {
			kinds[f.Field] = f
		}
	}
	if len(kinds) == 0 || u.JSONPart == nil {
		return u.JSONPart
	}
	dec := json.NewDecoder(bytes.NewReader(u.JSONPart))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return u.JSONPart
	}
	if !typeFiles(doc, kinds) {
		return u.JSONPart
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return u.JSONPart
	}
	return out
}

// typeFiles sets the content types of the objects in v that name a file
// of kinds; it reports whether it changed any.
func typeFiles(v any, kinds map[string]File) bool {
	changed := false
	switch x := v.(type) {
	case map[string]any:
		if name, ok := x["file"].(string); ok {
			if f, ok := kinds[name]; ok {
				declared, _ := x["content_type"].(string)
				want := "application/pdf"
				if f.Kind == KindImage {
					want = "image/*"
					if strings.HasPrefix(strings.ToLower(declared), "image/") {
						want = declared
					}
				}
				if declared != want {
					x["content_type"], changed = want, true
				}
			}
		}
		for _, c := range x {
			changed = typeFiles(c, kinds) || changed
		}
	case []any:
		for _, c := range x {
			changed = typeFiles(c, kinds) || changed
		}
	}
	return changed
}
