package redisstore

import (
	"fmt"
	"io/fs"
	"regexp"
	"strings"
)

// Replies are read by name. A script's header documents its replies, one
// array per outcome: "-- Reply: {'ok', balance, available, state...}" and
// "--   or {'insufficient_credits', required, available}". replyLayouts
// reads those arrays once, when the script is declared, into the position
// of each name, by the reply's first element (its code), so that the
// header is the one place a reply's shape is written and Go reads
// rep.intOf("balance") rather than rep.int(1). The wire format is the
// positional array the scripts always sent: naming costs nothing per call.

// stateNames are the nine values of lib.lua's with_state, written
// "state..." in a header.
var stateNames = []string{"quota_limit", "quota_used", "quota_reserved", "quota_remaining", "quota_resets_ms",
	"overage_cap", "overage_used", "overage_reserved", "overage_remaining"}

var (
	replyArray = regexp.MustCompile(`\{'([a-z_]+)'([^{}]*)\}`)
	replyNote  = regexp.MustCompile(`\([^()]*\)`)
	replyName  = regexp.MustCompile(`^[a-z_]+(\.\.\.)?`)
	seeReply   = regexp.MustCompile(`see (\w+) in (\w+\.lua)`)
	asReply    = regexp.MustCompile(`as (\w+\.lua)'s`)
)

// replyLayouts reads the reply arrays of a script's header: the comment
// lines from "-- Reply:" on, while they are indented continuations. A
// header that refers to another's ("see job_reply in job_lib.lua", "as
// account.lua's") is read from there too.
func replyLayouts(fsys fs.FS, file string) map[string]map[string]int {
	b, err := fs.ReadFile(fsys, file)
	if err != nil {
		panic(err)
	}
	text := replySection(string(b), "-- Reply:")
	if m := seeReply.FindStringSubmatch(text); m != nil {
		if lib, err := fs.ReadFile(fsys, m[2]); err == nil {
			text += " " + replySection(string(lib), "-- "+m[1]+":")
		}
	}
	if m := asReply.FindStringSubmatch(text); m != nil {
		if other, err := fs.ReadFile(fsys, m[1]); err == nil {
			text += " " + replySection(string(other), "-- Reply:")
		}
	}
	out := map[string]map[string]int{}
	for _, m := range replyArray.FindAllStringSubmatch(replyNote.ReplaceAllString(text, ""), -1) {
		code, names := m[1], map[string]int{}
		i := 1
		for _, part := range strings.Split(m[2], ",")[1:] {
			name := replyName.FindString(strings.TrimSpace(part))
			switch {
			case name == "state...":
				for j, s := range stateNames {
					names[s] = i + j
				}
				i += len(stateNames)
				continue
			case strings.HasSuffix(name, "..."):
				name = "" // a repeated tail (claim_events' id, record, ...): read by position
			case name != "":
				if _, dup := names[name]; !dup { // a repeated tail's first
					names[name] = i
				}
			}
			i++
		}
		if _, seen := out[code]; !seen { // the first documented shape of a code
			out[code] = names
		}
	}
	return out
}

// replySection returns the comment lines of src from the one starting
// with start, joined, while they continue it: indented by 2 or more, or
// inside an array not closed yet.
func replySection(src, start string) string {
	var b strings.Builder
	in := false
	for _, line := range strings.Split(src, "\n") {
		open := strings.Count(b.String(), "{") > strings.Count(b.String(), "}")
		switch {
		case !in && strings.HasPrefix(line, start):
			in = true
			b.WriteString(strings.TrimPrefix(line, start))
		case in && strings.HasPrefix(line, "--") && (strings.HasPrefix(line, "--  ") || open):
			b.WriteString(" " + strings.TrimPrefix(line, "--"))
		case in:
			return b.String()
		}
	}
	return b.String()
}

// reply reads v, a reply of sc, by the names its header gives the
// reply's code.
func (sc *script) reply(v []any) *reply {
	r := &reply{v: v}
	r.names = sc.replies[r.str(0)]
	return r
}

// at is the position of name in the reply, or -1 (recorded in r.err: a
// name the script's header does not document is a bug).
func (r *reply) at(name string) int {
	if i, ok := r.names[name]; ok {
		return i
	}
	if r.err == nil {
		r.err = fmt.Errorf("redisstore: script reply %v has no %q", r.v, name)
	}
	return -1
}

// has reports whether the reply carries name (a reply of an older shape,
// or an optional tail, may not).
func (r *reply) has(name string) bool {
	i, ok := r.names[name]
	return ok && i < len(r.v)
}

// optStr is the string value named name, "" when the reply's shape has
// none (create_account.lua's has no settings).
func (r *reply) optStr(name string) string {
	if r.has(name) {
		return r.strOf(name)
	}
	return ""
}

// intOf is the integer value named name.
func (r *reply) intOf(name string) int64 {
	if i := r.at(name); i >= 0 {
		return r.int(i)
	}
	return 0
}

// strOf is the string value named name.
func (r *reply) strOf(name string) string {
	if i := r.at(name); i >= 0 {
		return r.str(i)
	}
	return ""
}
