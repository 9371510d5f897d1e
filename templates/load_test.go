package templates

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLoadOverrides(t *testing.T) {
	t.Parallel()
	s := overrideSet(t, map[string]string{
		// replaces one language of a shipped template
		"promo/sk.sms.tmpl": "{{.Shop.Name}}: Letný výpredaj! {{.Shop.URL}}\nOdhlásenie: STOP\n",
		// adds a template
		"newsletter/en.email.tmpl": `{{define "subject"}}News from {{.Shop.Name}}{{end}}
{{define "text"}}Hello {{.Customer.FirstName}}{{end}}
{{define "html"}}<p>Hello {{.Customer.FirstName}}</p>{{end}}`,
		// ignored: editor leftovers, ConfigMap internals
		"promo/.sk.sms.tmpl.swp":      "\x00\xff",
		"..2026_11_22_10_00_00/stray": "x",
		".hidden/en.sms.tmpl":         "{{broken",
	})
	sk, err := s.RenderSMS("promo", "sk", sampleData())
	if err != nil {
		t.Fatal(err)
	}
	if want := "Kvetinka: Letný výpredaj! https://kvetinka.sk\nOdhlásenie: STOP"; sk.Body != want {
		t.Errorf("promo sk = %q, want the override %q", sk.Body, want)
	}
	cs, err := s.RenderSMS("promo", "cs", sampleData())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cs.Body, "Jarní výprodej") {
		t.Errorf("promo cs = %q, want the embedded text", cs.Body)
	}
	e, err := s.RenderEmail("newsletter", "sk", sampleData())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Email{Lang: "en", Subject: "News from Kvetinka", Text: "Hello Ján", HTML: "<p>Hello Ján</p>"}, e); diff != "" {
		t.Errorf("newsletter (-want,+got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"help", "newsletter", "promo", "test", "welcome"}, s.Names()); diff != "" {
		t.Errorf("Names() (-want,+got):\n%s", diff)
	}
}

// TestLoadReportsEveryProblem loads an override directory full of
// mistakes: each is reported with its file (and line where there is one),
// and the Set loaded before stays as it was.
func TestLoadReportsEveryProblem(t *testing.T) {
	t.Parallel()
	old := mustLoad(t, testOptions())
	before, err := old.RenderSMS("promo", "sk", sampleData())
	if err != nil {
		t.Fatal(err)
	}
	okEmail := `{{define "subject"}}s{{end}}{{define "text"}}t{{end}}{{define "html"}}h{{end}}`
	tests := []struct {
		file, content string
		want          string // after "templates: <dir>/"
	}{
		{"promo/sk.sms.tmpl", "Ahoj\n{{.Customer.Nickname}}",
			"promo/sk.sms.tmpl:2:11: unknown field Nickname in <.Customer.Nickname> (CustomerData has ID, Name, FirstName, Email, Phone, Language)"},
		{"promo/cs.sms.tmpl", "{{if .Campaign}}no end", "promo/cs.sms.tmpl:1: unexpected EOF"},
		{"fn/en.sms.tmpl", "\n\n{{upper .Customer.Name}}", `fn/en.sms.tmpl:3: function "upper" not defined`},
		{"branch/en.sms.tmpl", "Hi\n{{if eq .Campaign \"never\"}}{{.Customer.Nick}}{{end}}",
			"branch/en.sms.tmpl:2:38: unknown field Nick in <.Customer.Nick>"},
		{"with/en.sms.tmpl", "{{with .Customer}}{{.Nick}}{{end}} {{$.Shop.Nope}}",
			"with/en.sms.tmpl:1:20: unknown field Nick in <.Nick>"},
		{"with/pl.sms.tmpl", "{{$.Shop.Nope}}", "with/pl.sms.tmpl:1:3: unknown field Nope in <$.Shop.Nope> (ShopData has Name, URL, SupportEmail, SupportPhone)"},
		{"str/en.sms.tmpl", "x {{.Customer.Name.Foo}}",
			"str/en.sms.tmpl:1:13: field Foo in <.Customer.Name.Foo> is taken from a string, which has no fields"},
		{"exec/en.sms.tmpl", `x {{index .Customer "x"}}`, "exec/en.sms.tmpl:1:4: executing"},
		{"promo/xx.sms.tmpl", "x", `promo/xx.sms.tmpl: unknown language code "xx"`},
		{"promo/sk-SK.sms.tmpl", "x", `promo/sk-SK.sms.tmpl: unknown language code "sk-SK"`},
		{"promo/notes.txt", "x", "promo/notes.txt: unexpected file"},
		{"promo/en/x.sms.tmpl", "x", "promo/en: unexpected directory"},
		{"stray.txt", "x", "stray.txt: unexpected file"},
		{"Bad_Name/en.sms.tmpl", "x", "Bad_Name: template name must be 1-63 lower-case letters, digits or '-'"},
		{"nohtml/en.email.tmpl", `{{define "subject"}}s{{end}}{{define "text"}}t{{end}}`, `nohtml/en.email.tmpl: missing {{define "html"}} block`},
		{"nosubject/en.email.tmpl", `{{define "text"}}t{{end}}{{define "html"}}h{{end}}`, `nosubject/en.email.tmpl: missing {{define "subject"}} block`},
		{"outside/en.email.tmpl", "\n\nHello\n" + okEmail, "outside/en.email.tmpl:3: text outside the {{define}} blocks"},
		{"emptysms/en.sms.tmpl", "{{/* nothing yet */}}\n", "emptysms/en.sms.tmpl: body renders empty (rendering for the sample customer)"},
		{"emptytext/en.email.tmpl", `{{define "subject"}}s{{end}}{{define "text"}}  {{end}}{{define "html"}}h{{end}}`,
			"emptytext/en.email.tmpl: text renders empty"},
		{"noname/en.email.tmpl", `{{define "subject"}}{{.Customer.FirstName}}{{end}}{{define "text"}}t{{end}}{{define "html"}}h{{end}}`,
			"noname/en.email.tmpl: subject renders empty (rendering for a customer without a name and no campaign)"},
		{"subject/en.email.tmpl", `{{define "subject"}}Hi{{"\n"}}there{{end}}{{define "text"}}t{{end}}{{define "html"}}h{{end}}`,
			`subject/en.email.tmpl: subject must be one line, found '\n'`},
		{"unclosed/en.email.tmpl", "{{define \"subject\"}}s{{end}}{{define \"text\"}}t{{end}}\n{{define \"html\"}}<a href=\"{{.Shop.URL}}>x{{end}}",
			"unclosed/en.email.tmpl: html block: ends in a non-text context"},
		{"long/en.sms.tmpl", strings.Repeat("x", 2000), "long/en.sms.tmpl: body is 14 segments (2000 GSM-7 characters), more than the 10 allowed"},
		{"utf/en.sms.tmpl", "ok\n\xff", "utf/en.sms.tmpl:2: not valid UTF-8"},
	}
	files := make(map[string]string)
	for _, tt := range tests {
		files[tt.file] = tt.content
	}
	o := testOptions()
	o.Dir = writeFiles(t, files)
	s, err := Load(o)
	if s != nil || err == nil {
		t.Fatalf("Load = %v, %v; want no Set and an error", s, err)
	}
	msg := err.Error()
	for _, tt := range tests {
		if want := "templates: " + filepath.Join(o.Dir, tt.want); !strings.Contains(msg, want) {
			t.Errorf("error does not report %s: want %q in:\n%s", tt.file, want, msg)
		}
	}
	for _, line := range strings.Split(msg, "\n") {
		if !strings.HasPrefix(line, "templates: "+o.Dir) {
			t.Errorf("error line %q does not name a file under %s", line, o.Dir)
		}
	}
	after, err := old.RenderSMS("promo", "sk", sampleData())
	if err != nil || after != before {
		t.Errorf("old set changed: %+v, %v; want %+v", after, err, before)
	}
}

func TestLoadReadsEditorOutput(t *testing.T) {
	t.Parallel()
	s := overrideSet(t, map[string]string{
		"crlf/sk.sms.tmpl": "\uFEFF{{.Shop.Name}}:\r\nDobrý deň\r\n",
	})
	m, err := s.RenderSMS("crlf", "sk", sampleData())
	if err != nil {
		t.Fatal(err)
	}
	if want := "Kvetinka:\nDobrý deň"; m.Body != want {
		t.Errorf("body = %q, want %q (no BOM, LF line ends)", m.Body, want)
	}
}

func TestLoadFollowsSymlinks(t *testing.T) {
	t.Parallel()
	real := writeFiles(t, map[string]string{"linked/en.sms.tmpl": "Hi from {{.Shop.Name}}"})
	dir := t.TempDir()
	if err := os.Symlink(filepath.Join(real, "linked"), filepath.Join(dir, "linked")); err != nil {
		t.Fatal(err)
	}
	o := testOptions()
	o.Dir = dir
	m, err := mustLoad(t, o).RenderSMS("linked", "en", Data{})
	if err != nil || m.Body != "Hi from Kvetinka" {
		t.Errorf("RenderSMS(linked) = %+v, %v", m, err)
	}
}

func TestLoadOptions(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"fallback upper case", Options{FallbackLanguage: "EN"}, `templates: fallback language "EN" is not a lower-case ISO 639-1 code such as en`},
		{"fallback unknown", Options{FallbackLanguage: "xx"}, `templates: fallback language "xx" is not a lower-case ISO 639-1 code such as en`},
		{"dir missing", Options{Dir: filepath.Join(t.TempDir(), "nope")}, "templates: override directory: stat "},
		{"dir a file", Options{Dir: file}, "templates: override directory " + file + " is not a directory"},
	}
	for _, tt := range tests {
		s, err := Load(tt.o)
		if s != nil || err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%s: Load = %v, %v; want error %q", tt.name, s, err, tt.want)
		}
	}
}

func TestKnownLanguage(t *testing.T) {
	t.Parallel()
	for code, want := range map[string]bool{
		"sk": true, "cs": true, "pl": true, "en": true, "de": true, "hu": true, "uk": true, "zu": true,
		"xx": false, "SK": false, "s": false, "svk": false, "": false, "s1": false, "ok": false, " s": false,
	} {
		if got := knownLanguage(code); got != want {
			t.Errorf("knownLanguage(%q) = %v, want %v", code, got, want)
		}
	}
}

func TestResolveErrorWrapsNotFound(t *testing.T) {
	t.Parallel()
	_, err := mustLoad(t, testOptions()).RenderSMS("welcome", "sk", sampleData())
	if !errors.Is(err, ErrNotFound) || err.Error() != "template welcome (sms): template not found" {
		t.Errorf("RenderSMS(welcome) err = %v, want ErrNotFound", err)
	}
}

// TestReplace: a Set renders with the templates of the Set it was given
// from then on, while renders run alongside (go test -race); a Set loaded
// with other options is refused.
func TestReplace(t *testing.T) {
	t.Parallel()
	smsIn := func(body string) Options {
		o := testOptions()
		o.Dir = writeFiles(t, map[string]string{"promo/sk.sms.tmpl": body})
		return o
	}
	cur := mustLoad(t, smsIn("Old {{.Shop.Name}}"))
	next := mustLoad(t, smsIn("New {{.Shop.Name}}"))

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			m, err := cur.RenderSMS("promo", "sk", sampleData())
			if err != nil || (m.Body != "Old Kvetinka" && m.Body != "New Kvetinka") {
				t.Errorf("render during Replace = %q, %v", m.Body, err)
				return
			}
		}
	})
	if err := cur.Replace(next); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	if m, err := cur.RenderSMS("promo", "sk", sampleData()); err != nil || m.Body != "New Kvetinka" {
		t.Errorf("after Replace: %q, %v; want the new template", m.Body, err)
	}

	other := testOptions()
	other.Shop.Name = "Iný obchod"
	if err := cur.Replace(mustLoad(t, other)); err == nil {
		t.Error("Replace with a set of another shop succeeded")
	}
	if m, _ := cur.RenderSMS("promo", "sk", sampleData()); m.Body != "New Kvetinka" {
		t.Errorf("after a refused Replace: %q, want the templates kept", m.Body)
	}
}
