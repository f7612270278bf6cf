package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/creditgate/creditgate/internal/redistest"
	"github.com/creditgate/creditgate/meter"
)

// Three gateway processes share one Redis. 200 concurrent clients spend
// on 12 accounts through all three, against an upstream that fails (500)
// or holds requests until the client aborts, and some clients abort at a
// random moment. Afterwards every account's ledger is exact: no balance
// below zero, each balance the sum of its ledger, and the usage entries
// are exactly the 2xx responses, each charged its price once (plus,
// possibly, requests whose client gave up before it could see the
// answer).
func TestThreeGatewaysShareRedis(t *testing.T) {
	rs := redistest.New(t)
	up := newUpstream(t)
	var gws []*gateway
	for i := 0; i < 3; i++ {
		gws = append(gws, startGateway(t, config{Redis: rs.URL(), Upstream: up.addr}))
	}

	const nAccounts, nClients, perClient = 12, 200, 5
	ids, keys := make([]string, nAccounts), make([]string, nAccounts)
	initial := map[string]int{}
	for i := range ids {
		ids[i] = fmt.Sprintf("acct_%02d", i)
		initial[ids[i]] = 40 + 5*i
		keys[i] = gws[0].account(ids[i], initial[ids[i]])
	}

	start := time.Now()
	results := make(chan result, nClients*perClient)
	var wg sync.WaitGroup
	for c := 0; c < nClients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < perClient; r++ {
				a := rand.IntN(nAccounts)
				gw := gws[rand.IntN(len(gws))]
				id := "c" + strconv.Itoa(c) + "r" + strconv.Itoa(r)
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				if rand.IntN(100) < 5 {
					// An impatient client: gives up at a random moment.
					time.AfterFunc(time.Duration(rand.IntN(30))*time.Millisecond, cancel)
					id = "x" + id
				}
				results <- send(ctx, up, gw.URL, keys[a], ids[a], "random", id, 1+rand.IntN(5), true)
				cancel()
			}
		}()
	}
	wg.Wait()
	close(results)
	elapsed := time.Since(start)

	s := openStore(t, rs.URL())
	waitSettled(t, s, ids, 5*time.Second)

	byID := map[string]result{}
	statuses := map[string]int{}
	for r := range results {
		byID[r.ID] = r
		key := strconv.Itoa(r.Status) + " " + r.Code
		switch {
		case r.Held:
			key = "held, aborted"
		case r.Status == 0 && r.ID[0] == 'x':
			key = "impatient, no answer"
		case r.Status == 0:
			t.Errorf("request %s: %v", r.ID, r.Err)
		case r.Status == 200:
			if r.Cost != strconv.Itoa(r.Pages) {
				t.Errorf("request %s of %d pages: X-Request-Cost %q", r.ID, r.Pages, r.Cost)
			}
		case r.Status == 402 && r.Code == meter.ECodeInsufficientCredits, r.Status == 500:
		default:
			t.Errorf("request %s: unexpected %d %s", r.ID, r.Status, r.Code)
		}
		statuses[key]++
	}

	charged := map[string]bool{}
	var debited, debitedUnseen meter.Credits
	for _, id := range ids {
		a, es := ledger(t, s, id)
		var spent meter.Credits
		for _, e := range es[1:] {
			r, ok := byID[requestOf(e)]
			switch {
			case e.Type != meter.EntryUsage || !ok || r.Account != id:
				t.Errorf("%s: entry %+v matches no request of the account", id, e)
			case charged[r.ID]:
				t.Errorf("%s: request %s charged twice", id, r.ID)
			case e.Amount != -credits(r.Pages):
				t.Errorf("%s: request %s of %d pages charged %s", id, r.ID, r.Pages, -e.Amount)
			case r.Status == 200:
			case r.Status == 0 && !r.Held && r.ID[0] == 'x':
				// Committed as the client gave up: it cannot have seen it.
				debitedUnseen -= e.Amount
			default:
				t.Errorf("%s: request %s (%d %s, held %v) charged", id, r.ID, r.Status, r.Code, r.Held)
			}
			charged[r.ID] = true
			spent -= e.Amount
		}
		if es[0].Type != meter.EntryPurchase || es[0].Amount != credits(initial[id]) {
			t.Errorf("%s: first entry %+v", id, es[0])
		}
		if a.Balance != credits(initial[id])-spent || a.Reserved != 0 {
			t.Errorf("%s: balance %s reserved %s, initial %d spent %s", id, a.Balance, a.Reserved, initial[id], spent)
		}
		debited += spent
	}
	var ok200 meter.Credits
	for _, r := range byID {
		if r.Status == 200 {
			ok200 += credits(r.Pages)
			if !charged[r.ID] {
				t.Errorf("request %s answered 200 and was not charged", r.ID)
			}
		}
	}
	if ok200+debitedUnseen != debited {
		t.Errorf("2xx responses cost %s (+%s unseen), the ledgers debited %s", ok200, debitedUnseen, debited)
	}

	var lines []string
	for k, n := range statuses {
		lines = append(lines, fmt.Sprintf("%s: %d", k, n))
	}
	sort.Strings(lines)
	t.Logf("%d requests in %v through 3 gateways; debited %s (%s by 2xx); outcomes %v",
		len(byID), elapsed.Round(time.Millisecond), debited, ok200, lines)
	if statuses["200 "] == 0 || statuses["held, aborted"] == 0 || statuses["500 "] == 0 || statuses["402 insufficient_credits"] == 0 {
		t.Errorf("the run did not exercise every outcome: %v", lines)
	}
}
