package templates

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testShop() ShopData {
	return ShopData{
		Name:         "Kvetinka",
		URL:          "https://kvetinka.sk",
		SupportEmail: "pomoc@kvetinka.sk",
		SupportPhone: "+421 2 123 456 78",
	}
}

func testOptions() Options {
	return Options{FallbackLanguage: "en", Shop: testShop()}
}

func mustLoad(t testing.TB, o Options) *Set {
	t.Helper()
	s, err := Load(o)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return s
}

// writeFiles writes files (slash-separated path → content) under a new
// temporary directory and returns it.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func sampleData() Data {
	return Data{
		Customer: CustomerData{
			ID: "c-1001", Name: "Ján Novák", Email: "jan.novak@example.com",
			Phone: "+421901234567", Language: "sk",
		},
		Campaign:       "spring-sale",
		UnsubscribeURL: "https://kvetinka.sk/unsubscribe/tok123",
		Extra:          map[string]string{"osloveni": "pane Nováku"},
	}
}

func TestShippedSet(t *testing.T) {
	t.Parallel()
	s := mustLoad(t, testOptions())
	all := []string{"cs", "en", "pl", "sk"}
	if diff := cmp.Diff([]string{"help", "promo", "test", "welcome"}, s.Names()); diff != "" {
		t.Errorf("Names() (-want,+got):\n%s", diff)
	}
	tests := []struct {
		name, channel string
		want          []string
	}{
		{"welcome", ChannelEmail, all},
		{"welcome", ChannelSMS, nil},
		{"promo", ChannelEmail, all},
		{"promo", ChannelSMS, all},
		{"help", ChannelEmail, nil},
		{"help", ChannelSMS, all},
		{"test", ChannelEmail, all},
		{"test", ChannelSMS, all},
		{"nope", ChannelSMS, nil},
		{"promo", "fax", nil},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, s.Languages(tt.name, tt.channel)); diff != "" {
			t.Errorf("Languages(%q, %q) (-want,+got):\n%s", tt.name, tt.channel, diff)
		}
		if got := s.Has(tt.name, tt.channel); got != (tt.want != nil) {
			t.Errorf("Has(%q, %q) = %v, want %v", tt.name, tt.channel, got, tt.want != nil)
		}
	}
}

// TestShippedEmailsRender renders every shipped e-mail in every language.
func TestShippedEmailsRender(t *testing.T) {
	t.Parallel()
	s := mustLoad(t, testOptions())
	greeting := map[string]string{
		"sk": "Dobrý deň, Ján,",
		"cs": "Dobrý den, pane Nováku,",
		"pl": "Cześć, Ján!",
		"en": "Hello Ján,",
	}
	for _, name := range []string{"welcome", "promo", "test"} {
		for _, lang := range s.Languages(name, ChannelEmail) {
			t.Run(name+"/"+lang, func(t *testing.T) {
				d := sampleData()
				e, err := s.RenderEmail(name, lang, d)
				if err != nil {
					t.Fatalf("RenderEmail: %v", err)
				}
				if e.Lang != lang {
					t.Errorf("Lang = %q, want %q", e.Lang, lang)
				}
				if e.Subject == "" || strings.ContainsAny(e.Subject, "\r\n") {
					t.Errorf("Subject = %q, want one non-empty line", e.Subject)
				}
				if !strings.Contains(e.HTML, `<html lang="`+lang+`">`) {
					t.Errorf("HTML does not declare lang=%q:\n%s", lang, e.HTML)
				}
				if strings.Contains(e.Text+e.HTML, "{{") {
					t.Errorf("unrendered action left in output:\n%s\n%s", e.Text, e.HTML)
				}
				for _, part := range []string{e.Text, e.HTML} {
					if !strings.Contains(part, d.UnsubscribeURL) {
						t.Errorf("no unsubscribe link %q in:\n%s", d.UnsubscribeURL, part)
					}
					if name != "test" && !strings.Contains(part, greeting[lang]) {
						t.Errorf("no greeting %q in:\n%s", greeting[lang], part)
					}
				}
			})
		}
	}
}

// TestShippedSMSRender renders every shipped SMS in every language and
// holds them to their length budget.
func TestShippedSMSRender(t *testing.T) {
	t.Parallel()
	s := mustLoad(t, testOptions())
	tests := []struct {
		name        string
		maxSegments int
		want        []string // in every language
	}{
		{"promo", 2, []string{"Kvetinka", "https://kvetinka.sk", "STOP"}},
		{"help", 2, []string{"Kvetinka", "STOP", "START", "+421 2 123 456 78", "pomoc@kvetinka.sk"}},
		{"test", 2, []string{"Kvetinka", "spring-sale"}},
	}
	for _, tt := range tests {
		for _, lang := range s.Languages(tt.name, ChannelSMS) {
			t.Run(tt.name+"/"+lang, func(t *testing.T) {
				m, err := s.RenderSMS(tt.name, lang, sampleData())
				if err != nil {
					t.Fatalf("RenderSMS: %v", err)
				}
				if m.Lang != lang || m.Segments < 1 || m.Segments > tt.maxSegments {
					t.Errorf("RenderSMS = %+v, want lang %s and 1-%d segments", m, lang, tt.maxSegments)
				}
				enc, segments, chars := Segments(m.Body)
				if enc != m.Encoding || segments != m.Segments || chars != m.Chars {
					t.Errorf("SMS says %s/%d/%d, Segments(body) = %s/%d/%d", m.Encoding, m.Segments, m.Chars, enc, segments, chars)
				}
				for _, w := range tt.want {
					if !strings.Contains(m.Body, w) {
						t.Errorf("body %q does not contain %q", m.Body, w)
					}
				}
			})
		}
	}
}

// TestShippedWithoutName renders the shipped templates for a customer
// with no name and a shop with no support contacts: nothing dangles.
func TestShippedWithoutName(t *testing.T) {
	t.Parallel()
	s := mustLoad(t, Options{Shop: ShopData{Name: "Kvetinka", URL: "https://kvetinka.sk"}})
	d := Data{Customer: CustomerData{ID: "c-1", Email: "x@example.com"}, UnsubscribeURL: "https://kvetinka.sk/u/1"}
	e, err := s.RenderEmail("promo", "sk", d)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(e.Text, "Dobrý deň,\n") {
		t.Errorf("promo sk text starts %q, want a greeting without a name", e.Text[:20])
	}
	e, err = s.RenderEmail("welcome", "cs", d) // no Extra at all: index gives ""
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(e.Text, "Dobrý den,\n") || !strings.Contains(e.Text, "Příjemce: <x@example.com>") {
		t.Errorf("welcome cs for a nameless customer:\n%s", e.Text)
	}
	m, err := s.RenderSMS("help", "en", d)
	if err != nil {
		t.Fatal(err)
	}
	if want := "This is Kvetinka. Reply STOP to unsubscribe, START to subscribe again."; m.Body != want {
		t.Errorf("help en = %q, want %q", m.Body, want)
	}
}

func TestResolve(t *testing.T) {
	t.Parallel()
	withFallback := mustLoad(t, testOptions())
	noFallback := mustLoad(t, Options{Shop: testShop()})
	tests := []struct {
		set                 *Set
		name, channel, lang string
		want                string // "" means ErrNotFound
	}{
		{withFallback, "promo", ChannelSMS, "sk", "sk"},
		{withFallback, "promo", ChannelSMS, "SK", "sk"},
		{withFallback, "promo", ChannelSMS, "sk-SK", "sk"},
		{withFallback, "promo", ChannelSMS, "cs_CZ", "cs"},
		{withFallback, "promo", ChannelSMS, "de", "en"},
		{withFallback, "promo", ChannelSMS, "", "en"},
		{withFallback, "welcome", ChannelSMS, "sk", ""},
		{withFallback, "nope", ChannelEmail, "sk", ""},
		{withFallback, "promo", "fax", "sk", ""},
		{noFallback, "promo", ChannelEmail, "pl", "pl"},
		{noFallback, "promo", ChannelEmail, "de", ""},
	}
	for _, tt := range tests {
		got, err := tt.set.Resolve(tt.name, tt.channel, tt.lang)
		if tt.want == "" {
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("Resolve(%q, %q, %q) = %q, %v; want ErrNotFound", tt.name, tt.channel, tt.lang, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Resolve(%q, %q, %q) = %q, %v; want %q", tt.name, tt.channel, tt.lang, got, err, tt.want)
		}
	}
}

func TestRenderFallsBack(t *testing.T) {
	t.Parallel()
	s := mustLoad(t, testOptions())
	m, err := s.RenderSMS("promo", "de", sampleData())
	if err != nil {
		t.Fatal(err)
	}
	if m.Lang != "en" || !strings.Contains(m.Body, "Spring sale") {
		t.Errorf("RenderSMS(promo, de) = %+v, want the English text", m)
	}
	_, err = mustLoad(t, Options{}).RenderEmail("promo", "de", sampleData())
	if want := `template promo (de, email): template not found: no "de" file and no fallback language`; err == nil || err.Error() != want {
		t.Errorf("RenderEmail without fallback: err = %v, want %q", err, want)
	}
}
