package config

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// smtpTLSModes are the values of the tls query parameter of BACKOFFICE_SMTP_URL.
var smtpTLSModes = map[string]bool{"mandatory-starttls": true, "starttls": true, "none": true, "tls": true}

// smtpAuthTypes are the values of the auth query parameter.
var smtpAuthTypes = map[string]bool{"plain": true, "login": true, "cram-md5": true, "scram-sha-256": true}

// checkSMTPURL checks smtp://[user:pass@]host[:port][?tls=...&auth=...&pipelining=...] and
// smtps://... the way the email sender reads it, so that a bad URL stops the
// daemon at start-up, not at the first mail. Errors never repeat the URL.
func checkSMTPURL(v string) error {
	if v == "" {
		return nil
	}
	// An @ after the host means the password holds / ? or # as is: net/url
	// would read its start as the host and port and repeat it in its error.
	_, rest, _ := strings.Cut(v, "://")
	if end := strings.IndexAny(rest, "/?#"); end >= 0 && strings.Contains(rest[end:], "@") {
		return errors.New("cannot be read: an @ follows the host, so the user or password probably holds / ? # or @ as is; percent-encode them (/ as %2F, ? as %3F, # as %23, @ as %40, % as %25)")
	}
	u, err := url.Parse(v)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL, password included
		}
		var ee url.EscapeError // repeats the escape, which may be in the password
		if errors.As(err, &ee) {
			return errors.New("a % not followed by two hex digits (write % as %25)")
		}
		return err
	}
	if u.Scheme != "smtp" && u.Scheme != "smtps" {
		return fmt.Errorf("scheme %q: want smtp or smtps", u.Scheme)
	}
	if u.Hostname() == "" {
		return errors.New("host: required (smtp://host:587)")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q: want 1-65535", p)
		}
	}
	if u.Opaque != "" || (u.Path != "" && u.Path != "/") || u.Fragment != "" {
		return errors.New("path: want none, only smtp://host:port?options")
	}
	if u.User != nil {
		if pass, ok := u.User.Password(); u.User.Username() == "" || !ok || pass == "" {
			return errors.New("user: want user:password@ with both parts")
		}
	}
	return checkSMTPQuery(u)
}

func checkSMTPQuery(u *url.URL) error {
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return fmt.Errorf("query: %v", err)
	}
	for key, values := range q {
		if len(values) != 1 {
			return fmt.Errorf("query %s: given %d times", key, len(values))
		}
		v := strings.ToLower(values[0])
		switch key {
		case "tls":
			if !smtpTLSModes[v] {
				return fmt.Errorf("query tls=%q: want mandatory-starttls, starttls, none or tls", v)
			}
			if u.Scheme == "smtps" && v != "tls" {
				return fmt.Errorf("query tls=%q: smtps is always implicit TLS", v)
			}
		case "auth":
			if !smtpAuthTypes[v] {
				return fmt.Errorf("query auth=%q: want plain, login, cram-md5 or scram-sha-256", v)
			}
			if u.User == nil {
				return errors.New("query auth: given without a user")
			}
		case "pipelining":
			if v != "on" && v != "off" {
				return fmt.Errorf("query pipelining=%q: want on or off", v)
			}
		default:
			return fmt.Errorf("query %q: unknown option (tls, auth, pipelining)", key)
		}
	}
	return nil
}
