package storetest

// Uncapped commits, shortfalls and minimums, as scripts the store runs
// step by step beside the model (model_script.go). Each was a
// hand-computed case of plans.go; its numbers are in meter/ledger's
// TestSettles (pools_table_test.go), under the same name.
var settleScripts = []script{
	{name: "uncapped: the real amount, and again the first settlement", balance: 30, steps: []sstep{
		reserveStep("r1", 20), commitUncappedStep("r1", 27), commitUncappedStep("r1", 27)}},
	{name: "capped: the hold only", balance: 30, steps: []sstep{reserveStep("r1", 20), commitStep("r1", 27)}},
	{name: "uncapped: the excess from quota, then balance, then overage", balance: 5, quota: 10, overageCap: 5, steps: []sstep{
		reserveStep("r1", 8), reserveStep("r2", 1), commitUncappedStep("r1", 18), commitStep("r2", 1)}},
	{name: "a shortfall is owed until bought back, even with a quota", balance: 3, steps: []sstep{
		reserveStep("r1", 1), commitUncappedStep("r1", 27), reserveStep("r2", 1), settingsStep(10, 0), period(1),
		reserveStep("r3", 1), buy(24), reserveStep("r4", 1)}},
	{name: "uncapped and late: from the pools now, the rest short", balance: 30, steps: []sstep{
		reserveShort("r1", 20), reserveShort("r2", 2), expireShort(), commitUncappedStep("r1", 27),
		commitUncappedStep("r2", 5)}},
	{name: "a minimum: all the pools give is held", balance: 19, steps: []sstep{
		reserveMin("r1", 20, 1), reserveMin("r2", 20, 1), commitUncappedStep("r1", 27)}},
	{name: "a minimum: the estimate whole when the pools give it", balance: 30, steps: []sstep{reserveMin("r1", 20, 1)}},
	{name: "a minimum: from the quota first", quota: 5, steps: []sstep{reserveMin("r1", 20, 1), reserveMin("r2", 20, 1)}},
}
