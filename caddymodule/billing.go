package caddymodule

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/creditgate/creditgate/meter"
)

// BillingConfig merges a billing object into the upstream's 2xx JSON
// object answers: on a metered route, what the request was charged
// (credits_charged) and what was available before (available_credits);
// on a job route and the meter_job routes, the job's billing record.
type BillingConfig struct {
	// Field is the member added to the answer. Default "billing".
	Field string `json:"field,omitempty"`
	// Case is "snake" (credits_charged, the default) or "camel"
	// (creditsCharged), to match the upstream's own JSON.
	Case string `json:"case,omitempty"`
}

func (b *BillingConfig) provision() error {
	if b.Field == "" {
		b.Field = "billing"
	}
	switch b.Case {
	case "":
		b.Case = "snake"
	case "snake", "camel":
	default:
		return meter.Errorf(meter.ECodeInvalid, "billing case %q: use snake or camel", b.Case)
	}
	return nil
}

// object is a billing object with its names in the configured case.
type object []member

type member struct {
	name  string
	value any
}

func (o object) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, _ := json.Marshal(m.name)
		v, err := json.Marshal(m.value)
		if err != nil {
			return nil, err
		}
		buf.Write(k)
		buf.WriteByte(':')
		buf.Write(v)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

func (b *BillingConfig) name(snake string) string {
	if b == nil || b.Case != "camel" {
		return snake
	}
	return camel(snake)
}

// camel turns snake_case (and kebab-case class names) into camelCase.
func camel(s string) string {
	parts := strings.FieldsFunc(s, func(r rune) bool { return r == '_' || r == '-' })
	for i := 1; i < len(parts); i++ {
		parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
	}
	return strings.Join(parts, "")
}

// chargeObject is a metered request's billing: what it was charged and
// what the account had available before the charge.
func (b *BillingConfig) chargeObject(charged, availableBefore meter.Credits) object {
	return object{
		{b.name("credits_charged"), charged},
		{b.name("available_credits"), availableBefore},
	}
}

// jobObject is a job's billing record: credits debited and reserved, the
// rate and the pages of each class, the successful and failed pages.
func (b *BillingConfig) jobObject(j meter.Job) object {
	o := object{
		{b.name("job_id"), j.ID},
		{b.name("status"), j.Status},
		{b.name("credits_debited"), j.Debited},
		{b.name("credits_reserved"), j.Reserved},
	}
	classes := j.Classes()
	for _, c := range classes {
		o = append(o, member{b.name(c + "_credits_per_page"), j.Rates[c]})
	}
	for _, c := range classes {
		o = append(o, member{b.name(c + "_page_count"), j.Pages[c]})
	}
	o = append(o,
		member{b.name("successful_page_count"), j.SuccessfulPages()},
		member{b.name("failed_page_count"), j.Failed},
		member{b.name("estimated_pages"), j.EstimatedPages},
	)
	if owed := j.Owed(); owed > 0 {
		o = append(o, member{b.name("credits_owed"), owed})
	}
	if !j.FinishedAt.IsZero() {
		o = append(o, member{b.name("finished_at"), j.FinishedAt})
	}
	return o
}

// maxMergeBody bounds an answer buffered to merge a billing object into;
// a larger one is passed on unchanged.
const maxMergeBody = 1 << 20

// mergeMember adds (or replaces) member name in a JSON object document.
// It returns body unchanged and false when body is not a JSON object.
// Members keep their order: the new one is appended before the closing
// brace, so an upstream's own layout survives.
func mergeMember(body []byte, name string, value any) ([]byte, bool) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(body, &members); err != nil || members == nil {
		return body, false
	}
	v, err := json.Marshal(value)
	if err != nil {
		return body, false
	}
	if _, exists := members[name]; exists {
		// Replace it: re-encoding loses the member order, which only an
		// upstream that already sends the same member pays.
		members[name] = v
		out, err := json.Marshal(members)
		if err != nil {
			return body, false
		}
		return out, true
	}
	end := bytes.LastIndexByte(body, '}')
	k, _ := json.Marshal(name)
	out := make([]byte, 0, len(body)+len(k)+len(v)+2)
	head := bytes.TrimRight(body[:end], " \t\r\n")
	out = append(out, head...)
	if len(members) > 0 {
		out = append(out, ',')
	}
	out = append(out, k...)
	out = append(out, ':')
	out = append(out, v...)
	out = append(out, body[end:]...)
	return out, true
}
