package templates

import (
	"bytes"
	"errors"
	"fmt"
	htemplate "html/template"
	"io"
	"strconv"
	"strings"
	ttemplate "text/template"
	"unicode"
	"unicode/utf8"
)

// RenderEmail renders e-mail template name for a customer speaking lang
// (see Resolve). Errors name the template, the language and what failed,
// e.g. "template promo (sk, email): missing field Extra.coupon"; they are
// permanent for this recipient.
func (s *Set) RenderEmail(name, lang string, d Data) (Email, error) {
	c := s.cat.Load()
	resolved, err := s.resolve(c, name, ChannelEmail, lang)
	if err != nil {
		return Email{}, err
	}
	e, err := s.renderEmail(c.email[key{name, ChannelEmail, resolved}], s.complete(d))
	if err != nil {
		return Email{}, renderFailure(name, resolved, ChannelEmail, err)
	}
	e.Lang = resolved
	return e, nil
}

// RenderSMS renders SMS template name for a customer speaking lang (see
// Resolve), and counts its segments. Errors are as RenderEmail's.
func (s *Set) RenderSMS(name, lang string, d Data) (SMS, error) {
	c := s.cat.Load()
	resolved, err := s.resolve(c, name, ChannelSMS, lang)
	if err != nil {
		return SMS{}, err
	}
	m, err := s.renderSMS(c.sms[key{name, ChannelSMS, resolved}], s.complete(d))
	if err != nil {
		return SMS{}, renderFailure(name, resolved, ChannelSMS, err)
	}
	m.Lang = resolved
	return m, nil
}

// partError is a failure to render one part (subject, text, html, body)
// of a template file.
type partError struct {
	part string
	err  error
	exec bool // err came from executing the template and names file:line
}

func (e *partError) Error() string { return e.part + ": " + e.err.Error() }
func (e *partError) Unwrap() error { return e.err }

func (s *Set) renderEmail(t *emailTemplate, d *Data) (Email, error) {
	subject, err := s.part("subject", t.subject, d)
	if err != nil {
		return Email{}, err
	}
	if i := strings.IndexFunc(subject, isLineBreakOrControl); i >= 0 {
		r, _ := utf8.DecodeRuneInString(subject[i:])
		return Email{}, &partError{part: "subject", err: fmt.Errorf("must be one line, found %q", r)}
	}
	text, err := s.part("text", t.text, d)
	if err != nil {
		return Email{}, err
	}
	html, err := s.part("html", t.html, d)
	if err != nil {
		return Email{}, err
	}
	return Email{Subject: subject, Text: text, HTML: html}, nil
}

func (s *Set) renderSMS(t *smsTemplate, d *Data) (SMS, error) {
	body, err := s.part("body", t.body, d)
	if err != nil {
		return SMS{}, err
	}
	enc, segments, chars := Segments(body)
	if segments > MaxSMSSegments {
		return SMS{}, &partError{part: "body", err: fmt.Errorf(
			"is %d segments (%d %s characters), more than the %d allowed", segments, chars, enc, MaxSMSSegments)}
	}
	return SMS{Body: body, Encoding: enc, Segments: segments, Chars: chars}, nil
}

// executor is a text/template or html/template template.
type executor interface {
	Execute(w io.Writer, data any) error
}

var (
	_ executor = (*ttemplate.Template)(nil)
	_ executor = (*htemplate.Template)(nil)
)

// part executes one part and returns it trimmed; an empty result is an
// error.
func (s *Set) part(name string, t executor, d *Data) (string, error) {
	b := s.buffer()
	defer s.release(b)
	if err := t.Execute(b, d); err != nil {
		return "", &partError{part: name, err: err, exec: true}
	}
	out := bytes.TrimSpace(b.Bytes())
	if len(out) == 0 {
		return "", &partError{part: name, err: errors.New("renders empty")}
	}
	return string(out), nil
}

// isLineBreakOrControl reports runes a mail subject must not hold: CR and
// LF (header injection) and other control characters except tab.
func isLineBreakOrControl(r rune) bool {
	return r != '\t' && unicode.IsControl(r) || r == '\u2028' || r == '\u2029'
}

// complete fills the fields Data derives: Shop from the options when
// zero, FirstName from Name when empty.
func (s *Set) complete(d Data) *Data {
	if d.Shop == (ShopData{}) {
		d.Shop = s.shop
	}
	if d.Customer.FirstName == "" {
		d.Customer.FirstName = firstName(d.Customer.Name)
	}
	return &d
}

// firstName returns the first word of name, skipping titles: words of two
// or more letters ending in '.' ("Ing. Ján Novák" and "Bc. Ján Novák" give
// "Ján"; an initial such as "J." counts as a name).
func firstName(name string) string {
	for word := range strings.FieldsSeq(name) {
		if !strings.HasSuffix(word, ".") || utf8.RuneCountInString(word) <= 2 {
			return word
		}
	}
	return ""
}

// renderFailure wraps err, from rendering template name, into the error
// callers see.
func renderFailure(name, lang, channel string, err error) error {
	if field := missingField(err); field != "" {
		return fmt.Errorf("template %s (%s, %s): %w %s", name, lang, channel, ErrMissingField, field)
	}
	return fmt.Errorf("template %s (%s, %s): %w", name, lang, channel, err)
}

// missingField returns "Extra.<key>" when err is text/template's "map has
// no entry for key" (Extra is the only map in Data), else "".
func missingField(err error) string {
	const noEntry = "map has no entry for key "
	var ee ttemplate.ExecError
	if !errors.As(err, &ee) {
		return ""
	}
	msg := ee.Error()
	i := strings.LastIndex(msg, noEntry)
	if i < 0 {
		return ""
	}
	quoted, qerr := strconv.QuotedPrefix(msg[i+len(noEntry):])
	if qerr != nil {
		return ""
	}
	k, _ := strconv.Unquote(quoted)
	return "Extra." + k
}
