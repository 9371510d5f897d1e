package sms

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net/url"
	"sort"

	"github.com/twilio/twilio-go/client"
)

// SignatureHeader is the header Twilio signs its webhooks in.
const SignatureHeader = "X-Twilio-Signature"

// IdempotencyHeader is the header Twilio repeats on every retry of one
// webhook request.
const IdempotencyHeader = "I-Twilio-Idempotency-Token"

// Sign returns the X-Twilio-Signature Twilio sends with a form-encoded POST
// of params to webhookURL: the base64 HMAC-SHA1, keyed with the auth token,
// of the URL followed by every parameter name and value, sorted by name.
// Tests and the load generator use it; the daemon checks with Validator.
func Sign(authToken, webhookURL string, params url.Values) string {
	names := make([]string, 0, len(params))
	for name := range params {
		names = append(names, name)
	}
	sort.Strings(names)
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write([]byte(webhookURL))
	for _, name := range names {
		for _, v := range params[name] {
			mac.Write([]byte(name))
			mac.Write([]byte(v))
		}
	}
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Validator checks the signature of Twilio's webhooks with twilio-go's
// request validator. The URL Twilio signed is the public URL of the daemon
// (what Twilio was configured to call) with the request's path and query:
// behind a proxy the Host header says nothing about it.
type Validator struct {
	publicURL string
	authToken string
	rv        client.RequestValidator
}

// NewValidator returns a Validator for webhooks reaching publicURL (scheme
// and host, optionally a path prefix, no trailing slash) signed with
// authToken.
func NewValidator(authToken, publicURL string) *Validator {
	return &Validator{publicURL: publicURL, authToken: authToken, rv: client.NewRequestValidator(authToken)}
}

// Valid reports whether signature is Twilio's for a POST of form to path
// (with rawQuery, if any). form must hold one value per name, as ReadForm
// guarantees. An empty signature is never valid.
func (v *Validator) Valid(path, rawQuery string, form url.Values, signature string) bool {
	if signature == "" {
		return false
	}
	u := v.publicURL + path
	if rawQuery != "" {
		u += "?" + rawQuery
	}
	for _, vals := range form {
		if len(vals) != 1 {
			return false
		}
	}
	// Fast path: the URL exactly as configured, one HMAC. twilio-go's
	// validator tries this URL too (and also with the default port added
	// or removed), so this accepts nothing it would refuse; anything else
	// gets its full check.
	if hmac.Equal([]byte(Sign(v.authToken, u, form)), []byte(signature)) {
		return true
	}
	params := make(map[string]string, len(form))
	for name, vals := range form {
		params[name] = vals[0]
	}
	return v.rv.Validate(u, params, signature)
}
