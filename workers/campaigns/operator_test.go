package campaigns

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/google/go-cmp/cmp"
	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/workers/customers"
	"github.com/shopworks/backoffice/workers/email/smtptest"
	"github.com/shopworks/backoffice/workers/sms/twiliotest"
)

func TestTestSend(t *testing.T) {
	t.Parallel()
	srv, withMail := withSMTP(t, smtptest.Options{})
	twilio, withSMS := withTwilio(t, twiliotest.Options{})
	b := setup(t, func(c *Config) { withMail(c); withSMS(c) })
	ctx := t.Context()
	b.addCustomers(t, customers.Customer{ID: "jana", Name: "Jana Nováková", Email: "jana@example.sk", Language: "sk"})

	camp := emailCampaign("spring", jobs.Audience{Tags: []string{"n"}})
	res, err := b.engine.TestSend(ctx, jobs.CampaignTestArgs{Campaign: camp, To: "ops@shop.example", CustomerID: "jana"})
	if err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 || msgs[0].To[0] != "ops@shop.example" || res.Language != "sk" || !strings.HasPrefix(res.Subject, "[TEST] ") {
		t.Fatalf("test send = %+v, %d messages", res, len(msgs))
	}
	addrURL := b.engine.cfg.Unsubscribe.AddressURL("ops@shop.example", "spring")
	if !strings.Contains(res.Body, "Jana") || !strings.Contains(msgs[0].Header.Get("List-Unsubscribe"), addrURL) {
		t.Errorf("test mail: body should greet the customer, and unsubscribe the test address %s: %q / %q", addrURL, res.Body, msgs[0].Header.Get("List-Unsubscribe"))
	}
	if st, err := b.engine.Store().Campaigns(ctx); err != nil || len(st) != 0 {
		t.Errorf("a test send created runs: %v %v", st, err)
	}

	b.writeFile(t, "aud.csv", "phone,language\n+421905123456,cs\n")
	sc := smsCampaign("flash", jobs.Audience{File: "aud.csv"})
	if res, err = b.engine.TestSend(ctx, jobs.CampaignTestArgs{Campaign: sc, To: "+421905999999"}); err != nil {
		t.Fatal(err)
	}
	if tm := twilio.Messages(); len(tm) != 1 || tm[0].To != "+421905999999" || !strings.HasPrefix(tm[0].Body, "[TEST] ") || res.Language != "cs" {
		t.Errorf("test sms = %+v, twilio got %+v", res, tm)
	}

	if _, err := b.engine.TestSend(ctx, jobs.CampaignTestArgs{Campaign: camp, To: "ops@shop.example", CustomerID: "nobody"}); !errors.Is(err, ErrNoCustomer) {
		t.Errorf("test send as a missing customer = %v, want ErrNoCustomer", err)
	}
	bad := camp
	bad.Template = "nope"
	if _, err := b.engine.TestSend(ctx, jobs.CampaignTestArgs{Campaign: bad, To: "ops@shop.example"}); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("test send of a missing template = %v", err)
	}
}

func TestDryRun(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := t.Context()
	b.addCustomers(t,
		customers.Customer{ID: "a", Email: "a@example.sk", Language: "sk", Tags: []string{"n"}},
		customers.Customer{ID: "b", Email: "b@example.sk", Language: "cs", Tags: []string{"n"}},
		customers.Customer{ID: "c", Email: "c@example.sk", Language: "de", Tags: []string{"n"}},
		customers.Customer{ID: "d", Email: "d@example.sk", Language: "sk", Tags: []string{"n"}, Consent: optedOut(customers.ChannelEmail)},
		customers.Customer{ID: "e", Phone: "+421905000001", Tags: []string{"n"}})
	camp := emailCampaign("dry", jobs.Audience{Tags: []string{"n"}})
	camp.RatePerSecond = 2
	rep, err := b.engine.DryRun(ctx, camp)
	if err != nil {
		t.Fatal(err)
	}
	want := DryRunReport{
		Campaign: "dry", Recipients: 3, Rendered: 3,
		Skipped:   map[string]int64{ReasonOptedOut: 1, ReasonNoAddress: 1},
		Languages: map[string]int64{"sk": 1, "cs": 1, "en": 1},
		Estimated: jobs.Duration(2 * time.Second),
	}
	if diff := cmp.Diff(want, rep, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Samples" }, cmp.Ignore())); diff != "" {
		t.Errorf("DryRun (-want +got):\n%s", diff)
	}
	if len(rep.Samples) != 3 || rep.Samples["sk"] == "" {
		t.Errorf("samples = %v, want one subject per language", rep.Samples)
	}
	if n, _ := b.engine.Store().Campaigns(ctx); len(n) != 0 {
		t.Errorf("a dry run wrote runs: %v", n)
	}

	// a file audience with bad rows, and a template that fails to render
	b.writeFile(t, "aud.csv", "email,name\nx@example.sk,X\nx@example.sk,X again\nbroken,Y\n")
	fc := emailCampaign("dryfile", jobs.Audience{File: "aud.csv"})
	fc.Template = "missing-template"
	rep, err = b.engine.DryRun(ctx, fc)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Recipients != 1 || rep.Skipped[ReasonDuplicate] != 1 || rep.Skipped[ReasonInvalidAddress] != 1 || len(rep.Failures) != 1 {
		t.Errorf("file dry run = %+v", rep)
	}
}

// TestLaunchIsTheLatestRunAtOnce: between `campaign run` (or retry-failed)
// and the start of its launch task, the new run is the one that status,
// pause and cancel of "the latest run" act on. Before, they acted on the
// previous run: a status right after a launch showed the old finished run
// (or "has not run yet"), and a cancel right after a launch by mistake
// failed on the old run while the new one went on sending.
func TestLaunchIsTheLatestRunAtOnce(t *testing.T) {
	t.Parallel()
	_, withMail := withSMTP(t, smtptest.Options{Reject: func(rcpt string, _ int) *smtp.SMTPError {
		if strings.HasPrefix(rcpt, "gone") {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		}
		return nil
	}})
	b := setup(t, withMail)
	ctx := t.Context()
	for _, id := range []string{"ok1", "gone", "ok2"} {
		b.addCustomers(t, customers.Customer{ID: id, Email: id + "@example.sk", Tags: []string{"n"}})
	}
	camp := emailCampaign("soon", jobs.Audience{Tags: []string{"n"}})
	if err := b.engine.HandleLaunch(ctx, launchArgs(camp, "r0")); err != nil {
		t.Fatal(err)
	}
	b.runUntilDone(t, "soon", "r0", 2, nil)

	run, err := b.engine.Launch(ctx, camp, "", "manual")
	if err != nil {
		t.Fatal(err)
	}
	if st := b.status(t, "soon", ""); st.Run != run || st.State != StateRunning || !st.Planning || st.Trigger != "manual" {
		t.Fatalf("latest run before its launch task ran = %s %s planning=%v trigger %q, want %s running and planning",
			st.Run, st.State, st.Planning, st.Trigger, run)
	}
	if err := b.engine.Cancel(ctx, "soon", "", "launched by mistake"); err != nil {
		t.Fatalf("cancel of the latest run right after its launch: %v", err)
	}
	if err := b.engine.HandleLaunch(ctx, launchArgs(camp, run)); err != nil {
		t.Fatal(err)
	}
	if st := b.status(t, "soon", run); st.State != StateCancelled || st.Counts.Total != 0 || st.Chunks != 0 {
		t.Errorf("run cancelled before its launch task = %s total %d chunks %d, want cancelled with nothing planned", st.State, st.Counts.Total, st.Chunks)
	}
	if st := b.status(t, "soon", "r0"); st.State != StateFinished {
		t.Errorf("previous run = %s, want finished, untouched", st.State)
	}

	next, err := b.engine.RetryFailed(ctx, "soon", "r0")
	if err != nil {
		t.Fatal(err)
	}
	if st := b.status(t, "soon", ""); st.Run != next || st.Trigger != "retry-failed" || st.RetryOf != "r0" || !st.Planning {
		t.Errorf("latest run after retry-failed = %s trigger %q of %q planning=%v, want %s, a retry of r0 being planned",
			st.Run, st.Trigger, st.RetryOf, st.Planning, next)
	}
	a := jobs.CampaignLaunchArgs{Campaign: camp, Run: next, Trigger: "retry-failed", RetryOf: "r0"}
	if err := b.engine.HandleLaunch(ctx, a); err != nil {
		t.Fatal(err)
	}
	if st := b.status(t, "soon", next); st.Counts.Total != 1 || st.Planning {
		t.Errorf("retry run after its launch task = %+v, want the 1 failed recipient planned", st)
	}
}
