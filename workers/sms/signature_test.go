package sms

import (
	"net/url"
	"testing"

	"github.com/twilio/twilio-go/client"
)

// twilioVector is the request twilio-go's own tests sign: auth token 12345.
func twilioVector() url.Values {
	return url.Values{
		"Digits": {"1234"}, "CallSid": {"CA1234567890ABCDE"}, "To": {"+18005551212"},
		"Caller": {"+14158675309"}, "From": {"+14158675309"},
		"ReasonConferenceEnded": {"test"}, "Reason": {"Participant"},
	}
}

func TestSignMatchesTwilioVector(t *testing.T) {
	t.Parallel()
	const want = "vOEb5UThFn24KEfnOFLQY2AE5FY="
	if got := Sign("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", twilioVector()); got != want {
		t.Errorf("Sign(twilio vector) = %q, want %q", got, want)
	}
}

func TestValidator(t *testing.T) {
	t.Parallel()
	const token = "s3cret-auth-token"
	const public = "https://shop.example.com"
	form := url.Values{"MessageSid": {"SM0123456789abcdef0123456789abcdef"}, "From": {"+421900123456"}, "Body": {"STOP"}}
	good := Sign(token, public+"/webhooks/twilio/sms", form)
	tampered := url.Values{"MessageSid": form["MessageSid"], "From": form["From"], "Body": {"START"}}
	extra := url.Values{"MessageSid": form["MessageSid"], "From": form["From"], "Body": form["Body"], "To": {"+1"}}
	tests := []struct {
		name          string
		token, public string
		path, query   string
		form          url.Values
		sig           string
		want          bool
	}{
		{"valid", token, public, "/webhooks/twilio/sms", "", form, good, true},
		{"valid with explicit default port", token, "https://shop.example.com:443", "/webhooks/twilio/sms", "", form, good, true},
		{"tampered body", token, public, "/webhooks/twilio/sms", "", tampered, good, false},
		{"added parameter", token, public, "/webhooks/twilio/sms", "", extra, good, false},
		{"wrong path", token, public, "/webhooks/twilio/status", "", form, good, false},
		{"wrong host", token, "https://evil.example.com", "/webhooks/twilio/sms", "", form, good, false},
		{"unsigned query", token, public, "/webhooks/twilio/sms", "x=1", form, good, false},
		{"wrong token", "other-token", public, "/webhooks/twilio/sms", "", form, good, false},
		{"missing signature", token, public, "/webhooks/twilio/sms", "", form, "", false},
		{"garbage signature", token, public, "/webhooks/twilio/sms", "", form, "not-base64!", false},
		{"repeated parameter", token, public, "/webhooks/twilio/sms", "", url.Values{"Body": {"STOP", "x"}}, Sign(token, public+"/webhooks/twilio/sms", url.Values{"Body": {"STOP", "x"}}), false},
		{"signed query", token, public, "/webhooks/twilio/sms", "tenant=a", form, Sign(token, public+"/webhooks/twilio/sms?tenant=a", form), true},
		{"empty form", token, public, "/webhooks/twilio/sms", "", url.Values{}, Sign(token, public+"/webhooks/twilio/sms", nil), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := NewValidator(tt.token, tt.public)
			if got := v.Valid(tt.path, tt.query, tt.form, tt.sig); got != tt.want {
				t.Errorf("Valid(%q, %q, form, sig) = %v, want %v", tt.path, tt.query, got, tt.want)
			}
			if tt.name == "repeated parameter" {
				return // twilio-go would read only the first value; we refuse
			}
			u := tt.public + tt.path
			if tt.query != "" {
				u += "?" + tt.query
			}
			params := map[string]string{}
			for k, vs := range tt.form {
				params[k] = vs[0]
			}
			rv := client.NewRequestValidator(tt.token)
			if got, twilio := v.Valid(tt.path, tt.query, tt.form, tt.sig), rv.Validate(u, params, tt.sig); got != twilio {
				t.Errorf("Valid = %v but twilio-go's validator says %v: the fast path must agree", got, twilio)
			}
		})
	}
}
