package campaigns

import (
	"fmt"
	"strings"

	"github.com/nyaruka/phonenumbers"

	"github.com/shopworks/backoffice/workers/customers"
)

// normalEmail returns the bare address s in the form the ledger keys it
// by (domain lower-cased; the local part kept, as RFC 5321 says), or an
// error naming what is wrong. It accepts exactly the addresses the customer
// store does (customers.CheckEmail: a dot in the domain, at most 254
// bytes): an unsubscribe from an address that is no customer stores the
// address as a customer who opted out, and an address the store refused
// could never be unsubscribed.
func normalEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	if err := customers.CheckEmail(s); err != nil {
		return "", err
	}
	at := strings.LastIndexByte(s, '@')
	return s[:at] + strings.ToLower(s[at:]), nil
}

// normalPhone returns s as an E.164 number ("+421905123456"). Numbers
// without a country code are read in defaultRegion ("SK"); with no
// default region they must start with '+'.
func normalPhone(s, defaultRegion string) (string, error) {
	s = strings.TrimSpace(s)
	if defaultRegion == "" && !strings.HasPrefix(s, "+") {
		return "", fmt.Errorf("phone %q: want international format +<country><number>", s)
	}
	n, err := phonenumbers.Parse(s, defaultRegion)
	if err != nil {
		return "", fmt.Errorf("phone %q: %v", s, err)
	}
	if !phonenumbers.IsValidNumber(n) {
		return "", fmt.Errorf("phone %q: not a valid number", s)
	}
	return phonenumbers.Format(n, phonenumbers.E164), nil
}
