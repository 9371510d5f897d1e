package campaigns

import (
	"errors"
	"strings"
	"testing"
)

func TestUnsubscribeTokens(t *testing.T) {
	t.Parallel()
	u := Unsubscriber{Secret: []byte("0123456789abcdef0123456789abcdef"), PublicURL: "https://shop.example/"}
	url := u.URL("c-42", "spring")
	token, ok := strings.CutPrefix(url, "https://shop.example/u/")
	if !ok {
		t.Fatalf("URL = %q, want https://shop.example/u/<token>", url)
	}
	id, campaign, err := u.Verify(token)
	if err != nil || id != "c-42" || campaign != "spring" {
		t.Fatalf("Verify(URL token) = %q, %q, %v", id, campaign, err)
	}
	if _, _, ch, err := u.VerifyChannel(token); err != nil || ch != "email" {
		t.Errorf("VerifyChannel = %q, %v; want email", ch, err)
	}
	other := Unsubscriber{Secret: []byte("another secret, another secret!!")}
	payload, sig, _ := strings.Cut(token, ".")
	forged := u.Token("c-43", "spring", "email")
	fp, _, _ := strings.Cut(forged, ".")
	bad := []struct{ name, token string }{
		{"other secret", other.Token("c-42", "spring", "email")},
		{"payload swapped", fp + "." + sig},
		{"no signature", payload},
		{"empty", ""},
		{"garbage", "!!!.???"},
		{"truncated signature", payload + "." + sig[:10]},
		{"huge", strings.Repeat("a", 2000) + "." + sig},
		{"empty customer", u.Token("", "spring", "email")},
	}
	for _, b := range bad {
		if _, _, err := u.Verify(b.token); !errors.Is(err, ErrBadToken) {
			t.Errorf("Verify(%s) = %v, want ErrBadToken", b.name, err)
		}
	}
	if _, _, err := (Unsubscriber{}).Verify(token); !errors.Is(err, ErrBadToken) {
		t.Errorf("Verify without a secret = %v, want ErrBadToken", err)
	}
}
