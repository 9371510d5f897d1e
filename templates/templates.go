package templates

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Channels a template is written for. They equal jobs.ChannelEmail and
// jobs.ChannelSMS.
const (
	ChannelEmail = "email"
	ChannelSMS   = "sms"
)

// MaxSMSSegments is the most segments a rendered SMS may take (Twilio's
// advice for concatenated messages).
const MaxSMSSegments = 10

// ErrNotFound is wrapped by the errors of Resolve and the Render methods
// when there is no template for a name, channel and language.
var ErrNotFound = errors.New("template not found")

// ErrMissingField is wrapped by render errors caused by a field the
// recipient's data lacks, e.g. "missing field Extra.coupon".
var ErrMissingField = errors.New("missing field")

// shipped holds the templates compiled into the binary.
//
//go:embed files
var shipped embed.FS

// Data is what a template sees when it renders.
type Data struct {
	Customer CustomerData
	Campaign string // the campaign's name; "" for a reply or a test send
	// UnsubscribeURL is the one-click unsubscribe link (e-mail only).
	UnsubscribeURL string
	// Shop is filled from Options.Shop when left zero.
	Shop ShopData
	// Extra holds custom fields, e.g. the columns of an audience CSV.
	Extra map[string]string
}

// CustomerData is the recipient as templates see them.
type CustomerData struct {
	ID   string
	Name string
	// FirstName, when left empty, is the first word of Name that is not a
	// title such as "Ing." or "Mgr.".
	FirstName string
	Email     string
	Phone     string
	Language  string
}

// ShopData names the shop and how customers reach it.
type ShopData struct {
	Name         string
	URL          string
	SupportEmail string
	SupportPhone string
}

// Options configure Load.
type Options struct {
	// Dir holds override files laid out like the embedded ones; "" means
	// the embedded templates only.
	Dir string
	// FallbackLanguage is used for a customer whose language has no file,
	// e.g. "en". "" means no fallback: such a customer is an error.
	FallbackLanguage string
	// Shop is what templates see as .Shop unless a render passes its own.
	Shop ShopData
}

// Email is a rendered e-mail.
type Email struct {
	Lang    string // the language of the file used
	Subject string // one line, never empty
	Text    string
	HTML    string
}

// SMS is a rendered SMS.
type SMS struct {
	Lang     string // the language of the file used
	Body     string
	Encoding string // "GSM-7" or "UCS-2"
	Segments int
	Chars    int // septets for GSM-7, UTF-16 code units for UCS-2
}

// key identifies one template file's content.
type key struct{ name, channel, lang string }

// Set is a loaded, validated set of templates, safe for concurrent use.
// Its templates can be replaced as a whole by those of another Set loaded
// with the same options (Replace, when the daemon reloads them); each
// call sees either the old templates or the new ones, never a mix.
type Set struct {
	fallback string
	shop     ShopData
	cat      atomic.Pointer[catalog]
	bufs     sync.Pool // *bytes.Buffer
}

// catalog is the parsed template files of a Set; it is never changed once
// the Set holds it.
type catalog struct {
	email map[key]*emailTemplate
	sms   map[key]*smsTemplate
}

// Replace makes s render with the templates of from, which must have been
// loaded with the same fallback language and shop data.
func (s *Set) Replace(from *Set) error {
	if from.fallback != s.fallback || from.shop != s.shop {
		return errors.New("templates: replace: the new set was loaded with other options")
	}
	s.cat.Store(from.cat.Load())
	return nil
}

// Names returns the names of all templates, sorted.
func (s *Set) Names() []string {
	c := s.cat.Load()
	var names []string
	for k := range c.email {
		names = append(names, k.name)
	}
	for k := range c.sms {
		names = append(names, k.name)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// Has reports whether template name exists for channel in any language.
func (s *Set) Has(name, channel string) bool { return len(s.Languages(name, channel)) > 0 }

// Languages returns the languages template name has for channel, sorted.
func (s *Set) Languages(name, channel string) []string { return s.cat.Load().languages(name, channel) }

func (c *catalog) languages(name, channel string) []string {
	var langs []string
	for _, k := range c.keys(channel) {
		if k.name == name {
			langs = append(langs, k.lang)
		}
	}
	slices.Sort(langs)
	return langs
}

func (c *catalog) keys(channel string) []key {
	var keys []key
	switch channel {
	case ChannelEmail:
		for k := range c.email {
			keys = append(keys, k)
		}
	case ChannelSMS:
		for k := range c.sms {
			keys = append(keys, k)
		}
	}
	return keys
}

// Resolve returns the language whose file renders template name on
// channel for a customer speaking lang: lang itself when the template has
// it ("sk-SK" and "SK" count as "sk"), else the fallback language. The
// error wraps ErrNotFound.
func (s *Set) Resolve(name, channel, lang string) (string, error) {
	return s.resolve(s.cat.Load(), name, channel, lang)
}

func (s *Set) resolve(c *catalog, name, channel, lang string) (string, error) {
	lang = baseLanguage(lang)
	if c.has(key{name, channel, lang}) {
		return lang, nil
	}
	if s.fallback != "" && c.has(key{name, channel, s.fallback}) {
		return s.fallback, nil
	}
	if len(c.languages(name, channel)) == 0 {
		return "", fmt.Errorf("template %s (%s): %w", name, channel, ErrNotFound)
	}
	fallback := "no fallback language"
	if s.fallback != "" {
		fallback = "no " + s.fallback + " fallback"
	}
	return "", fmt.Errorf("template %s (%s, %s): %w: no %q file and %s", name, lang, channel, ErrNotFound, lang, fallback)
}

func (c *catalog) has(k key) bool {
	var ok bool
	switch k.channel {
	case ChannelEmail:
		_, ok = c.email[k]
	case ChannelSMS:
		_, ok = c.sms[k]
	}
	return ok
}

// baseLanguage reduces a language tag such as "sk-SK" or "SK" to its
// lower-case primary subtag.
func baseLanguage(lang string) string {
	if i := strings.IndexAny(lang, "-_"); i >= 0 {
		lang = lang[:i]
	}
	return strings.ToLower(strings.TrimSpace(lang))
}

func (s *Set) buffer() *bytes.Buffer {
	if b, ok := s.bufs.Get().(*bytes.Buffer); ok {
		b.Reset()
		return b
	}
	return new(bytes.Buffer)
}

func (s *Set) release(b *bytes.Buffer) {
	if b.Cap() <= 64<<10 { // do not pin the odd huge buffer
		s.bufs.Put(b)
	}
}
