package templates

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// overrideSet loads the shipped templates plus files as overrides.
func overrideSet(t *testing.T, files map[string]string) *Set {
	t.Helper()
	o := testOptions()
	o.Dir = writeFiles(t, files)
	return mustLoad(t, o)
}

func TestRenderMissingField(t *testing.T) {
	t.Parallel()
	s := overrideSet(t, map[string]string{
		"coupon/sk.sms.tmpl": "Váš kód: {{.Extra.coupon}}",
		"coupon/sk.email.tmpl": `{{define "subject"}}Kupón{{end}}
{{define "text"}}Kód: {{index .Extra "coupon"}}{{end}}
{{define "html"}}<p>Kód: {{.Extra.coupon}}</p>{{end}}`,
	})
	tests := []struct {
		name    string
		render  func(Data) error
		extra   map[string]string
		wantErr string
	}{
		{"sms without the key", smsRenderer(s, "coupon"), nil,
			"template coupon (sk, sms): missing field Extra.coupon"},
		{"sms with another key", smsRenderer(s, "coupon"), map[string]string{"code": "X"},
			"template coupon (sk, sms): missing field Extra.coupon"},
		{"sms with the key", smsRenderer(s, "coupon"), map[string]string{"coupon": "JAR30"}, ""},
		{"email: index gives empty, the html field fails", emailRenderer(s, "coupon"), nil,
			"template coupon (sk, email): missing field Extra.coupon"},
		{"email with the key", emailRenderer(s, "coupon"), map[string]string{"coupon": "JAR30"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := sampleData()
			d.Extra = tt.extra
			err := tt.render(d)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("render: %v", err)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("render error = %v, want %q", err, tt.wantErr)
			}
			if !errors.Is(err, ErrMissingField) {
				t.Errorf("error %v does not wrap ErrMissingField", err)
			}
		})
	}
}

func smsRenderer(s *Set, name string) func(Data) error {
	return func(d Data) error { _, err := s.RenderSMS(name, "sk", d); return err }
}

func emailRenderer(s *Set, name string) func(Data) error {
	return func(d Data) error { _, err := s.RenderEmail(name, "sk", d); return err }
}

func TestRenderEscapesHTML(t *testing.T) {
	t.Parallel()
	s := mustLoad(t, testOptions())
	d := sampleData()
	d.Customer.Name = `<script>alert("x")</script> Novák`
	d.UnsubscribeURL = "javascript:alert(1)"
	e, err := s.RenderEmail("welcome", "en", d)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(e.HTML, "<script>") || !strings.Contains(e.HTML, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") {
		t.Errorf("customer name not escaped in HTML:\n%s", e.HTML)
	}
	if strings.Contains(e.HTML, "javascript:") || !strings.Contains(e.HTML, "#ZgotmplZ") {
		t.Errorf("javascript: URL not neutralised in HTML:\n%s", e.HTML)
	}
	if !strings.Contains(e.Text, `Hello <script>alert("x")</script>,`) {
		t.Errorf("plain text should carry the name as is:\n%s", e.Text)
	}
}

func TestRenderSubject(t *testing.T) {
	t.Parallel()
	s := overrideSet(t, map[string]string{
		"greet/en.email.tmpl": `{{define "subject"}}
  Hello {{.Customer.FirstName}}
{{end}}{{define "text"}}Hi{{end}}{{define "html"}}<p>Hi</p>{{end}}`,
	})
	tests := []struct {
		firstName string
		want      string // subject, or the error
	}{
		{"Ján", "Hello Ján"},
		{"Ján\r\nBcc: everyone@example.com", `template greet (en, email): subject: must be one line, found '\r'`},
		{"Ján\nX-Spam: 1", `template greet (en, email): subject: must be one line, found '\n'`},
		{"Ján\u2028x", `template greet (en, email): subject: must be one line, found '\u2028'`},
		{"Ján\x00", `template greet (en, email): subject: must be one line, found '\x00'`},
		{"Ján\tNovák", "Hello Ján\tNovák"},
	}
	for _, tt := range tests {
		d := sampleData()
		d.Customer.FirstName = tt.firstName
		e, err := s.RenderEmail("greet", "en", d)
		got := e.Subject
		if err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("FirstName %q: got %q, want %q", tt.firstName, got, tt.want)
		}
	}
}

func TestRenderRejectsEmptyAndLong(t *testing.T) {
	t.Parallel()
	s := overrideSet(t, map[string]string{
		"note/en.sms.tmpl": `{{.Extra.note}}`,
		"note/en.email.tmpl": `{{define "subject"}}{{.Extra.note}}{{end}}
{{define "text"}}x{{end}}{{define "html"}}x{{end}}`,
	})
	tests := []struct {
		name    string
		render  func(Data) error
		note    string
		wantErr string
	}{
		{"empty sms", func(d Data) error { _, err := s.RenderSMS("note", "en", d); return err }, " \n ",
			"template note (en, sms): body: renders empty"},
		{"empty subject", func(d Data) error { _, err := s.RenderEmail("note", "en", d); return err }, "",
			"template note (en, email): subject: renders empty"},
		{"eleven segments", func(d Data) error { _, err := s.RenderSMS("note", "en", d); return err }, strings.Repeat("a", 153*10+1),
			"template note (en, sms): body: is 11 segments (1531 GSM-7 characters), more than the 10 allowed"},
		{"ten segments", func(d Data) error { _, err := s.RenderSMS("note", "en", d); return err }, strings.Repeat("a", 153*10), ""},
	}
	for _, tt := range tests {
		d := sampleData()
		d.Extra = map[string]string{"note": tt.note}
		err := tt.render(d)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.wantErr)
		}
	}
}

func TestDerivedFields(t *testing.T) {
	t.Parallel()
	s := overrideSet(t, map[string]string{
		"who/en.sms.tmpl": `{{.Customer.FirstName}}|{{.Shop.Name}}`,
	})
	tests := []struct {
		name, firstName string
		shop            ShopData
		want            string
	}{
		{"Ján Novák", "", ShopData{}, "Ján|Kvetinka"},
		{"  Ján   Novák ", "", ShopData{}, "Ján|Kvetinka"},
		{"Ing. Ján Novák", "", ShopData{}, "Ján|Kvetinka"},
		{"Bc. Mgr. Eva Malá", "", ShopData{}, "Eva|Kvetinka"},
		{"J. Novák", "", ShopData{}, "J.|Kvetinka"},
		{"Ján Novák", "Janko", ShopData{}, "Janko|Kvetinka"},
		{"Ján", "", ShopData{Name: "Iný obchod"}, "Ján|Iný obchod"},
	}
	for _, tt := range tests {
		d := Data{Customer: CustomerData{Name: tt.name, FirstName: tt.firstName}, Shop: tt.shop}
		m, err := s.RenderSMS("who", "en", d)
		if err != nil || m.Body != tt.want {
			t.Errorf("Name %q FirstName %q Shop %q: got %q, %v; want %q", tt.name, tt.firstName, tt.shop.Name, m.Body, err, tt.want)
		}
	}
}

// TestConcurrentRender renders from many goroutines at once; with -race it
// checks the Set is safe to share and pooled buffers never mix recipients.
func TestConcurrentRender(t *testing.T) {
	t.Parallel()
	s := mustLoad(t, testOptions())
	langs := []string{"sk", "cs", "pl", "en"}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				d := sampleData()
				d.Customer.Name = fmt.Sprintf("Zákazník%d-%d Novák", g, i)
				d.UnsubscribeURL = fmt.Sprintf("https://kvetinka.sk/u/%d-%d", g, i)
				lang := langs[(g+i)%len(langs)]
				e, err := s.RenderEmail("welcome", lang, d)
				if err == nil && (!strings.Contains(e.HTML, d.UnsubscribeURL) || !strings.Contains(e.Text, d.UnsubscribeURL)) {
					err = fmt.Errorf("goroutine %d render %d: e-mail lacks its own unsubscribe link %s", g, i, d.UnsubscribeURL)
				}
				if err == nil {
					var m SMS
					m, err = s.RenderSMS("test", lang, d)
					if err == nil && m.Lang != lang {
						err = fmt.Errorf("goroutine %d render %d: sms lang %s, want %s", g, i, m.Lang, lang)
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func BenchmarkRenderEmail(b *testing.B) {
	s := mustLoad(b, testOptions())
	d := sampleData()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.RenderEmail("promo", "sk", d); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRenderSMS(b *testing.B) {
	s := mustLoad(b, testOptions())
	d := sampleData()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.RenderSMS("promo", "sk", d); err != nil {
			b.Fatal(err)
		}
	}
}
