package campaigns

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/workers/customers"
)

// longAddress returns an address of n bytes with a valid domain.
func longAddress(n int) string {
	const domain = "@example.sk"
	return strings.Repeat("a", 64) + "@" + strings.Repeat("d", n-64-len(domain)) + domain[1:]
}

// normalEmail accepts exactly what the customer store accepts: an address
// the store refuses could be mailed but never unsubscribed.
func TestNormalEmail(t *testing.T) {
	t.Parallel()
	if n := len(longAddress(255)); n != 255 {
		t.Fatalf("longAddress(255) has %d bytes", n)
	}
	for _, tt := range []struct{ in, want string }{
		{"jana@example.sk", "jana@example.sk"}, {" Jana@Example.SK\t", "Jana@example.sk"},
		{"a.b+c@mail.example.co.uk", "a.b+c@mail.example.co.uk"}, {longAddress(254), longAddress(254)},
	} {
		got, err := normalEmail(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("normalEmail(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			continue
		}
		if err := customers.CheckEmail(got); err != nil {
			t.Errorf("normalEmail(%q) = %q, which the customer store refuses: %v", tt.in, got, err)
		}
	}
	for _, in := range []string{
		"ops@intranet", "ops@localhost", "ops@.sk", "ops@example.", longAddress(255), longAddress(400),
		"not-an-address", "Jana <jana@example.sk>", "<jana@example.sk>", "jana@example.sk, petr@example.sk", "",
	} {
		if got, err := normalEmail(in); err == nil {
			t.Errorf("normalEmail(%.40q) = %q, want an error", in, got)
		} else if customers.CheckEmail(strings.TrimSpace(in)) == nil {
			t.Errorf("normalEmail(%.40q) = %v, but the customer store accepts it", in, err)
		}
	}
	if _, err := normalEmail("ops@intranet"); err == nil || !strings.Contains(err.Error(), "no top-level part") {
		t.Errorf("normalEmail(ops@intranet) = %v, want the customer store's message", err)
	}
}

// A row of an audience file whose address the customer store refuses is
// skipped as invalid_address at its line, like any other invalid address,
// and every row that is planned can be unsubscribed.
func TestPlanFileAudienceSkipsAddressesTheStoreRefuses(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := t.Context()
	b.writeFile(t, "aud.csv", "email,name\n"+
		"ok@example.sk,OK\n"+ // line 2
		"ops@intranet,Ops\n"+ // 3: no dot in the domain
		longAddress(255)+",Long\n"+ // 4: over 254 bytes
		longAddress(254)+",Just fits\n"+ // 5
		"last@example.sk,Last\n") // 6
	c := emailCampaign("intra", jobs.Audience{File: "aud.csv"})

	rep, err := b.engine.DryRun(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Recipients != 3 || rep.Skipped[ReasonInvalidAddress] != 2 || len(rep.Skipped) != 1 {
		t.Errorf("dry run = %+v, want 3 recipients and 2 invalid addresses", rep)
	}

	if err := b.engine.HandleLaunch(ctx, launchArgs(c, "r1")); err != nil {
		t.Fatalf("HandleLaunch: %v", err)
	}
	want := map[string]string{"ok@example.sk": "pending|", longAddress(254): "pending|", "last@example.sk": "pending|"}
	if diff := cmp.Diff(want, b.ledger(t, "intra", "r1")); diff != "" {
		t.Errorf("ledger (-want +got):\n%s", diff)
	}
	skips, err := b.engine.Store().Skips(ctx, "intra", "r1")
	if err != nil {
		t.Fatal(err)
	}
	if len(skips) != 2 || !strings.HasPrefix(skips["line:3"], ReasonInvalidAddress+": ") || !strings.HasPrefix(skips["line:4"], ReasonInvalidAddress+": ") {
		t.Errorf("skips = %q, want lines 3 and 4 as %s", skips, ReasonInvalidAddress)
	}
	if !strings.Contains(skips["line:3"], "ops@intranet") {
		t.Errorf("skip of line 3 = %q, want it to name the address", skips["line:3"])
	}
	if st := b.status(t, "intra", "r1"); st.Counts.Total != 5 || st.Counts.Pending != 3 || st.Counts.Skipped != 2 || st.Planning {
		t.Errorf("status = %+v, want total 5, pending 3, skipped 2, planning done", st)
	}

	// every planned address can record its opt-out
	for addr := range want {
		url := b.engine.cfg.Unsubscribe.AddressURL(addr, "intra")
		token := url[strings.LastIndexByte(url, '/')+1:]
		if _, err := b.engine.cfg.Unsubscribe.Apply(ctx, b.customers, token, time.Now()); err != nil {
			t.Errorf("unsubscribe %.40q: %v", addr, err)
			continue
		}
		cu, err := b.customers.ByEmail(ctx, addr)
		if err != nil || cu.Consent[customers.ChannelEmail].Status != customers.OptedOut {
			t.Errorf("after unsubscribing %.40q: %+v, %v; want a customer who opted out", addr, cu, err)
		}
	}
}
