package config

import (
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/nyaruka/phonenumbers"

	"github.com/shopworks/backoffice/cmd/internal/redisconn"
)

var (
	keyPrefixPattern = regexp.MustCompile(`^[A-Za-z0-9:_.-]{0,32}$`)
	languagePattern  = regexp.MustCompile(`^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$`)
	e164Pattern      = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	// An alphanumeric sender ID: up to 11 letters, digits and spaces, with
	// at least one letter.
	senderIDPattern   = regexp.MustCompile(`^[A-Za-z0-9 ]{1,11}$`)
	accountSIDPattern = regexp.MustCompile(`^AC[0-9a-fA-F]{32}$`)
	serviceSIDPattern = regexp.MustCompile(`^MG[0-9a-fA-F]{32}$`)
)

// MinUnsubscribeSecretLen is the shortest unsubscribe secret accepted.
const MinUnsubscribeSecretLen = 32

// problems returns every invalid setting as an *Error named by its
// environment variable.
func (c Config) problems() []error {
	var errs []error
	add := func(env string, err error) {
		for _, e := range splitErrors(err) {
			if e != nil {
				errs = append(errs, &Error{Var: env, Msg: e.Error()})
			}
		}
	}
	add("BACKOFFICE_REDIS_URL", checkRedisURL(c.RedisURL))
	add("BACKOFFICE_HTTP_ADDR", checkListenAddr(c.HTTPAddr))
	add("BACKOFFICE_PUBLIC_URL", checkHTTPURL(c.PublicURL, true))
	add("BACKOFFICE_DATA_DIR", required(c.DataDir))
	add("BACKOFFICE_SCHEDULES_DIR", required(c.SchedulesDir))
	add("BACKOFFICE_API_TOKENS", errors.Join(tokenProblems(c.APITokens)...))
	add("BACKOFFICE_CONCURRENCY", concurrencyRange.check(c.Concurrency))
	add("BACKOFFICE_KEY_PREFIX", checkKeyPrefix(c.KeyPrefix))
	add("BACKOFFICE_PHONE_REGION", checkRegion(c.PhoneRegion))
	add("BACKOFFICE_DEFAULT_LANGUAGE", checkLanguage(c.DefaultLanguage))
	add("BACKOFFICE_SHUTDOWN_TIMEOUT", checkShutdownTimeout(c.ShutdownTimeout))
	add("BACKOFFICE_SMTP_URL", checkSMTPURL(c.SMTPURL))
	add("BACKOFFICE_MAIL_FROM", checkMailFrom(c.MailFrom))
	add("BACKOFFICE_SMTP_POOL", smtpPoolRange.check(c.SMTPPool))
	add("BACKOFFICE_SHOP_NAME", checkShopName(c.ShopName))
	if c.ShopURL != "" {
		add("BACKOFFICE_SHOP_URL", checkHTTPURL(c.ShopURL, true))
	}
	if c.SupportEmail != "" {
		add("BACKOFFICE_SUPPORT_EMAIL", checkSupportEmail(c.SupportEmail))
	}
	if c.SupportPhone != "" && !e164Pattern.MatchString(c.SupportPhone) {
		add("BACKOFFICE_SUPPORT_PHONE", fmt.Errorf("want an E.164 number such as +421900123456, got %q", c.SupportPhone))
	}
	c.twilioProblems(add)
	add("BACKOFFICE_UNSUBSCRIBE_SECRET", checkUnsubscribeSecret(c.UnsubscribeSecret))
	return errs
}

func required(v string) error {
	if v == "" {
		return errors.New("required")
	}
	return nil
}

func checkRedisURL(v string) error {
	if _, err := redisconn.Parse(v); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "redis url: "))
	}
	return nil
}

func checkListenAddr(v string) error {
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("want host:port such as 127.0.0.1:8080 or :8080, got %q", v)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q: want 0-65535", port)
	}
	return nil
}

// checkHTTPURL checks an absolute http(s) URL without credentials, query or
// fragment. A path is allowed when withPath (a reverse-proxy prefix).
func checkHTTPURL(v string, withPath bool) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("want an absolute http:// or https:// URL, got %q", v)
	}
	if u.User != nil {
		return errors.New("must not contain user:password@")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return errors.New("must not have a query or fragment")
	}
	if !withPath && u.Path != "" {
		return errors.New("must not have a path")
	}
	return nil
}

func checkKeyPrefix(v string) error {
	if !keyPrefixPattern.MatchString(v) {
		return fmt.Errorf("want at most 32 of A-Z a-z 0-9 : _ . - (no braces: they are hash tags), got %q", v)
	}
	return nil
}

func checkRegion(v string) error {
	if !phonenumbers.GetSupportedRegions()[v] {
		return fmt.Errorf("want a supported ISO 3166 alpha-2 region in capitals such as SK or DE, got %q", v)
	}
	return nil
}

func checkLanguage(v string) error {
	if !languagePattern.MatchString(v) {
		return fmt.Errorf("want a lower-case language code such as en, sk or pt-BR, got %q", v)
	}
	return nil
}

func checkShutdownTimeout(d time.Duration) error {
	if d < time.Second || d > time.Hour {
		return fmt.Errorf("must be between 1s and 1h, got %s", d)
	}
	return nil
}

func checkMailFrom(v string) error {
	a, err := mail.ParseAddress(v)
	if err != nil {
		return fmt.Errorf("want an address such as \"Shop <shop@example.com>\", got %q: %v", v, err)
	}
	if !strings.Contains(a.Address, "@") {
		return fmt.Errorf("address %q: want user@domain", a.Address)
	}
	return nil
}

func (c Config) twilioProblems(add func(string, error)) {
	if c.TwilioAccountSID != "" && !accountSIDPattern.MatchString(c.TwilioAccountSID) {
		add("BACKOFFICE_TWILIO_ACCOUNT_SID", errors.New("want AC followed by 32 hex digits"))
	}
	switch {
	case c.TwilioAccountSID != "" && c.TwilioAuthToken == "":
		add("BACKOFFICE_TWILIO_AUTH_TOKEN", errors.New("required when BACKOFFICE_TWILIO_ACCOUNT_SID is set"))
	case c.TwilioAccountSID == "" && c.TwilioAuthToken != "":
		add("BACKOFFICE_TWILIO_ACCOUNT_SID", errors.New("required when BACKOFFICE_TWILIO_AUTH_TOKEN is set"))
	}
	// The Twilio sender takes letters and digits only (an auth token is 32
	// hex digits): anything else would pass here and stop the daemon at
	// start-up with an error that names no variable.
	if strings.ContainsFunc(c.TwilioAuthToken, func(r rune) bool { return !isLetter(r) && (r < '0' || r > '9') }) {
		add("BACKOFFICE_TWILIO_AUTH_TOKEN", errors.New("want letters and digits only (Twilio's auth token is 32 hex digits)"))
	}
	if c.TwilioAccountSID != "" && c.TwilioFrom == "" && c.TwilioMessagingServiceSID == "" {
		add("BACKOFFICE_TWILIO_FROM", errors.New("required with a Twilio account, unless BACKOFFICE_TWILIO_MESSAGING_SERVICE_SID is set"))
	}
	if v := c.TwilioFrom; v != "" && !e164Pattern.MatchString(v) &&
		!(senderIDPattern.MatchString(v) && strings.ContainsFunc(v, isLetter)) {
		add("BACKOFFICE_TWILIO_FROM", fmt.Errorf("want an E.164 number such as +421900123456 or an alphanumeric sender ID of up to 11 characters, got %q", v))
	}
	if v := c.TwilioMessagingServiceSID; v != "" && !serviceSIDPattern.MatchString(v) {
		add("BACKOFFICE_TWILIO_MESSAGING_SERVICE_SID", fmt.Errorf("want MG followed by 32 hex digits, got %q", v))
	}
	if c.TwilioAPIURL != "" {
		add("BACKOFFICE_TWILIO_API_URL", checkHTTPURL(c.TwilioAPIURL, false))
	}
}

func isLetter(r rune) bool { return (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') }

func checkUnsubscribeSecret(v string) error {
	if v != "" && len(v) < MinUnsubscribeSecretLen {
		return fmt.Errorf("want at least %d characters, got %d", MinUnsubscribeSecretLen, len(v))
	}
	return nil
}

// checkShopName accepts one line of at most 100 characters: it goes into
// subjects and SMS.
func checkShopName(v string) error {
	switch {
	case strings.TrimSpace(v) == "":
		return errors.New("must not be empty")
	case len([]rune(v)) > 100:
		return fmt.Errorf("at most 100 characters, got %d", len([]rune(v)))
	case strings.ContainsAny(v, "\r\n"):
		return errors.New("must be one line")
	}
	return nil
}

func checkSupportEmail(v string) error {
	a, err := mail.ParseAddress(v)
	if err != nil || a.Name != "" || a.Address != v {
		return fmt.Errorf("want a bare address such as help@example.com, got %q", v)
	}
	return nil
}
