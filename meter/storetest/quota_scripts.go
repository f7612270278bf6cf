package storetest

// The pools of a period (quota, balance, overage) as scripts the store
// runs step by step beside the model (model_script.go). Each was a
// hand-computed case of quota.go; its numbers are in meter/ledger's
// pools_table_test.go, under the same name.

// parts is the account of the "parts across pools" cases: quota 2,
// balance 3, overage cap 5.
func parts(name string, steps ...sstep) script {
	return script{name: "parts across pools: " + name, balance: 3, quota: 2, overageCap: 5, steps: steps}
}

var quotaScripts = []script{
	{name: "quota, then balance, then overage", balance: 5, quota: 10, overageCap: 5, steps: []sstep{
		reserveStep("r1", 3), commitStep("r1", 3), reserveStep("r2", 9), commitStep("r2", 9),
		reserveStep("r3", 5), commitStep("r3", 5), reserveStep("r4", 4), reserveStep("r5", 3), commitStep("r5", 3),
		reserveStep("r6", 0.001), totals()}},
	{name: "quota exceeded, then insufficient credits", quota: 10, steps: []sstep{
		reserveStep("r1", 6), commitStep("r1", 6), reserveStep("r2", 3), reserveStep("r3", 2), buy(0.5),
		reserveStep("r4", 2)}},
	{name: "raising the overage cap", overageCap: 5, steps: []sstep{
		reserveStep("r1", 5), commitStep("r1", 5), reserveStep("r2", 3), settingsStep(0, 8), reserveStep("r2", 3),
		commitStep("r2", 3)}},
	{name: "no period, no quota", balance: 1, quota: 10, overageCap: 5, steps: []sstep{
		period(0), reserveStep("r1", 2), period(1), reserveStep("r2", 2), period(0), reserveStep("r3", 2)}},
	{name: "period rollover", quota: 10, overageCap: 5, steps: []sstep{
		period(2), reserveStep("held", 4), reserveStep("r1", 11), commitStep("r1", 11),
		period(1), reserveStep("r2", 1), // an older period is read as the current one
		period(3), reserveStep("r3", 10), reserveStep("r4", 1), buy(5), reserveStep("r5", 2),
		period(2), reserveStep("r6", 1), // a gateway whose clock lags: nothing resets
		commitStep("held", 4), commitStep("r3", 10), commitStep("r5", 2), commitStep("r6", 1)}},
	parts("partial commit takes quota, then balance, and releases the rest", reserveStep("r1", 5), commitStep("r1", 4)),
	parts("partial commit reaches the overage last", reserveStep("r1", 7), commitStep("r1", 6)),
	parts("commit within the quota writes an entry that moves no balance", reserveStep("r1", 7), commitStep("r1", 1)),
	parts("void releases every part", reserveStep("r1", 7), voidStep("r1")),
	parts("expiry releases every part", reserveShort("r1", 7), expireShort()),
	parts("a late commit takes quota, then balance, then overage, as they are now",
		reserveShort("r1", 4), expireShort(), reserveStep("r2", 1), commitStep("r1", 6)),
	parts("a late commit reaches into the overage", reserveShort("r1", 7), expireShort(), commitStep("r1", 7)),
}
