package campaigns

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
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
