package customers

import (
	"fmt"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // timezone names validate the same on every host
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// FieldError names the field of a customer that is invalid.
type FieldError struct {
	Field string // json name: "email", "phone", "tags", "consent.sms", ...
	Msg   string
	Err   error // wrapped cause, e.g. ErrInUse; may be nil
}

func (e *FieldError) Error() string { return "field " + e.Field + ": " + e.Msg }

// Unwrap returns the cause.
func (e *FieldError) Unwrap() error { return e.Err }

func fieldErr(field, format string, a ...any) *FieldError {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, a...)}
}

var (
	idPattern  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	tagPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._:-]{0,63}$`)
)

const (
	maxNameRunes   = 200
	maxSourceRunes = 200
	maxTags        = 100
	maxEmailLen    = 254
)

// ValidID reports whether id can name a customer: 1-64 letters, digits,
// '.', '_' or '-', starting with a letter or digit.
func ValidID(id string) bool { return idPattern.MatchString(id) }

// normalize validates c and puts every field in its stored form. Errors are
// *FieldError naming the first bad field.
func (s *Store) normalize(c *Customer) error {
	if !ValidID(c.ID) {
		return fieldErr("id", "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit, got %q", c.ID)
	}
	steps := []func(*Customer) error{normalizeName, normalizeEmail, s.normalizePhoneField,
		normalizeLanguage, s.normalizeTimezone, normalizeTags, normalizeConsent}
	for _, step := range steps {
		if err := step(c); err != nil {
			return err
		}
	}
	c.CreatedAt, c.UpdatedAt = stamp(c.CreatedAt), stamp(c.UpdatedAt)
	return nil
}

func normalizeName(c *Customer) error {
	c.Name = strings.TrimSpace(c.Name)
	if err := checkText(c.Name, maxNameRunes); err != "" {
		return fieldErr("name", "%s", err)
	}
	return nil
}

// checkText returns why s is not acceptable short text, or "".
func checkText(s string, maxRunes int) string {
	switch {
	case !utf8.ValidString(s):
		return "is not valid UTF-8"
	case utf8.RuneCountInString(s) > maxRunes:
		return fmt.Sprintf("is longer than %d characters", maxRunes)
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return "contains control characters"
	}
	return ""
}

// normalizeEmail checks the address and puts it in Unicode NFC, so that the
// same address written with a combining accent (as macOS exports text) is
// stored, indexed and found as one.
func normalizeEmail(c *Customer) error {
	c.Email = strings.TrimSpace(c.Email)
	if c.Email == "" {
		return nil
	}
	if utf8.ValidString(c.Email) {
		c.Email = norm.NFC.String(c.Email)
	}
	if err := CheckEmail(c.Email); err != nil {
		return &FieldError{Field: "email", Msg: err.Error()}
	}
	return nil
}

// CheckEmail returns an error, naming what is wrong, unless addr is an
// e-mail address the store accepts: a bare address (no display name, no
// surrounding white space) of at most 254 bytes of UTF-8 whose domain has a
// dot, without invisible characters (format characters such as a zero-width
// space or a byte order mark, controls, spaces other than ASCII ones) that
// would make it look like another address. Callers that take addresses from elsewhere (a campaign's audience
// file) check with it, so that every address they use can later be stored,
// as an unsubscribe does.
func CheckEmail(addr string) error {
	if len(addr) > maxEmailLen || !utf8.ValidString(addr) {
		return fmt.Errorf("%.60q is not a valid e-mail address", addr)
	}
	if i := strings.IndexFunc(addr, invisible); i >= 0 {
		r, _ := utf8.DecodeRuneInString(addr[i:])
		return fmt.Errorf("%+q is not a valid e-mail address: it contains the invisible character %U", addr, r)
	}
	parsed, err := mail.ParseAddress(addr)
	if err != nil {
		return fmt.Errorf("%q is not a valid e-mail address: %v", addr, strings.TrimPrefix(err.Error(), "mail: "))
	}
	if parsed.Name != "" || parsed.Address != addr {
		return fmt.Errorf("%q is not a bare e-mail address (write only user@domain)", addr)
	}
	domain := addr[strings.LastIndexByte(addr, '@')+1:]
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") {
		return fmt.Errorf("%q is not a valid e-mail address: domain %q has no top-level part", addr, domain)
	}
	return nil
}

// invisible reports whether r shows as nothing or as a blank.
func invisible(r rune) bool {
	return unicode.In(r, unicode.Cf, unicode.Cc, unicode.Zs, unicode.Zl, unicode.Zp) && r != ' '
}

func (s *Store) normalizePhoneField(c *Customer) error {
	c.Phone = strings.TrimSpace(c.Phone)
	if c.Phone == "" {
		return nil
	}
	e164, err := s.NormalizePhone(c.Phone)
	if err != nil {
		return &FieldError{Field: "phone", Msg: err.Error()}
	}
	c.Phone = e164
	return nil
}

func normalizeLanguage(c *Customer) error {
	c.Language = strings.ToLower(strings.TrimSpace(c.Language))
	if c.Language != "" && !knownLanguage(c.Language) {
		return fieldErr("language", "must be a two-letter ISO 639-1 code such as sk, cs, pl or en, got %.20q", c.Language)
	}
	return nil
}

func (s *Store) normalizeTimezone(c *Customer) error {
	c.Timezone = strings.TrimSpace(c.Timezone)
	if c.Timezone == "" {
		return nil
	}
	if err := s.checkZone(c.Timezone); err != nil {
		return fieldErr("timezone", "%v", err)
	}
	return nil
}

// checkZone validates an IANA zone name. Valid names are remembered (the
// time zone database bounds them); invalid ones are not, so hostile input
// cannot grow the cache.
func (s *Store) checkZone(name string) error {
	if _, ok := s.zones.Load(name); ok {
		return nil
	}
	if name == "Local" || len(name) > 64 || !utf8.ValidString(name) {
		return fmt.Errorf("%.64q is not an IANA time zone name such as Europe/Bratislava", name)
	}
	if _, err := time.LoadLocation(name); err != nil {
		return fmt.Errorf("%q is not an IANA time zone name such as Europe/Bratislava", name)
	}
	s.zones.Store(name, struct{}{})
	return nil
}

func normalizeTags(c *Customer) error {
	if len(c.Tags) == 0 {
		c.Tags = nil
		return nil
	}
	tags := make([]string, 0, len(c.Tags))
	for _, t := range c.Tags {
		t = strings.ToLower(strings.TrimSpace(t))
		if t == "" {
			continue
		}
		if !tagPattern.MatchString(t) {
			return fieldErr("tags", "tag %.70q must be 1-64 lower-case letters, digits, '.', '_', ':' or '-', starting with a letter or digit", t)
		}
		tags = append(tags, t)
	}
	slices.Sort(tags)
	tags = slices.Compact(tags)
	if len(tags) > maxTags {
		return fieldErr("tags", "has %d tags, at most %d are allowed", len(tags), maxTags)
	}
	if len(tags) == 0 {
		tags = nil
	}
	c.Tags = tags
	return nil
}

func normalizeConsent(c *Customer) error {
	if len(c.Consent) == 0 {
		c.Consent = nil
		return nil
	}
	for ch, v := range c.Consent {
		field := "consent." + string(ch)
		if !validChannel(ch) {
			return fieldErr("consent", "unknown channel %.20q (want email, sms or letter)", string(ch))
		}
		if v.Status != OptedIn && v.Status != OptedOut {
			return fieldErr(field, "status must be opted_in or opted_out, got %.20q", string(v.Status))
		}
		if err := checkText(v.Source, maxSourceRunes); err != "" {
			return fieldErr(field, "source %s", err)
		}
		v.At = stamp(v.At)
		if !v.RepeatedAt.IsZero() {
			v.RepeatedAt = stamp(v.RepeatedAt)
		}
		c.Consent[ch] = v
	}
	return nil
}

func validChannel(ch Channel) bool {
	return ch == ChannelEmail || ch == ChannelSMS || ch == ChannelLetter
}
