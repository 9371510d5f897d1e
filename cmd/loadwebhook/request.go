package main

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"hash"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/shopworks/backoffice/workers/sms"
)

// fieldKind says where the value of a form field comes from.
type fieldKind int

const (
	fixedValue fieldKind = iota // field.value, the same in every message
	sidValue                    // the message's MessageSid
	fromValue                   // its sender
	bodyValue                   // its text
)

// field is one field of the incoming-SMS form.
type field struct {
	name  string
	kind  fieldKind
	value string // with fixedValue
}

// inboundFields are the fields Twilio posts for an incoming SMS, sorted by
// name: the order of the signature's input (see sms.Sign) and of the body
// (as url.Values.Encode writes it). Each name appears once.
var inboundFields = sortedFields([]field{
	{name: "ToCountry", value: "SK"}, {name: "ToState"}, {name: "SmsMessageSid", kind: sidValue},
	{name: "NumMedia", value: "0"}, {name: "ToCity"}, {name: "FromZip"}, {name: "SmsSid", kind: sidValue},
	{name: "FromState"}, {name: "SmsStatus", value: "received"}, {name: "FromCity"}, {name: "Body", kind: bodyValue},
	{name: "FromCountry", value: "SK"}, {name: "To", value: "+421233000000"}, {name: "ToZip"},
	{name: "NumSegments", value: "1"}, {name: "MessageSid", kind: sidValue},
	{name: "AccountSid", value: "AC00000000000000000000000000000000"}, {name: "From", kind: fromValue},
	{name: "ApiVersion", value: "2010-04-01"},
})

// sortedFields sorts fs by name; it panics when a name appears twice,
// which would make the signature's input differ from sms.Sign's.
func sortedFields(fs []field) []field {
	slices.SortFunc(fs, func(a, b field) int { return strings.Compare(a.name, b.name) })
	for i := 1; i < len(fs); i++ {
		if fs[i-1].name == fs[i].name {
			panic(fmt.Sprintf("loadwebhook: form field %s twice", fs[i].name))
		}
	}
	return fs
}

// sid returns the MessageSid of the n-th message: SM, the run, n in hex.
func (l *load) sid(n uint64) string { return string(l.appendSID(nil, n)) }

// phone returns the sender of the n-th message, one of l.phones Slovak
// mobile numbers +421905000000...
func (l *load) phone(n uint64) string { return string(l.appendPhone(nil, n)) }

// appendSID appends the MessageSid of the n-th message: SM, the run (14
// hex digits), n in 18 hex digits.
func (l *load) appendSID(b []byte, n uint64) []byte {
	b = append(b, "SM"...)
	b = append(b, l.run...)
	return appendPadded(b, n, 16, 18)
}

// appendPhone appends the sender of the n-th message.
func (l *load) appendPhone(b []byte, n uint64) []byte {
	return appendPadded(append(b, "+421905"...), n%uint64(l.phones), 10, 6)
}

// appendText appends the text of the n-th message.
func appendText(b []byte, n uint64) []byte {
	b = append(b, "Load test message "...)
	b = strconv.AppendUint(b, n, 10)
	return append(b, ": is my parcel on its way?"...)
}

// appendPadded appends n in base with at least width digits, zeros first.
func appendPadded(b []byte, n uint64, base, width int) []byte {
	var digits [64]byte
	d := strconv.AppendUint(digits[:0], n, base)
	for range width - len(d) {
		b = append(b, '0')
	}
	return append(b, d...)
}

// form returns the form of the n-th message as url.Values: what the
// daemon parses, and the reference the fast builder is tested against.
func (l *load) form(n uint64) url.Values {
	form := url.Values{}
	for _, f := range inboundFields {
		form.Set(f.name, string(l.appendValue(nil, f, n)))
	}
	return form
}

// appendValue appends the value of field f of the n-th message.
func (l *load) appendValue(b []byte, f field, n uint64) []byte {
	switch f.kind {
	case sidValue:
		return l.appendSID(b, n)
	case fromValue:
		return l.appendPhone(b, n)
	case bodyValue:
		return appendText(b, n)
	}
	return append(b, f.value...)
}

// part is a piece of a message's body or signature input: text that is
// the same in every message, then the value of one field that is not (none
// when kind is fixedValue).
type part struct {
	text string
	kind fieldKind
}

// compileParts lays out the fields in order after prefix, each as
// sep(i) + name + eq + value, escaping the values with escape; the fixed
// values are written into the text once, so only the others are left.
func compileParts(prefix string, fields []field, sep func(i int) string, eq string, escape func(string) string) []part {
	var parts []part
	text := prefix
	for i, f := range fields {
		text += sep(i) + f.name + eq
		if f.kind == fixedValue {
			text += escape(f.value)
			continue
		}
		parts = append(parts, part{text: text, kind: f.kind})
		text = ""
	}
	return append(parts, part{text: text})
}

// requestBuilder writes the signed HTTP/1.1 request of a message into
// buffers it reuses, without allocating: each worker has its own. The same
// n gives the same request, signature included, so a replay is the request
// Twilio would repeat.
type requestBuilder struct {
	l         *load
	head      string    // request line, Host and Content-Type, each ending in CRLF
	signParts []part    // the signature's input: the URL, then each name and value
	bodyParts []part    // the form, URL-encoded
	mac       hash.Hash // HMAC-SHA1 keyed with the auth token
	values    [bodyValue + 1][]byte
	signed    []byte
	body      []byte
	sum       []byte
	sig       [28]byte // base64 of the 20-byte HMAC
	req       []byte   // the whole request
}

func newRequestBuilder(l *load, requestURI, host string) *requestBuilder {
	none := func(int) string { return "" }
	amp := func(i int) string {
		if i == 0 {
			return ""
		}
		return "&"
	}
	same := func(s string) string { return s }
	return &requestBuilder{l: l, mac: hmac.New(sha1.New, []byte(l.token)),
		head:      "POST " + requestURI + " HTTP/1.1\r\nHost: " + host + "\r\nContent-Type: application/x-www-form-urlencoded\r\n",
		signParts: compileParts(l.signURL, inboundFields, none, "", same),
		bodyParts: compileParts("", inboundFields, amp, "=", url.QueryEscape)}
}

// build returns the request of the n-th message; it is valid until the
// next call.
func (b *requestBuilder) build(n uint64) []byte {
	for k := sidValue; k <= bodyValue; k++ {
		b.values[k] = b.l.appendValue(b.values[k][:0], field{kind: k}, n)
	}
	b.signed, b.body = b.signed[:0], b.body[:0]
	for _, p := range b.signParts {
		b.signed = append(append(b.signed, p.text...), b.values[p.kind]...)
	}
	for _, p := range b.bodyParts {
		b.body = appendQueryEscape(append(b.body, p.text...), b.values[p.kind])
	}
	b.mac.Reset()
	b.mac.Write(b.signed)
	b.sum = b.mac.Sum(b.sum[:0])
	base64.StdEncoding.Encode(b.sig[:], b.sum)

	r := append(b.req[:0], b.head...)
	r = strconv.AppendInt(append(r, "Content-Length: "...), int64(len(b.body)), 10)
	r = append(append(append(r, "\r\n"...), sms.SignatureHeader+": "...), b.sig[:]...)
	r = append(append(r, "\r\n"...), sms.IdempotencyHeader+": "...)
	r = append(append(append(r, b.values[sidValue]...), '-'), b.l.run...)
	r = append(append(r, "\r\n\r\n"...), b.body...)
	b.req = r
	return r
}

// signature is the X-Twilio-Signature of the last request built.
func (b *requestBuilder) signature() string { return string(b.sig[:]) }

// unreserved are the bytes a form value keeps as they are.
var unreserved = func() (t [256]bool) {
	for c := range 256 {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~'
	}
	return t
}()

// appendQueryEscape appends s escaped as url.QueryEscape does: letters,
// digits and -_.~ as they are, a space as +, every other byte as %XX.
func appendQueryEscape(b, s []byte) []byte {
	const hex = "0123456789ABCDEF"
	for len(s) > 0 {
		i := 0
		for i < len(s) && unreserved[s[i]] {
			i++
		}
		b = append(b, s[:i]...)
		if i == len(s) {
			break
		}
		if c := s[i]; c == ' ' {
			b = append(b, '+')
		} else {
			b = append(b, '%', hex[c>>4], hex[c&15])
		}
		s = s[i+1:]
	}
	return b
}
