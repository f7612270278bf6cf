package pricing

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"

	"github.com/creditgate/creditgate/meter"
)

// Bounds on a JSON body read for pricing. The body's size is bounded by
// the handler (max_body); these bound the tree built from it and the work
// done on it, whatever its shape.
const (
	maxJSONDepth  = 64      // nesting of arrays and objects
	maxJSONValues = 1 << 18 // values in the document
	// maxJSONSteps bounds the nodes visited by all queries of one rule
	// (descendant segments and filters revisit nodes).
	maxJSONSteps = 2 << 20
)

// A parsed document holds: nil, bool, float64, string, []any, *object.
type jsonDoc struct{ root any }

// object keeps members in document order, so matches are listed in the
// order the client wrote them. A repeated key keeps its first position
// and its last value, as most JSON parsers (JavaScript's, Go's) do.
type object struct {
	keys  []string
	vals  []any
	index map[string]int // built once the object is large
}

func (o *object) get(k string) (any, bool) {
	if o.index != nil {
		i, ok := o.index[k]
		if !ok {
			return nil, false
		}
		return o.vals[i], true
	}
	for i, key := range o.keys {
		if key == k {
			return o.vals[i], true
		}
	}
	return nil, false
}

func (o *object) set(k string, v any) {
	if o.index != nil {
		if i, ok := o.index[k]; ok {
			o.vals[i] = v
			return
		}
	} else if len(o.keys) < 16 {
		for i, key := range o.keys {
			if key == k {
				o.vals[i] = v
				return
			}
		}
	} else {
		o.index = make(map[string]int, 2*len(o.keys))
		for i, key := range o.keys {
			o.index[key] = i
		}
		o.set(k, v)
		return
	}
	if o.index != nil {
		o.index[k] = len(o.keys)
	}
	o.keys = append(o.keys, k)
	o.vals = append(o.vals, v)
}

func badJSON(msg string, err error) *meter.Error {
	return &meter.Error{Code: meter.ECodeBadRequest, Message: msg, Err: err}
}

// parseJSON builds the document without recursion, refusing invalid JSON
// and documents deeper or larger than the bounds above.
func parseJSON(b []byte) (*jsonDoc, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	type frame struct {
		arr *[]any
		obj *object
		key string
		has bool // key read, value pending
	}
	var stack []frame
	var root any
	values := 0
	put := func(v any) {
		if len(stack) == 0 {
			root = v
			return
		}
		f := &stack[len(stack)-1]
		if f.arr != nil {
			*f.arr = append(*f.arr, v)
		} else {
			f.obj.set(f.key, v)
			f.has = false
		}
	}
	done := false
	for !done {
		tok, err := dec.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, badJSON("the request body is not valid JSON", err)
		}
		if values++; values > maxJSONValues {
			return nil, badJSON("the JSON body has too many values to be priced", nil)
		}
		if len(stack) > 0 {
			if f := &stack[len(stack)-1]; f.obj != nil && !f.has {
				if k, ok := tok.(string); ok {
					f.key, f.has = k, true
					continue
				}
			}
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '[', '{':
				if len(stack) >= maxJSONDepth {
					return nil, badJSON("the JSON body is nested too deeply to be priced", nil)
				}
				if t == '[' {
					stack = append(stack, frame{arr: new([]any)})
				} else {
					stack = append(stack, frame{obj: &object{}})
				}
				continue
			}
			f := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if f.arr != nil {
				put(*f.arr)
			} else {
				put(f.obj)
			}
		case json.Number:
			v, err := strconv.ParseFloat(string(t), 64)
			if err != nil {
				return nil, badJSON("the JSON body has a number out of range", err)
			}
			put(v)
		default: // string, bool, nil
			put(t)
		}
		done = len(stack) == 0
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, badJSON("the request body has data after its JSON value", err)
	}
	return &jsonDoc{root: root}, nil
}
