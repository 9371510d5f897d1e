package campaigns

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/shopworks/backoffice/workers/customers"
)

// ErrBadToken is returned by Verify for a token that was not signed with
// the secret or is malformed.
var ErrBadToken = errors.New("campaigns: invalid unsubscribe token")

// tokenVersion is the first field of a token's payload; a future format
// changes it.
const tokenVersion = "u1"

// Unsubscriber makes and checks the signed one-click unsubscribe links of
// campaign e-mails: <PublicURL>/u/<token>, where the token carries the
// customer id, the campaign and the channel, signed with HMAC-SHA256.
// Links do not expire: an unsubscribe link must work as long as the mail
// exists.
type Unsubscriber struct {
	Secret    []byte // BACKOFFICE_UNSUBSCRIBE_SECRET; at least 32 bytes in production
	PublicURL string // the daemon's public base URL, "https://shop.example"
}

// URL returns the unsubscribe link for a customer of a campaign.
func (u Unsubscriber) URL(customerID, campaign string) string {
	return strings.TrimSuffix(u.PublicURL, "/") + "/u/" + u.Token(customerID, campaign, "email")
}

// AddressURL returns the unsubscribe link for an e-mail address that is no
// customer (a row of an audience file): its token names "email:<address>"
// instead of a customer id, and Apply records the opt-out on a customer
// record made for the address.
func (u Unsubscriber) AddressURL(address, campaign string) string {
	return u.URL(addressSubject+address, campaign)
}

// addressSubject starts the subject of a token that names an address.
const addressSubject = "email:"

// Token returns the signed token for customerID, campaign and channel.
func (u Unsubscriber) Token(customerID, campaign, channel string) string {
	payload := tokenVersion + "\n" + customerID + "\n" + campaign + "\n" + channel
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(payload)) + "." + enc.EncodeToString(u.sign(payload))
}

func (u Unsubscriber) sign(payload string) []byte {
	m := hmac.New(sha256.New, u.Secret)
	m.Write([]byte(payload))
	return m.Sum(nil)[:16]
}

// Verify checks token and returns the customer and campaign it names.
func (u Unsubscriber) Verify(token string) (customerID, campaign string, err error) {
	customerID, campaign, _, err = u.VerifyChannel(token)
	return customerID, campaign, err
}

// VerifyChannel is Verify that also returns the channel the token is for.
func (u Unsubscriber) VerifyChannel(token string) (customerID, campaign, channel string, err error) {
	if len(u.Secret) == 0 {
		return "", "", "", fmt.Errorf("campaigns: unsubscribe secret is not configured: %w", ErrBadToken)
	}
	p64, s64, ok := strings.Cut(token, ".")
	if !ok || len(token) > 1024 {
		return "", "", "", ErrBadToken
	}
	enc := base64.RawURLEncoding
	payload, err1 := enc.DecodeString(p64)
	sig, err2 := enc.DecodeString(s64)
	if err1 != nil || err2 != nil || !hmac.Equal(sig, u.sign(string(payload))) {
		return "", "", "", ErrBadToken
	}
	f := strings.Split(string(payload), "\n")
	if len(f) != 4 || f[0] != tokenVersion || f[1] == "" {
		return "", "", "", ErrBadToken
	}
	return f[1], f[2], f[3], nil
}

// ConsentStore is the customer store as an unsubscribe uses it
// (*customers.Store).
type ConsentStore interface {
	ByEmail(ctx context.Context, email string) (customers.Customer, error)
	Upsert(ctx context.Context, c customers.Customer) (customers.UpsertResult, error)
	SetConsent(ctx context.Context, id string, ch customers.Channel, st customers.ConsentStatus, source string, at time.Time) (bool, error)
}

// Apply verifies token and records the e-mail opt-out it asks for, with
// source "unsubscribe:<campaign>" (the customer's timeline gets the
// consent event). An address that is no customer becomes one, carrying
// only the address and the opt-out, so that later campaigns skip it. A
// customer deleted since the mail went out is not an error: there is
// nobody left to mail. Repeating it changes nothing.
func (u Unsubscriber) Apply(ctx context.Context, cs ConsentStore, token string, at time.Time) (campaign string, err error) {
	subject, campaign, channel, err := u.VerifyChannel(token)
	if err != nil {
		return "", err
	}
	if channel != "email" {
		return "", fmt.Errorf("campaigns: unsubscribe token for channel %q: %w", channel, ErrBadToken)
	}
	source := "unsubscribe:" + campaign
	id := subject
	if addr, ok := strings.CutPrefix(subject, addressSubject); ok {
		if id, err = customerForAddress(ctx, cs, addr, source, at); err != nil || id == "" {
			return campaign, err
		}
	}
	_, err = cs.SetConsent(ctx, id, customers.ChannelEmail, customers.OptedOut, source, at)
	if err != nil && !errors.Is(err, customers.ErrNotFound) {
		return campaign, fmt.Errorf("campaigns: unsubscribe customer %s: %w", id, err)
	}
	return campaign, nil
}

// customerForAddress returns the customer with e-mail addr, creating one
// that has opted out when there is none ("" then: nothing left to do).
func customerForAddress(ctx context.Context, cs ConsentStore, addr, source string, at time.Time) (string, error) {
	for attempt := 0; attempt < 2; attempt++ {
		c, err := cs.ByEmail(ctx, addr)
		if err == nil {
			return c.ID, nil
		}
		if !errors.Is(err, customers.ErrNotFound) {
			return "", fmt.Errorf("campaigns: unsubscribe %s: %w", addr, err)
		}
		sum := sha256.Sum256([]byte(strings.ToLower(addr)))
		_, err = cs.Upsert(ctx, customers.Customer{
			ID: "unsub-" + hex.EncodeToString(sum[:10]), Email: addr,
			Consent: map[customers.Channel]customers.Consent{customers.ChannelEmail: {Status: customers.OptedOut, At: at, Source: source}},
		})
		if err == nil {
			return "", nil
		}
		if !errors.Is(err, customers.ErrInUse) { // else: made by someone else meanwhile; look again
			return "", fmt.Errorf("campaigns: unsubscribe %s: record the opt-out: %w", addr, err)
		}
	}
	return "", fmt.Errorf("campaigns: unsubscribe %s: the address keeps changing owner", addr)
}
