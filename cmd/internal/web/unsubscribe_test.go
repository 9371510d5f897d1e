package web_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/shopworks/backoffice/cmd/internal/web"
	"github.com/shopworks/backoffice/workers/campaigns"
	"github.com/shopworks/backoffice/workers/customers"
)

func TestUnsubscribeLinks(t *testing.T) {
	t.Parallel()
	unsub := campaigns.Unsubscriber{Secret: []byte("unsubscribe-secret-0123456789abcdef"), PublicURL: "https://shop.example"}
	b := setup(t, func(o *web.Options) { o.Unsubscribe = unsub })
	ctx := t.Context()
	for _, id := range []string{"jana", "petr"} {
		if _, err := b.store.Upsert(ctx, customers.Customer{ID: id, Email: id + "@example.sk"}); err != nil {
			t.Fatal(err)
		}
	}
	path := func(customer string) string {
		return strings.TrimPrefix(unsub.URL(customer, "spring"), "https://shop.example")
	}
	optedOut := func(id string) bool {
		c, err := b.store.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return c.Consent[customers.ChannelEmail].Status == customers.OptedOut
	}

	// GET shows a button and changes nothing (mail scanners open links)
	resp, body := b.call(t, "GET", path("jana"), "", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `id="unsubscribe"`) || optedOut("jana") {
		t.Fatalf("GET: %d, opted out %v: %s", resp.StatusCode, optedOut("jana"), body)
	}
	// the button posts the form
	resp, body = b.call(t, "POST", path("jana"), "", strings.NewReader(""), "Content-Type", "application/x-www-form-urlencoded")
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `id="unsubscribe-done"`) || !optedOut("jana") {
		t.Fatalf("POST from the page: %d, opted out %v: %s", resp.StatusCode, optedOut("jana"), body)
	}
	c, _ := b.store.Get(ctx, "jana")
	if src := c.Consent[customers.ChannelEmail].Source; src != "unsubscribe:spring" {
		t.Errorf("consent source %q, want unsubscribe:spring", src)
	}
	events, err := b.store.Timeline(ctx, "jana", 10)
	if err != nil || len(events) == 0 || events[0].Kind != "consent.opt_out" {
		t.Errorf("timeline = %+v, %v; want a consent.opt_out event", events, err)
	}
	// RFC 8058 one-click from the mail client, twice (idempotent)
	for range 2 {
		resp, body = b.call(t, "POST", path("petr"), "", strings.NewReader("List-Unsubscribe=One-Click"), "Content-Type", "application/x-www-form-urlencoded")
		if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "unsubscribed" || !optedOut("petr") {
			t.Fatalf("one-click POST: %d %q, opted out %v", resp.StatusCode, body, optedOut("petr"))
		}
	}
	// a deleted customer gets the same answer
	if resp, _ := b.call(t, "POST", path("gone"), "", strings.NewReader("List-Unsubscribe=One-Click")); resp.StatusCode != http.StatusOK {
		t.Errorf("one-click for an unknown customer: %d, want 200", resp.StatusCode)
	}
	// an address that is no customer becomes one that has opted out
	addr := strings.TrimPrefix(unsub.AddressURL("Stranger@Example.sk", "spring"), "https://shop.example")
	for range 2 {
		if resp, body := b.call(t, "POST", addr, "", strings.NewReader("List-Unsubscribe=One-Click")); resp.StatusCode != http.StatusOK {
			t.Fatalf("one-click for an address: %d %s", resp.StatusCode, body)
		}
	}
	stranger, err := b.store.ByEmail(ctx, "stranger@example.sk")
	if err != nil || stranger.Consent[customers.ChannelEmail].Status != customers.OptedOut {
		t.Errorf("address unsubscribe: customer %+v, %v; want one that opted out", stranger, err)
	}
	// an address of a customer opts that customer out
	if resp, _ := b.call(t, "POST", strings.TrimPrefix(unsub.AddressURL("jana@example.sk", "autumn"), "https://shop.example"), "", strings.NewReader("List-Unsubscribe=One-Click")); resp.StatusCode != http.StatusOK {
		t.Errorf("address of a customer: %d", resp.StatusCode)
	}
	if c, _ := b.store.Get(ctx, "jana"); c.Consent[customers.ChannelEmail].Source != "unsubscribe:spring" {
		t.Errorf("an older opt-out's source changed: %+v", c.Consent)
	}
	// forged and foreign tokens change nothing
	other := campaigns.Unsubscriber{Secret: []byte("another-secret-0123456789abcdefgh")}
	for _, p := range []string{"/u/" + other.Token("jana", "spring", "email"), "/u/garbage", path("petr") + "x"} {
		for _, method := range []string{"GET", "POST"} {
			if resp, _ := b.call(t, method, p, "", strings.NewReader("List-Unsubscribe=One-Click")); resp.StatusCode != http.StatusNotFound {
				t.Errorf("%s %s: %d, want 404", method, p, resp.StatusCode)
			}
		}
	}
	if resp, _ := b.call(t, "POST", path("jana"), "", strings.NewReader(strings.Repeat("x", 5000))); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("huge body: %d, want 413", resp.StatusCode)
	}
}
