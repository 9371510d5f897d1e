package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/workers/campaigns"
	"github.com/shopworks/backoffice/workers/sms"
)

func TestParseFlags(t *testing.T) {
	t.Parallel()
	o, err := parseFlags([]string{"-daemon", "bin/backofficed"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{phaseEmail, phasePlan, phaseSMS}, o.phases); diff != "" {
		t.Errorf("default phases (-want,+got):\n%s", diff)
	}
	if o.emailRecipients != 100_000 || o.planRecipients != 1_000_000 || o.smsRecipients != 12_000 || o.smsRate != 200 {
		t.Errorf("defaults = %d mails, %d planned, %d SMS at %v/s; want the issue's 100000, 1000000, 12000 at 200/s",
			o.emailRecipients, o.planRecipients, o.smsRecipients, o.smsRate)
	}

	o, err = parseFlags([]string{"-daemon", "d", "-quick", "-sms-recipients", "500", "-phases", "sms,email"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.emailRecipients != 10_000 || o.planRecipients != 100_000 || o.smsRecipients != 500 || o.smsTimeout != 2*time.Minute {
		t.Errorf("-quick with -sms-recipients 500 = %d mails, %d planned, %d SMS, cut after %v; want 10000, 100000, 500 (explicit wins), 2m",
			o.emailRecipients, o.planRecipients, o.smsRecipients, o.smsTimeout)
	}
	if diff := cmp.Diff([]string{phaseEmail, phaseSMS}, o.phases); diff != "" {
		t.Errorf("-phases sms,email: want the run order (-want,+got):\n%s", diff)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{}, "-daemon is required"},
		{[]string{"-daemon", "d", "-phases", "email,mail"}, `-phases: unknown phase "mail"`},
		{[]string{"-daemon", "d", "-phases", "plan,plan"}, `-phases: "plan" given twice`},
		{[]string{"-daemon", "d", "-smtp-pool", "65"}, "-smtp-pool: want 1..64"},
		{[]string{"-daemon", "d", "-email-rate", "20000"}, "-email-rate: want above 0 and at most 10000"},
		{[]string{"-daemon", "d", "-sms-recipients", "1000001"}, "-sms-recipients: want 1..1000000"},
		{[]string{"-daemon", "d", "-sms-429", "0.6", "-sms-500", "0.4"}, "-sms-429 and -sms-500"},
		{[]string{"-daemon", "d", "extra"}, `unexpected argument "extra"`},
	} {
		_, err := parseFlags(tc.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseFlags(%q) = %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
}

func TestCheckDeliveries(t *testing.T) {
	t.Parallel()
	addr := func(i int) string { return []string{"a", "b", "c", "d"}[i] }
	for _, tc := range []struct {
		name   string
		got    map[string]int
		ledger map[string]campaigns.EntryState
		cut    bool
		want   deliveries
		ok     bool
	}{
		{name: "each once", got: map[string]int{"a": 1, "b": 1, "c": 1, "d": 1},
			want: deliveries{recipients: 4, once: 4, messages: 4}, ok: true},
		{name: "one twice, one missing", got: map[string]int{"a": 2, "b": 1, "c": 1},
			want: deliveries{recipients: 4, once: 2, duplicated: 1, lost: 1, messages: 4}},
		{name: "missing but recorded as failed", got: map[string]int{"a": 1, "b": 1, "c": 1},
			ledger: map[string]campaigns.EntryState{"d": campaigns.EntryFailed},
			want:   deliveries{recipients: 4, once: 3, failed: 1, messages: 3}, ok: true},
		{name: "pending in a finished run is lost", got: map[string]int{"a": 1, "b": 1, "c": 1},
			ledger: map[string]campaigns.EntryState{"d": campaigns.EntryPending},
			want:   deliveries{recipients: 4, once: 3, lost: 1, messages: 3}},
		{name: "pending in a cut run is unsent", got: map[string]int{"a": 1}, cut: true,
			ledger: map[string]campaigns.EntryState{"b": campaigns.EntryPending, "c": campaigns.EntrySending, "d": campaigns.EntrySent},
			want:   deliveries{recipients: 4, once: 1, unsent: 2, lost: 1, messages: 1}},
		{name: "message outside the audience", got: map[string]int{"a": 1, "b": 1, "c": 1, "d": 1, "e": 3},
			want: deliveries{recipients: 4, once: 4, extra: 3, messages: 7}},
	} {
		d := checkDeliveries(4, addr, tc.got, tc.ledger, tc.cut)
		if diff := cmp.Diff(tc.want, d, cmp.AllowUnexported(deliveries{})); diff != "" {
			t.Errorf("%s: checkDeliveries (-want,+got):\n%s", tc.name, diff)
		}
		if d.ok() != tc.ok {
			t.Errorf("%s: ok() = %v, want %v (%s)", tc.name, d.ok(), tc.ok, d)
		}
	}
}

func TestProcAndInfoFields(t *testing.T) {
	t.Parallel()
	status := "Name:\tbackofficed\nVmPeak:\t 1300000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\n"
	if got, err := procStatusField(status, "VmHWM"); err != nil || got != 50<<20 {
		t.Errorf("procStatusField(VmHWM) = %d, %v; want %d", got, err, 50<<20)
	}
	if _, err := procStatusField(status, "VmSwap"); err == nil {
		t.Error("procStatusField(VmSwap) on a status without it: want an error")
	}
	if _, err := procStatusField("VmHWM:\t12 MB\n", "VmHWM"); err == nil {
		t.Error("procStatusField with a unit other than kB: want an error")
	}
	peak, rss, err := processMemory(os.Getpid())
	if err != nil || peak <= 0 || rss <= 0 || rss > peak {
		t.Errorf("processMemory(self) = peak %d, rss %d, %v; want 0 < rss <= peak", peak, rss, err)
	}
	info := "# Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\n"
	if got, err := infoField(info, "used_memory"); err != nil || got != 1<<20 {
		t.Errorf("infoField(used_memory) = %d, %v; want %d", got, err, 1<<20)
	}
	if _, err := infoField("used_memory_human:1.00M\r\n", "used_memory"); err == nil {
		t.Error("infoField without used_memory: want an error")
	}
}

func TestRateAndTargets(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	if got := rateBetween(12000, start, start.Add(60*time.Second)); got != 200 {
		t.Errorf("rateBetween(12000 in 60s) = %v, want 200", got)
	}
	if got := rateBetween(1, start, start); got != 0 {
		t.Errorf("rateBetween(1 message) = %v, want 0", got)
	}
	run := smsRun{rate: 200, twilio: twilioTally{passed: 12000, first: start, last: start.Add(56 * time.Second)}}
	if run.withinRate() { // 214.3/s
		t.Errorf("withinRate at %.1f/s for 200/s = true, want false (over 5%%)", run.achieved())
	}
	run.twilio.last = start.Add(59 * time.Second) // 203.4/s
	if !run.withinRate() {
		t.Errorf("withinRate at %.1f/s for 200/s = false, want true", run.achieved())
	}
	run.timedOut = true
	if run.withinRate() {
		t.Error("withinRate of a run cut at the timeout = true, want false")
	}

	e := emailResult{recipients: 100, base: ceiling{res: baselineResult{sent: 1000, elapsed: time.Second}},
		inProcess: ceiling{res: baselineResult{sent: 2000, elapsed: time.Second}},
		elapsed:   time.Second, status: campaigns.RunStatus{Counts: campaigns.Counts{Sent: 790}}}
	campaignRow := func() row {
		for _, r := range e.rows() {
			if strings.HasPrefix(r.figure, "(b) campaign") {
				return r
			}
		}
		t.Fatal("no (b) campaign row")
		return row{}
	}
	if got := campaignRow(); got.result != "MISS" || got.ratio != "0.79" {
		t.Errorf("campaign at 0.79 of the sender process: %+v, want MISS", got)
	}
	e.status.Counts.Sent = 800
	if got := campaignRow().result; got != "PASS" {
		t.Errorf("campaign at 0.80 of the sender process: %s, want PASS (the target is against (a), not (a'))", got)
	}
	// rounds: the median one is reported, unless one lost a message
	round := func(sent int64, rate float64) emailResult {
		return emailResult{recipients: 100, base: ceiling{res: baselineResult{sent: int(rate), elapsed: time.Second},
			check: deliveries{messages: 100}}, inProcess: ceiling{check: deliveries{messages: 100}},
			elapsed: time.Second, status: campaigns.RunStatus{State: campaigns.StateFinished, Counts: campaigns.Counts{Sent: sent}},
			check: deliveries{messages: 100}}
	}
	rounds := []emailResult{round(100, 125), round(100, 100), round(100, 200)} // ratios 0.80, 1.00, 0.50
	for _, r := range rounds {
		if !r.ok() {
			t.Fatalf("round %+v not ok", r)
		}
	}
	if got := pickRound(rounds); got != 0 {
		t.Errorf("pickRound of ratios 0.80, 1.00, 0.50 = %d, want 0 (the median)", got)
	}
	if got := pickRound(rounds[1:]); got != 1 {
		t.Errorf("pickRound of ratios 1.00, 0.50 = %d, want 1 (the lower middle)", got)
	}
	rounds[2].check.duplicated = 1
	if got := pickRound(rounds); got != 2 {
		t.Errorf("pickRound with a duplicate in round 2 = %d, want 2", got)
	}
	e.rounds, e.round = []float64{0.8, 1, 0.5}, 0
	if got := e.roundsRow(); got.measured != "0.80* 1.00 0.50" {
		t.Errorf("rounds row = %+v", got)
	}

	p := planResult{recipients: 100_000, elapsed: 2900 * time.Millisecond, peak: 300 << 20, idlePeak: 30 << 20}
	rows := p.rows()
	if rows[0].result != "PASS" || !strings.Contains(rows[0].target, "3.00 s (scaled)") || rows[1].result != "MISS" {
		t.Errorf("planning 100,000 in 2.9s with 300 MiB: %+v; want PASS against a scaled 3s, MISS on memory", rows[:2])
	}
}

// TestScheduleFile writes the bench's audience and schedule file and reads
// them back as the daemon does (schedules.Load).
func TestScheduleFile(t *testing.T) {
	t.Parallel()
	for _, spec := range []campaignSpec{
		{name: "bench-email", channel: jobs.ChannelEmail, rate: 10000},
		{name: "bench-sms", channel: jobs.ChannelSMS, rate: 0.5},
	} {
		l := &local{dir: t.TempDir()}
		if err := os.MkdirAll(l.schedulesDir(), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := prepareCampaign(l, spec, 3); err != nil {
			t.Fatal(err)
		}
		c, err := loadCampaign(l.schedulesDir(), spec.name)
		if err != nil {
			t.Fatal(err)
		}
		want := jobs.Campaign{Name: spec.name, Channel: spec.channel, Template: benchTemplate, RatePerSecond: spec.rate,
			Timezone: "Europe/Bratislava", Audience: jobs.Audience{File: filepath.Join(l.dir, spec.name+".csv")}}
		if diff := cmp.Diff(want, c); diff != "" {
			t.Errorf("%s: campaign from the schedule file (-want,+got):\n%s", spec.name, diff)
		}
		csv, err := os.ReadFile(c.Audience.File)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(csv)), "\n")
		addr := emailAddress
		if spec.channel == jobs.ChannelSMS {
			addr = phoneNumber
		}
		if len(lines) != 4 || !strings.HasPrefix(lines[3], addr(2)+",") {
			t.Errorf("%s: audience file = %q, want a header and 3 rows, the last for %s", spec.name, lines, addr(2))
		}
	}
}

// TestBaselineIntoSink sends with go-mail and with the daemon's pool to the
// sink and checks that it counts every recipient, and counts a repeated
// one twice.
func TestBaselineIntoSink(t *testing.T) {
	t.Parallel()
	s, err := startSink()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	content, err := renderContent(&local{unsubSecret: "0123456789abcdef", publicURL: "http://127.0.0.1:8080"}, "bench-email")
	if err != nil {
		t.Fatal(err)
	}
	res, err := runBaseline(t.Context(), s.Addr, content, 3, 0, 40)
	if err != nil || res.sent != 40 || res.errors != 0 {
		t.Fatalf("runBaseline(40 messages, 3 connections) = %+v, %v; want 40 sent", res, err)
	}
	acc := s.take()
	// the second half from a sender process of its own, as (a) sends
	half, cpu, err := runSenderProcess(t.Context(), s.Addr, content, 2, 40, 10, false)
	if err != nil || half.sent != 10 || half.errors != 0 || cpu <= 0 {
		t.Fatalf("runSenderProcess(10 messages, 2 connections) = %+v, CPU %v, %v; want 10 sent", half, cpu, err)
	}
	acc.add(s.take())
	// and through the daemon's pool in a sender process, as (a") sends
	pooled, cpu, err := runSenderProcess(t.Context(), s.Addr, content, 2, 50, 10, true)
	if err != nil || pooled.sent != 10 || pooled.errors != 0 || cpu <= 0 {
		t.Fatalf("runSenderProcess(10 messages, 2 connections, pool) = %+v, CPU %v, %v; want 10 sent", pooled, cpu, err)
	}
	acc.add(s.take())
	if _, err := runBaseline(t.Context(), s.Addr, content, 1, 0, 1); err != nil { // recipient 0 again
		t.Fatal(err)
	}
	acc.add(s.take())
	d := checkDeliveries(60, emailAddress, acc.byRcpt, nil, false)
	if d.messages != 61 || d.once != 59 || d.duplicated != 1 || d.lost != 0 || acc.messages != 61 {
		t.Errorf("sink after messages 0..59 and recipient 0 again: %s; want 61 messages, 59 once, 1 duplicated", d)
	}
	if avg := acc.bytes / int64(acc.messages); avg < 1000 {
		t.Errorf("average message size %d bytes; want the rendered promo e-mail (over 1000)", avg)
	}
	if acc.first.IsZero() || acc.last.Before(acc.first) {
		t.Errorf("tally spans %v to %v; want first <= last", acc.first, acc.last)
	}
	if s.count() != 0 {
		t.Errorf("count after take = %d, want a new tally", s.count())
	}
}

// TestTwilioFake sends through the daemon's Twilio sender to the fake,
// first without failures, then with most requests failed.
func TestTwilioFake(t *testing.T) {
	t.Parallel()
	tw := startTwilio(7)
	t.Cleanup(tw.stop)
	sender, err := sms.NewTwilio(sms.TwilioOptions{AccountSID: tw.AccountSID, AuthToken: tw.AuthToken, From: smsFrom, APIURL: tw.URL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sender.Close() })
	send := func(n int) (failed int) {
		for i := range n {
			if _, err := sender.Send(context.Background(), sms.Message{To: phoneNumber(i), Body: "bench"}); err != nil {
				failed++
			}
		}
		return failed
	}
	if mark := tw.begin(0, 0); mark != 0 {
		t.Fatalf("begin on a new server = %d, want 0", mark)
	}
	if failed := send(5); failed != 0 {
		t.Fatalf("%d of 5 sends failed without injected failures", failed)
	}
	mark := tw.begin(0.4, 0.4)
	if mark != 5 {
		t.Errorf("begin after 5 messages = %d, want 5", mark)
	}
	failed := send(50)
	got := tw.tally()
	if got.requests != 50 || got.throttled+got.errors != failed || got.passed != 50-failed || tw.Count()-mark != got.passed {
		t.Errorf("tally after 50 sends with %d failed = %+v, server count %d; want requests 50, failures %d, passed %d",
			failed, got, tw.Count(), failed, 50-failed)
	}
	if got.throttled == 0 || got.errors == 0 || got.first.After(got.last) {
		t.Errorf("tally = %+v; want both 429s and 500s at 40%% each, first <= last", got)
	}
}

func TestDaemonEnv(t *testing.T) {
	t.Parallel()
	got := daemonEnv([]string{"PATH=/bin", "BACKOFFICE_SMTP_URL=smtp://relay.example", "HOME=/root"},
		[]string{"BACKOFFICE_SMTP_POOL=8"})
	want := []string{"PATH=/bin", "HOME=/root", "BACKOFFICE_SMTP_POOL=8"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("daemonEnv: the shell's BACKOFFICE_* must not reach the daemon (-want,+got):\n%s", diff)
	}
}

func TestTwilioTimeline(t *testing.T) {
	t.Parallel()
	tally := twilioTally{perSecond: []int{200, 200, 100, 0, 0, 0, 300}}
	if got := tally.timeline(2); got != "200 50 0 150" {
		t.Errorf("timeline(2) = %q, want %q", got, "200 50 0 150")
	}
}
