package storetest

// Refunds and totals as scripts the store runs step by step beside the
// model (model_script.go). Each was a hand-computed case of refund.go; its
// numbers are in meter/ledger's TestRefunds (pools_table_test.go), under
// the same name.
var refundScripts = []script{
	{name: "the paid part, once per entry, never beyond what it took", balance: 10, quota: 1, overageCap: 5, steps: []sstep{
		reserveStep("e1", 4), commitStep("e1", 4), reserveStep("e2", 4), commitStep("e2", 4),
		reserveStep("e3", 5), commitStep("e3", 5), refund("e1", 0), refund("e1", 0), refund("e3", 5.001),
		refund("e3", 5), refund("e2", 1), refund("e2", 1), totals()}},
	{name: "a usage entry of the quota only gives nothing back", quota: 10, steps: []sstep{
		reserveStep("e", 1), commitStep("e", 1), refund("e", 0)}},
	{name: "totals: a removal is no negative purchase, a refund takes back the use", balance: 10, quota: 2, steps: []sstep{
		buy(5), adjust(1), adjust(-2), reserveStep("e", 3), commitStep("e", 3), refund("e", 0), totals()}},
}
