package metercmd

import (
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/creditgate/creditgate/meter"
)

// stripeCommand is `meter stripe review [list|apply|dismiss]`: the Stripe
// events the gateway held for review (see meter_stripe).
func (c *client) stripeCommand() *cobra.Command {
	stripe := &cobra.Command{Use: "stripe", Short: "Stripe events held for review"}
	review := &cobra.Command{Use: "review", Short: "Lists, applies or dismisses held Stripe events"}
	var status string
	var limit int
	list := &cobra.Command{
		Use: "list", Short: "Lists held events (pending by default)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{"status": {status}, "limit": {strconv.Itoa(limit)}}
			return do(c, http.MethodGet, "/meter/stripe/review?"+q.Encode(), nil, printReview)
		},
	}
	list.Flags().StringVar(&status, "status", "pending", "pending, applied, dismissed or all")
	list.Flags().IntVar(&limit, "limit", 100, "at most this many (1 to 1000)")
	var credits, note string
	apply := &cobra.Command{
		Use: "apply <item-id> <account>", Short: "Applies a held event to an account, once", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := map[string]any{"account": args[1], "note": note}
			if credits != "" {
				n, err := creditsValue("--credits", credits)
				if err != nil {
					return err
				}
				body["credits"] = n
			}
			return do(c, http.MethodPost, "/meter/stripe/review/"+url.PathEscape(args[0])+"/apply", body, printReviewItem)
		},
	}
	apply.Flags().StringVar(&credits, "credits", "", "credits to add (required when the event mapped none)")
	apply.Flags().StringVar(&note, "note", "", "why, kept on the item")
	var dismissNote string
	dismiss := &cobra.Command{
		Use: "dismiss <item-id>", Short: "Dismisses a held event: nothing is credited", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return do(c, http.MethodPost, "/meter/stripe/review/"+url.PathEscape(args[0])+"/dismiss",
				map[string]any{"note": dismissNote}, printReviewItem)
		},
	}
	dismiss.Flags().StringVar(&dismissNote, "note", "", "why, kept on the item")
	review.AddCommand(list, apply, dismiss)
	stripe.AddCommand(review)
	return stripe
}

// reviewList and reviewAnswer are the admin API's answers around
// meter.ReviewItem.
type reviewList struct {
	Items []meter.ReviewItem `json:"items"`
}

type reviewAnswer struct {
	Item  meter.ReviewItem   `json:"item"`
	Entry *meter.LedgerEntry `json:"entry"`
}

func printReview(w io.Writer, v reviewList) {
	rows := [][]string{{"ID", "KIND", "REASON", "ACCOUNT?", "CREDITS", "AMOUNT", "STATUS", "RECEIVED"}}
	for _, m := range v.Items {
		rows = append(rows, []string{m.ID, m.Kind, m.Reason, m.AccountHint, m.Credits.String(),
			strconv.FormatInt(m.Amount, 10) + " " + m.Currency, m.Status, ts(m.ReceivedAt)})
	}
	table(w, rows)
}

func printReviewItem(w io.Writer, v reviewAnswer) {
	rows := [][]string{{"item", v.Item.ID}, {"status", v.Item.Status}}
	if v.Item.AppliedTo != "" {
		rows = append(rows, []string{"account", v.Item.AppliedTo})
	}
	if e := v.Entry; e != nil && e.ID != "" {
		rows = append(rows, []string{"entry", e.ID + " " + e.Type + " " + e.Amount.String()})
	}
	table(w, rows)
}
