package email

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// sample returns a valid message; tests change one field.
func sample() *Message {
	return &Message{
		To:                "jana.novakova@example.sk",
		ToName:            "Jana Nováková",
		From:              "Obchod Pekný <obchod@example.sk>",
		Subject:           "Jarný výpredaj: žlté čučoriedky, ďatle a ľan – Łódź, Příliš žluťoučký kůň",
		Text:              "Dobrý deň,\nzľava 20 % na všetko.\n",
		HTML:              "<p>Dobrý deň,<br>zľava <b>20 %</b> na všetko.</p>\n",
		MessageID:         "<spring-2025.42@mail.example.sk>",
		Headers:           map[string]string{"X-Campaign": "spring-2025", "x-backoffice-ref": "run1:42"},
		UnsubscribeURL:    "https://example.sk/unsubscribe?t=abc",
		UnsubscribeMailto: "mailto:unsubscribe@example.sk?subject=unsubscribe",
	}
}

func render(t *testing.T, m *Message) []byte {
	t.Helper()
	msg, err := build(m, time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	var buf bytes.Buffer
	if _, err := msg.WriteTo(&buf); err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	return buf.Bytes()
}

func TestBuildRoundTrip(t *testing.T) {
	t.Parallel()
	m := sample()
	got := parseMessage(t, render(t, m))

	if got.Subject != m.Subject {
		t.Errorf("Subject = %q, want %q", got.Subject, m.Subject)
	}
	if got.Text != m.Text || got.HTML != m.HTML {
		t.Errorf("bodies = %q / %q, want %q / %q", got.Text, got.HTML, m.Text, m.HTML)
	}
	to, err := got.Header.AddressList("To")
	if err != nil || len(to) != 1 || to[0].Name != m.ToName || to[0].Address != m.To {
		t.Errorf("To = %v (%v), want %s <%s>", to, err, m.ToName, m.To)
	}
	from, err := got.Header.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Name != "Obchod Pekný" || from[0].Address != "obchod@example.sk" {
		t.Errorf("From = %v (%v)", from, err)
	}
	want := map[string]string{
		"Message-Id":            "<spring-2025.42@mail.example.sk>",
		"X-Campaign":            "spring-2025",
		"X-Backoffice-Ref":      "run1:42",
		"List-Unsubscribe":      "<https://example.sk/unsubscribe?t=abc>, <mailto:unsubscribe@example.sk?subject=unsubscribe>",
		"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
		"Date":                  "Sat, 01 Mar 2025 09:00:00 +0000",
		"User-Agent":            "",
		"X-Mailer":              "",
	}
	gotHeaders := map[string]string{}
	for k := range want {
		gotHeaders[k] = got.Header.Get(k)
	}
	if diff := cmp.Diff(want, gotHeaders); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
}

func TestBuildBodyShapes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, text, html, mediaType string
	}{
		{"text only", "ahoj\n", "", "text/plain"},
		{"html only", "", "<p>ahoj</p>", "text/html"},
		{"both", "ahoj\n", "<p>ahoj</p>", "multipart/alternative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := sample()
			m.Text, m.HTML = tc.text, tc.html
			got := parseMessage(t, render(t, m))
			if ct := got.Header.Get("Content-Type"); !strings.HasPrefix(ct, tc.mediaType) {
				t.Errorf("Content-Type = %q, want %s", ct, tc.mediaType)
			}
			if got.Text != tc.text || got.HTML != tc.html {
				t.Errorf("bodies = %q / %q, want %q / %q", got.Text, got.HTML, tc.text, tc.html)
			}
		})
	}
}

func TestBuildUnsubscribeMailtoOnly(t *testing.T) {
	t.Parallel()
	m := sample()
	m.UnsubscribeURL, m.UnsubscribeMailto = "", "unsubscribe@example.sk"
	got := parseMessage(t, render(t, m))
	if h := got.Header.Get("List-Unsubscribe"); h != "<mailto:unsubscribe@example.sk>" {
		t.Errorf("List-Unsubscribe = %q", h)
	}
	if h := got.Header.Get("List-Unsubscribe-Post"); h != "" {
		t.Errorf("List-Unsubscribe-Post = %q, want none without an https URL", h)
	}
}

func TestBuildRejectsInvalid(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		edit  func(*Message)
		field string
	}{
		{"empty To", func(m *Message) { m.To = "" }, "To"},
		{"To with name", func(m *Message) { m.To = "Jana <jana@example.sk>" }, "To"},
		{"two recipients", func(m *Message) { m.To = "a@example.sk, b@example.sk" }, "To"},
		{"To header injection", func(m *Message) { m.To = "a@example.sk\r\nBcc: x@evil.example" }, "To"},
		{"ToName with LF", func(m *Message) { m.ToName = "Jana\nBcc: x@evil.example" }, "ToName"},
		{"bad From", func(m *Message) { m.From = "not an address" }, "From"},
		{"no subject", func(m *Message) { m.Subject = " " }, "Subject"},
		{"subject injection", func(m *Message) { m.Subject = "Hi\r\nBcc: x@evil.example" }, "Subject"},
		{"no body", func(m *Message) { m.Text, m.HTML = "", "" }, "Text"},
		{"no message id", func(m *Message) { m.MessageID = "" }, "MessageID"},
		{"message id without @", func(m *Message) { m.MessageID = "<abc>" }, "MessageID"},
		{"message id with space", func(m *Message) { m.MessageID = "a b@c" }, "MessageID"},
		{"message id non-ASCII", func(m *Message) { m.MessageID = "ľ@c" }, "MessageID"},
		{"header name with colon", func(m *Message) { m.Headers = map[string]string{"X-A:b": "v"} }, "Headers"},
		{"reserved header", func(m *Message) { m.Headers = map[string]string{"bcc": "x@evil.example"} }, "Headers"},
		{"header value CRLF", func(m *Message) { m.Headers = map[string]string{"X-A": "v\r\nBcc: x"} }, "Headers[X-A]"},
		{"header value too long", func(m *Message) { m.Headers = map[string]string{"X-A": strings.Repeat("v", 1000)} }, "Headers[X-A]"},
		{"unsubscribe http", func(m *Message) { m.UnsubscribeURL = "http://example.sk/u" }, "UnsubscribeURL"},
		{"unsubscribe with bracket", func(m *Message) { m.UnsubscribeURL = "https://example.sk/u>, <https://evil" }, "UnsubscribeURL"},
		{"unsubscribe mailto bad", func(m *Message) { m.UnsubscribeMailto = "mailto:" }, "UnsubscribeMailto"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := sample()
			tc.edit(m)
			_, err := build(m, time.Now())
			if !errors.Is(err, ErrInvalidMessage) || !IsPermanent(err) {
				t.Fatalf("build = %v, want ErrInvalidMessage (permanent)", err)
			}
			if !strings.Contains(err.Error(), "message "+tc.field+":") {
				t.Errorf("error %q does not name field %s", err, tc.field)
			}
		})
	}
}
