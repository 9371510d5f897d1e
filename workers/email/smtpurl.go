package email

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	gomail "github.com/wneessen/go-mail"
)

// tlsMode is how a connection is secured.
type tlsMode int

const (
	tlsMandatoryStartTLS tlsMode = iota // STARTTLS or fail (the default)
	tlsStartTLS                         // STARTTLS when the server offers it
	tlsNone                             // plain text: loopback relays and tests only
	tlsImplicit                         // TLS from the first byte (smtps, port 465)
)

// smtpTarget is a parsed SMTP URL.
type smtpTarget struct {
	host     string
	port     int
	tls      tlsMode
	user     string
	password string
	auth     gomail.SMTPAuthType // SMTPAuthNoAuth without a user
	// lockstep: pipelining=off, one command at a time even where the
	// relay offers PIPELINING
	lockstep bool
}

// addr returns host:port.
func (t smtpTarget) addr() string { return net.JoinHostPort(t.host, strconv.Itoa(t.port)) }

var tlsModes = map[string]tlsMode{
	"mandatory-starttls": tlsMandatoryStartTLS,
	"starttls":           tlsStartTLS,
	"none":               tlsNone,
	"tls":                tlsImplicit,
}

var authTypes = map[string]gomail.SMTPAuthType{
	"plain":         gomail.SMTPAuthPlain,
	"login":         gomail.SMTPAuthLogin,
	"cram-md5":      gomail.SMTPAuthCramMD5,
	"scram-sha-256": gomail.SMTPAuthSCRAMSHA256,
}

// parseSMTPURL parses smtp://[user:pass@]host[:port][?tls=...&auth=...&pipelining=...] and
// smtps://... Errors name the part that is wrong and never repeat the URL,
// which may hold a password.
//
// tls is mandatory-starttls (default for smtp://), starttls (opportunistic),
// none, or tls (implicit, the default for smtps://). auth is plain (default
// when a user is given), login, cram-md5 or scram-sha-256; go-mail refuses
// plain and login over an unencrypted connection except to localhost.
// pipelining is on (default: pipelined transactions where the relay offers
// PIPELINING) or off (go-mail's one command at a time, for a relay whose
// PIPELINING misbehaves). The port defaults to 465 for implicit TLS and
// 587 otherwise.
func parseSMTPURL(raw string) (smtpTarget, error) {
	var t smtpTarget
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL, password included
		}
		return t, fmt.Errorf("email: smtp url: %v", err)
	}
	switch u.Scheme {
	case "smtp":
		t.tls = tlsMandatoryStartTLS
	case "smtps":
		t.tls = tlsImplicit
	default:
		return t, fmt.Errorf("email: smtp url: scheme %q: want smtp or smtps", u.Scheme)
	}
	if u.Opaque != "" || (u.Path != "" && u.Path != "/") || u.Fragment != "" {
		return t, errors.New("email: smtp url: path: want none, only smtp://host:port?options")
	}
	if err := t.parseQuery(u); err != nil {
		return t, err
	}
	if err := t.parseHost(u); err != nil {
		return t, err
	}
	return t, t.parseUser(u)
}

func (t *smtpTarget) parseHost(u *url.URL) error {
	t.host = u.Hostname()
	if t.host == "" {
		return errors.New("email: smtp url: host: required")
	}
	t.port = 587
	if t.tls == tlsImplicit {
		t.port = 465
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("email: smtp url: port %q: want 1-65535", p)
		}
		t.port = n
	}
	return nil
}

func (t *smtpTarget) parseQuery(u *url.URL) error {
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return fmt.Errorf("email: smtp url: query: %v", err)
	}
	for key, values := range q {
		if len(values) != 1 {
			return fmt.Errorf("email: smtp url: query %s: given %d times", key, len(values))
		}
		switch v := strings.ToLower(values[0]); key {
		case "tls":
			mode, ok := tlsModes[v]
			if !ok {
				return fmt.Errorf("email: smtp url: query tls=%q: want mandatory-starttls, starttls, none or tls", v)
			}
			if u.Scheme == "smtps" && mode != tlsImplicit {
				return fmt.Errorf("email: smtp url: query tls=%q: smtps is always implicit TLS", v)
			}
			t.tls = mode
		case "auth":
			auth, ok := authTypes[v]
			if !ok {
				return fmt.Errorf("email: smtp url: query auth=%q: want plain, login, cram-md5 or scram-sha-256", v)
			}
			t.auth = auth
		case "pipelining":
			switch v {
			case "on":
				t.lockstep = false
			case "off":
				t.lockstep = true
			default:
				return fmt.Errorf("email: smtp url: query pipelining=%q: want on or off", v)
			}
		default:
			return fmt.Errorf("email: smtp url: query %q: unknown option (tls, auth, pipelining)", key)
		}
	}
	return nil
}

func (t *smtpTarget) parseUser(u *url.URL) error {
	if u.User == nil {
		if t.auth != "" {
			return errors.New("email: smtp url: auth given without a user")
		}
		t.auth = gomail.SMTPAuthNoAuth
		return nil
	}
	t.user = u.User.Username()
	password, ok := u.User.Password()
	if t.user == "" || !ok || password == "" {
		return errors.New("email: smtp url: user: want user:password@ with both parts")
	}
	t.password = password
	if t.auth == "" {
		t.auth = gomail.SMTPAuthPlain
	}
	return nil
}
