package email

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func newOutbox(t *testing.T, now time.Time) (*Outbox, string) {
	t.Helper()
	dir := t.TempDir()
	o, err := NewOutbox(dir)
	if err != nil {
		t.Fatalf("NewOutbox: %v", err)
	}
	o.now = func() time.Time { return now }
	return o, dir
}

// emlFiles lists every file under dir/mail, relative to it.
func emlFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	root := filepath.Join(dir, "mail")
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		files = append(files, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestOutboxWritesParseableEML(t *testing.T) {
	t.Parallel()
	o, dir := newOutbox(t, time.Date(2025, 3, 1, 23, 30, 0, 0, time.UTC))
	m := sample()
	if err := o.Send(t.Context(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	files := emlFiles(t, dir)
	want := filepath.Join("2025-03-01", "spring-2025.42@mail.example.sk.eml")
	if len(files) != 1 || files[0] != want {
		t.Fatalf("files = %v, want [%s]", files, want)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "mail", want))
	if err != nil {
		t.Fatal(err)
	}
	got := parseMessage(t, raw)
	if got.Subject != m.Subject || got.Text != m.Text || got.HTML != m.HTML {
		t.Errorf("outbox message = %q / %q / %q", got.Subject, got.Text, got.HTML)
	}
	if id := got.Header.Get("Message-Id"); id != m.MessageID {
		t.Errorf("Message-ID = %q, want %q", id, m.MessageID)
	}
}

func TestOutboxIsIdempotentByMessageID(t *testing.T) {
	t.Parallel()
	day1 := time.Date(2025, 3, 1, 23, 59, 0, 0, time.UTC)
	o, dir := newOutbox(t, day1)
	m := sample()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if err := o.Send(t.Context(), m); err != nil {
				t.Errorf("Send: %v", err)
			}
		})
	}
	wg.Wait()
	// A retry after midnight replaces yesterday's file.
	o.now = func() time.Time { return day1.Add(2 * time.Minute) }
	m2 := sample()
	m2.Subject = "second attempt"
	if err := o.Send(t.Context(), m2); err != nil {
		t.Fatalf("Send: %v", err)
	}
	files := emlFiles(t, dir)
	if len(files) != 1 {
		t.Fatalf("files = %v, want exactly one", files)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "mail", files[0]))
	if err != nil {
		t.Fatal(err)
	}
	if got := parseMessage(t, raw); got.Subject != "second attempt" {
		t.Errorf("Subject = %q, want the last write", got.Subject)
	}
	// A different Message-ID is a different file.
	m3 := sample()
	m3.MessageID = "<spring-2025.43@mail.example.sk>"
	if err := o.Send(t.Context(), m3); err != nil {
		t.Fatal(err)
	}
	if files := emlFiles(t, dir); len(files) != 2 {
		t.Errorf("files = %v, want two", files)
	}
}

func TestOutboxRejectsInvalidAndCancelled(t *testing.T) {
	t.Parallel()
	o, dir := newOutbox(t, time.Now())
	m := sample()
	m.MessageID = ""
	if err := o.Send(t.Context(), m); !errors.Is(err, ErrInvalidMessage) {
		t.Errorf("Send without Message-ID = %v, want ErrInvalidMessage", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := o.Send(ctx, sample()); !errors.Is(err, context.Canceled) {
		t.Errorf("Send with a cancelled context = %v, want context.Canceled", err)
	}
	if files := emlFiles(t, dir); len(files) != 0 {
		t.Errorf("files = %v, want none", files)
	}
}

func TestFileName(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 240) + "@h"
	for _, tc := range []struct{ id, want string }{
		{"<a.b@c.d>", "a.b@c.d.eml"},
		{"run-1.cust+42@mail.shop.sk", "run-1.cust+42@mail.shop.sk.eml"},
		{"../../etc/passwd@x", "%2E.%2F..%2Fetc%2Fpasswd@x.eml"},
		{"a/b@c", "a%2Fb@c.eml"},
		{"a_2Fb@c", "a_2Fb@c.eml"},
		{"a%b@c", "a%25b@c.eml"},
	} {
		if got := fileName(tc.id); got != tc.want {
			t.Errorf("fileName(%q) = %q, want %q", tc.id, got, tc.want)
		}
	}
	got := fileName(long)
	if len(got) > 255 || fileName(long+"y") == got {
		t.Errorf("fileName(long) = %q (%d bytes), want short and unique", got, len(got))
	}
}
