package storetest

// Threshold events (low balance, quota, overage) as scripts the store runs
// step by step beside the model (model_script.go), which compares the
// pending events after each step: their types, balances, thresholds,
// limits, uses and resets. Each was a hand-computed case of events.go;
// its numbers are in meter/ledger's TestEvents (pools_table_test.go),
// under the same name.
var eventScripts = []script{
	{name: "a low-balance crossing records one event", balance: 10, lowBelow: 5, steps: []sstep{
		reserveStep("d1", 3), commitStep("d1", 3), reserveStep("d2", 3), commitStep("d2", 3),
		reserveStep("d3", 1), commitStep("d3", 1)}},
	{name: "a negative adjustment crosses too", balance: 10, lowBelow: 5, steps: []sstep{adjust(-6)}},
	{name: "a purchase re-arms", balance: 6, lowBelow: 5, steps: []sstep{
		reserveStep("d1", 2), commitStep("d1", 2), buy(1), reserveStep("d2", 0.5), commitStep("d2", 0.5), buy(10),
		reserveStep("d3", 1), commitStep("d3", 1)}},
	{name: "a refused debit records nothing", balance: 10, lowBelow: 5, steps: []sstep{
		adjust(-11), commitStep("nohold", 9), reserveStep("held", 9), commitStep("held", 9)}},
	{name: "quota and overage events", quota: 10, overageCap: 5, steps: []sstep{
		reserveStep("d1", 6), commitStep("d1", 6), reserveStep("d2", 4), commitStep("d2", 4),
		reserveStep("d3", 3), commitStep("d3", 3), reserveStep("d4", 2), commitStep("d4", 2)}},
}
