package pdfscan

// attrs are the inheritable page attributes that pricing needs.
type attrs struct {
	media, crop []float64 // nil when not set
	rotate      int64
}

// node is a page tree node the walk will visit, with what it inherits.
type node struct {
	obj   Object
	depth int
	inh   attrs
}

// walkPages counts the leaves reachable from the catalog's /Pages and
// collects their boxes. /Count is never read: a hostile one could claim any
// number. Each indirect node is visited once (cycles and shared kids add
// nothing) and depth is bounded, so the walk is linear in the size of the
// tree. A leaf is a /Type /Page dictionary, or an untyped one without
// /Kids, as poppler and qpdf read them. The nodes left to visit are
// d.stack, where the prefetcher looks for the object streams needed next.
func (d *doc) walkPages() (Info, error) {
	root, err := d.resolve(d.root)
	if err != nil {
		return Info{}, err
	}
	cat, ok := root.(Dict)
	if !ok {
		return Info{}, damaged("no document catalog")
	}
	pages, ok := cat["Pages"]
	if !ok {
		return Info{}, damaged("catalog has no /Pages")
	}

	d.visited = map[int]bool{}
	visited := d.visited
	d.stack = append(d.stack[:0], node{obj: pages})
	var info Info
	for steps := 0; len(d.stack) > 0; steps++ {
		if steps%1024 == 0 {
			if err := d.ctx.Err(); err != nil {
				return Info{}, err
			}
		}
		n := d.stack[len(d.stack)-1]
		d.stack = d.stack[:len(d.stack)-1]
		if r, ok := n.obj.(Ref); ok {
			if visited[r.Num] {
				continue
			}
			visited[r.Num] = true
		}
		o, err := d.resolve(n.obj)
		if err != nil {
			return Info{}, err
		}
		dict, ok := o.(Dict)
		if !ok {
			continue // a null or dangling kid holds no page
		}
		a, err := d.inherit(dict, n.inh)
		if err != nil {
			return Info{}, err
		}
		kids, hasKids := dict["Kids"]
		if typ := dict["Type"]; typ == Name("Page") || (typ == nil && !hasKids) {
			info.Pages++
			info.Boxes = append(info.Boxes, NewPageBox(a.media, a.crop, a.rotate))
			continue
		}
		if !hasKids {
			continue // an empty /Pages node
		}
		if n.depth >= d.lim.MaxDepth {
			return Info{}, limit("page tree deeper than %d", d.lim.MaxDepth)
		}
		if r, ok := kids.(Ref); ok {
			if visited[r.Num] {
				continue
			}
			visited[r.Num] = true
		}
		ko, err := d.resolve(kids)
		if err != nil {
			return Info{}, err
		}
		arr, _ := ko.(Array)
		// Push in reverse so that pages come out in document order.
		for i := len(arr) - 1; i >= 0; i-- {
			d.stack = append(d.stack, node{arr[i], n.depth + 1, a})
		}
	}
	if info.Pages == 0 {
		// Viewers that rebuild a broken page tree would still show pages:
		// fail rather than charge nothing.
		return Info{}, damaged("no pages reachable from /Pages")
	}
	return info, nil
}

// inherit returns the attributes of a node: its own, else its parent's.
func (d *doc) inherit(dict Dict, parent attrs) (attrs, error) {
	a := parent
	for _, k := range [...]Name{"MediaBox", "CropBox"} {
		v, ok := dict[k]
		if !ok {
			continue
		}
		r, err := d.numbers(v)
		if err != nil {
			return attrs{}, err
		}
		if r == nil {
			continue // a malformed box is ignored, not inherited over
		}
		if k == "MediaBox" {
			a.media = r
		} else {
			a.crop = r
		}
	}
	if v, ok := dict["Rotate"]; ok {
		v, err := d.resolve(v)
		if err != nil {
			return attrs{}, err
		}
		switch n := v.(type) {
		case int64:
			a.rotate = n
		case float64:
			a.rotate = int64(n)
		}
	}
	return a, nil
}

// numbers resolves an array of 4 numbers; anything else is nil.
func (d *doc) numbers(v Object) ([]float64, error) {
	v, err := d.resolve(v)
	if err != nil {
		return nil, err
	}
	arr, ok := v.(Array)
	if !ok || len(arr) != 4 {
		return nil, nil
	}
	out := make([]float64, 4)
	for i, e := range arr {
		e, err := d.resolve(e)
		if err != nil {
			return nil, err
		}
		switch n := e.(type) {
		case int64:
			out[i] = float64(n)
		case float64:
			out[i] = n
		default:
			return nil, nil
		}
	}
	return out, nil
}
