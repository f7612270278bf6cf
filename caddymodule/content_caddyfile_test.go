package caddymodule

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestCaddyfileContentOptions(t *testing.T) {
	m, err := adapt(t, ":80 {\n\tmeter {\n\t\tper_page 1\n\t\tunpriced charge 2.5\n\t\tjson_documents $.document $.files[*].content\n\t}\n}")
	if err != nil {
		t.Fatal(err)
	}
	h, _ := json.Marshal(find(m, "meter"))
	want := `{"handler":"meter","json_documents":["$.document","$.files[*].content"],"rules":[{"per_page":1}],"unpriced":"charge","unpriced_credits":2.5}`
	if string(h) != want {
		t.Errorf("meter handler:\n got %s\nwant %s", h, want)
	}

	for _, tt := range []struct{ name, sub, want string }{
		{"unknown unpriced mode", "unpriced free", "unpriced: expected `refuse` or `charge <credits>`, got \"free\", at Caddyfile:4"},
		{"charge without credits", "unpriced charge", "expected `refuse` or `charge <credits>`"},
		{"bad credits", "unpriced charge lots", `unpriced charge: expected credits such as 1 or 0.5, got "lots", at Caddyfile:4`},
		{"negative credits", "unpriced charge -1", "expected credits"},
		{"no json query", "json_documents", "json_documents needs auto, off or JSONPath queries"},
		{"bad json query", "json_documents document", "json_documents: "},
		{"json query with comparison", `json_documents "$.a == 'x'"`, "takes no comparison"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := adapt(t, ":80 {\n\tmeter {\n\t\tper_page 1\n\t\t"+tt.sub+"\n\t}\n}")
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "Caddyfile:4") {
				t.Fatalf("error %v, want it to contain %q and the line", err, tt.want)
			}
		})
	}

	for _, bad := range []*Handler{
		{Unpriced: "maybe"},
		{UnpricedCredits: 1},
		{Unpriced: unpricedCharge, UnpricedCredits: -1},
		{JSONDocuments: []string{"$["}},
	} {
		if err := bad.provisionContent(); err == nil {
			t.Errorf("%+v provisioned", bad)
		}
	}
}
