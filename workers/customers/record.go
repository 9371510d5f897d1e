package customers

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/text/unicode/norm"
)

// record is the stored form of a customer: the record plus the index claims
// it holds, so that an update releases exactly the claim it replaced and
// never one a concurrent update has just made.
type record struct {
	Customer
	EmailClaim string `json:"email_claim,omitempty"`
	PhoneClaim string `json:"phone_claim,omitempty"`
}

func decodeRecord(id, raw string) (record, error) {
	var r record
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		return record{}, fmt.Errorf("customer %s: stored record is corrupt: %w", id, err)
	}
	return r, nil
}

func (r record) encode() string {
	b, err := json.Marshal(r)
	if err != nil { // only maps and strings: cannot happen
		panic(fmt.Sprintf("customers: encode record %s: %v", r.ID, err))
	}
	return string(b)
}

// sameContent reports whether a and b hold the same data, ignoring UpdatedAt.
func sameContent(a, b Customer) bool {
	return a.ID == b.ID && a.Name == b.Name && a.Email == b.Email && a.Phone == b.Phone &&
		a.Language == b.Language && a.Timezone == b.Timezone && a.Unknown == b.Unknown &&
		a.CreatedAt.Equal(b.CreatedAt) && slices.Equal(a.Tags, b.Tags) &&
		maps.EqualFunc(a.Consent, b.Consent, func(x, y Consent) bool {
			return x.Status == y.Status && x.At.Equal(y.At) && x.Source == y.Source && x.RepeatedAt.Equal(y.RepeatedAt)
		})
}

// emailKey is the index field of an e-mail address: lower case, in
// Unicode NFC.
func emailKey(email string) string { return strings.ToLower(norm.NFC.String(email)) }

// newClaim returns a fresh index claim for customer id: "<id>|<unix ms>|<nonce>".
func newClaim(id string, now time.Time) string {
	var nonce [6]byte
	_, _ = rand.Read(nonce[:]) // crypto/rand.Read never fails
	return id + "|" + strconv.FormatInt(now.UnixMilli(), 10) + "|" + hex.EncodeToString(nonce[:])
}

// parseClaim splits a claim into its owner and the time it was made.
func parseClaim(v string) (owner string, at time.Time) {
	owner, rest, _ := strings.Cut(v, "|")
	msStr, _, _ := strings.Cut(rest, "|")
	ms, _ := strconv.ParseInt(msStr, 10, 64)
	return owner, time.UnixMilli(ms)
}
