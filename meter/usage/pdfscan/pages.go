package pdfscan

// walkPages counts the pages of the tree from the catalog's /Pages with
// Walk (tree.go says what a page is). The walk's frames are what the
// prefetcher looks at for the object streams needed next.
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
	d.src.recycle(cat) // fetched by d.root, a reference
	d.w.ctx, d.w.t = d.ctx, docTree{d}
	d.w.lim = WalkLimits{
		MaxDepth: d.lim.MaxDepth,
		MaxPages: d.lim.MaxPages,
		MaxSteps: 4 * d.lim.MaxObjects,
		Grow:     d.growFn,
	}
	d.walk = &d.w
	p, err := d.walk.walk(pages)
	if err != nil {
		return Info{}, err
	}
	if p, err = p.AtLeast(d.src.linearizedPages(), d.lim.MaxPages); err != nil {
		return Info{}, err
	}
	return Info{Pages: p.Count, Sizes: p.Sizes}, nil
}

// docTree is the Tree of a document read by this package.
type docTree struct{ d *doc }

func (t docTree) Node(v any) (TreeNode, error) {
	var n TreeNode
	if r, ok := v.(Ref); ok {
		n.Num = r.Num
	}
	o, err := t.d.resolve(v)
	if err != nil {
		return n, err
	}
	dict, ok := o.(Dict)
	if !ok {
		return n, nil
	}
	n.Dict = true
	n.Page = dict["Type"] == Name("Page")
	if k, ok := dict["Kids"]; ok && k != nil {
		n.Kids = k
		if _, ok := k.(Ref); ok {
			// A reference to null is no /Kids: qpdf renders the node as
			// a page.
			if k, err = t.d.resolve(k); err != nil {
				return n, err
			} else if k == nil {
				n.Kids = nil
			}
		}
	}
	// The boxes are read into the doc's arrays: the walk copies them
	// (attrs.inherit) before it asks for another node.
	if n.Media, err = t.d.numbers(dict["MediaBox"], &t.d.box[0]); err != nil {
		return n, err
	}
	if n.Crop, err = t.d.numbers(dict["CropBox"], &t.d.box[1]); err != nil {
		return n, err
	}
	if r, ok := dict["Rotate"]; ok {
		r, err := t.d.resolve(r)
		if err != nil {
			return n, err
		}
		n.Rotate, n.HasRotate = number(r)
	}
	if c, ok := dict["Count"]; ok {
		c, err := t.d.resolve(c)
		if err != nil {
			return n, err
		}
		n.Count, _ = number(c)
	}
	if n.Num > 0 {
		t.d.src.recycle(dict) // fetched by reference: nothing else has it
	}
	return n, nil
}

func (t docTree) Kids(v any) (int, []any, error) {
	num := 0
	if r, ok := v.(Ref); ok {
		num = r.Num
	}
	o, err := t.d.resolve(v)
	if err != nil {
		return num, nil, err
	}
	arr, _ := o.(Array)
	return num, arr, nil
}

// number returns an integer or real as an integer (real counts such as
// "/Count 9.0" exist, poppler notes).
func number(o Object) (int64, bool) {
	switch n := o.(type) {
	case int64:
		return n, true
	case float64:
		if n > maxCount {
			return maxCount, true
		}
		return int64(n), true
	}
	return 0, false
}

// numbers resolves an array of 4 numbers into out; anything else is nil.
func (d *doc) numbers(v Object, out *[4]float64) ([]float64, error) {
	if v == nil {
		return nil, nil
	}
	v, err := d.resolve(v)
	if err != nil {
		return nil, err
	}
	if q, ok := v.(*quad); ok {
		*out = *q
		return out[:], nil
	}
	arr, ok := v.(Array)
	if !ok || len(arr) != 4 {
		return nil, nil
	}
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
	return out[:], nil
}
