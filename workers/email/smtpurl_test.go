package email

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	gomail "github.com/wneessen/go-mail"
)

func TestParseSMTPURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url  string
		want smtpTarget
	}{
		{"smtp://mail.example.sk", smtpTarget{host: "mail.example.sk", port: 587, tls: tlsMandatoryStartTLS, auth: gomail.SMTPAuthNoAuth}},
		{"smtp://127.0.0.1:2525?tls=none", smtpTarget{host: "127.0.0.1", port: 2525, tls: tlsNone, auth: gomail.SMTPAuthNoAuth}},
		{"smtp://u%40shop:p%3Ass@mail.example.sk:25?tls=starttls", smtpTarget{host: "mail.example.sk", port: 25, tls: tlsStartTLS, user: "u@shop", password: "p:ss", auth: gomail.SMTPAuthPlain}},
		{"smtp://u:p@mail.example.sk?tls=tls&auth=LOGIN", smtpTarget{host: "mail.example.sk", port: 465, tls: tlsImplicit, user: "u", password: "p", auth: gomail.SMTPAuthLogin}},
		{"smtps://u:p@[::1]", smtpTarget{host: "::1", port: 465, tls: tlsImplicit, user: "u", password: "p", auth: gomail.SMTPAuthPlain}},
		{"smtp://127.0.0.1:25?tls=none&pipelining=off", smtpTarget{host: "127.0.0.1", port: 25, tls: tlsNone, auth: gomail.SMTPAuthNoAuth, lockstep: true}},
		{"smtp://127.0.0.1:25?tls=none&pipelining=ON", smtpTarget{host: "127.0.0.1", port: 25, tls: tlsNone, auth: gomail.SMTPAuthNoAuth}},
	} {
		got, err := parseSMTPURL(tc.url)
		if err != nil {
			t.Errorf("parseSMTPURL(%q): %v", tc.url, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(smtpTarget{})); diff != "" {
			t.Errorf("parseSMTPURL(%q) (-want +got):\n%s", tc.url, diff)
		}
	}
}

func TestParseSMTPURLErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ url, part string }{
		{"", "scheme"},
		{"http://mail.example.sk", "scheme"},
		{"smtp://", "host"},
		{"smtp://mail.example.sk:99999", "port"},
		{"smtp://mail.example.sk:x", "port"},
		{"smtp://mail.example.sk/inbox", "path"},
		{"smtp://mail.example.sk?tls=maybe", "tls"},
		{"smtps://mail.example.sk?tls=none", "tls"},
		{"smtp://mail.example.sk?tls=none&tls=tls", "tls"},
		{"smtp://mail.example.sk?auth=ntlm", "auth"},
		{"smtp://mail.example.sk?auth=plain", "auth"},
		{"smtp://mail.example.sk?debug=1", "debug"},
		{"smtp://mail.example.sk?pipelining=maybe", "pipelining"},
		{"smtp://secretuser@mail.example.sk", "user"},
		{"smtp://secretuser:@mail.example.sk", "user"},
		{"smtp://u:hunter2\x7f@mail.example.sk", "smtp url"},
		{"smtp://u:hunter2@mail.example.sk:bad port", "smtp url"},
	} {
		_, err := parseSMTPURL(tc.url)
		if err == nil {
			t.Errorf("parseSMTPURL(%q) = nil error", tc.url)
			continue
		}
		if !strings.Contains(err.Error(), tc.part) {
			t.Errorf("parseSMTPURL(%q) = %q, want it to name %q", tc.url, err, tc.part)
		}
		if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "secretuser") {
			t.Errorf("parseSMTPURL(%q) = %q: leaks the credentials", tc.url, err)
		}
	}
}

func TestNewPoolValidates(t *testing.T) {
	t.Parallel()
	for _, o := range []PoolOptions{
		{URL: "smtp://127.0.0.1:25?tls=none", Size: -1},
		{URL: "smtp://127.0.0.1:25?tls=none", SendTimeout: -1},
		{URL: "smtp://127.0.0.1:25?tls=none", HELO: "bad helo"},
		{URL: "gopher://127.0.0.1"},
	} {
		if p, err := NewPool(o); err == nil {
			p.Close()
			t.Errorf("NewPool(%+v) = nil error", o)
		}
	}
}
