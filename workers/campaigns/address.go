package campaigns

import (
	"fmt"
	"net/mail"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// normalEmail returns the bare address s in the form the ledger keys it
// by (domain lower-cased; the local part kept, as RFC 5321 says), or an
// error naming what is wrong.
func normalEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return "", fmt.Errorf("not a bare e-mail address: %q", s)
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
