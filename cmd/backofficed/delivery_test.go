package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/shopworks/backoffice/workers/customers"
	"github.com/shopworks/backoffice/workers/email/smtptest"
	"github.com/shopworks/backoffice/workers/sms/twiliotest"
)

// The daemon sends through what its configuration names: a HELP text is
// answered through the Twilio API in the customer's language with the
// configured shop name, and a campaign test mail goes through the SMTP
// relay with the configured From.
func TestDaemonDeliversThroughConfiguredRelays(t *testing.T) {
	tw := twiliotest.Start(t)
	relay := smtptest.Start(t)
	td := startTestDaemon(t, map[string]string{
		"BACKOFFICE_TWILIO_ACCOUNT_SID": tw.AccountSID,
		"BACKOFFICE_TWILIO_AUTH_TOKEN":  tw.AuthToken,
		"BACKOFFICE_TWILIO_FROM":        "+421233000000",
		"BACKOFFICE_TWILIO_API_URL":     tw.URL,
		"BACKOFFICE_SMTP_URL":           relay.URL(),
		"BACKOFFICE_MAIL_FROM":          "Eshop Test <shop@eshop.example>",
		"BACKOFFICE_SHOP_NAME":          "Eshop Test",
		"BACKOFFICE_SUPPORT_EMAIL":      "help@eshop.example",
	})
	ctx := context.Background()
	if _, err := td.customers.Upsert(ctx, customers.Customer{ID: "c-jana", Name: "Jana Nováková",
		Email: "jana@example.sk", Phone: "+421905123456", Language: "sk"}); err != nil {
		t.Fatal(err)
	}

	// HELP through the signed webhook.
	const path = "/webhooks/twilio/sms"
	form := url.Values{"MessageSid": {"SM0123456789abcdef0123456789abcdef"}, "AccountSid": {tw.AccountSID},
		"From": {"+421905123456"}, "To": {"+421233000000"}, "Body": {"help"}, "NumMedia": {"0"}}
	req, err := http.NewRequest(http.MethodPost, td.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", twiliotest.Sign(tw.AuthToken, td.cfg.PublicURL+path, form))
	resp, err := td.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s = %d, want 200", path, resp.StatusCode)
	}
	msgs := tw.WaitFor(t, 1, 30*time.Second)
	if m := msgs[0]; m.To != "+421905123456" || m.From != "+421233000000" ||
		!strings.Contains(m.Body, "Píše vám Eshop Test") || !strings.Contains(m.Body, "help@eshop.example") {
		t.Errorf("HELP reply = to %s from %s %q; want the Slovak help text with the shop name and support address", m.To, m.From, m.Body)
	}

	// A campaign test mail through the relay.
	body := `{"campaign":{"name":"welcome-test","channel":"email","template":"welcome","audience":{"tags":["new"]},
		"rate_per_second":10,"timezone":"Europe/Bratislava"},"to":"ops@eshop.example","customer_id":"c-jana"}`
	req, err = http.NewRequest(http.MethodPost, td.URL+"/api/jobs/campaign:test", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+td.Token)
	req.Header.Set("Content-Type", "application/json")
	if resp, err = td.HTTP.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /api/jobs/campaign:test = %d, want 202", resp.StatusCode)
	}
	waitFor(t, "the test mail at the relay", func() bool { return relay.Count() == 1 })
	m := relay.Messages()[0]
	if len(m.To) != 1 || m.To[0] != "ops@eshop.example" || m.From != "shop@eshop.example" {
		t.Errorf("test mail envelope = from %s to %v, want shop@eshop.example to ops@eshop.example", m.From, m.To)
	}
	if subj := m.Header.Get("Subject"); !strings.Contains(subj, "TEST") {
		t.Errorf("test mail subject = %q, want it marked as a test", subj)
	}
}
