package sms_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/shopworks/backoffice/workers/sms"
)

func readOutbox(t *testing.T, dir string) []sms.OutboxLine {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, sms.OutboxFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []sms.OutboxLine
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		var l sms.OutboxLine
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			t.Fatalf("%s:%d: %v: %s", sms.OutboxFile, n, err, sc.Bytes())
		}
		lines = append(lines, l)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

func TestOutboxAppendsJSONLines(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	o, err := sms.NewOutbox(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := message(1)
	m.Body = "Riadok 1\nRiadok 2 \"úvodzovky\" ľščťž"
	res, err := o.Send(t.Context(), m)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	sum := sha256.Sum256([]byte("run1:1"))
	wantSID := "OB" + hex.EncodeToString(sum[:])[:32]
	if res.SID != wantSID || res.Status != "queued" || sms.OutboxSID("run1:1") != wantSID {
		t.Errorf("Send = %+v, want SID %s queued", res, wantSID)
	}
	lines := readOutbox(t, dir)
	if len(lines) != 1 {
		t.Fatalf("%d lines, want 1", len(lines))
	}
	l := lines[0]
	if l.SID != wantSID || l.Ref != m.Ref || l.To != m.To || l.Body != m.Body || l.StatusCallback != m.StatusCallback || l.DateCreated.IsZero() {
		t.Errorf("line = %+v, want the message", l)
	}
	info, err := os.Stat(filepath.Join(dir, sms.OutboxFile))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("outbox file mode = %v (%v), want 0600", info.Mode().Perm(), err)
	}
}

func TestOutboxConcurrentAppendsAndDeterministicSID(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	o1, err := sms.NewOutbox(dir)
	if err != nil {
		t.Fatal(err)
	}
	o2, err := sms.NewOutbox(dir) // a second daemon on the same directory
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			o := o1
			if i%2 == 1 {
				o = o2
			}
			if _, err := o.Send(t.Context(), message(i%20)); err != nil {
				t.Errorf("Send: %v", err)
			}
		})
	}
	wg.Wait()
	lines := readOutbox(t, dir)
	if len(lines) != 40 {
		t.Fatalf("%d lines, want 40", len(lines))
	}
	sids := map[string]int{}
	for _, l := range lines {
		if l.SID != sms.OutboxSID(l.Ref) {
			t.Errorf("line %+v: SID is not OutboxSID(ref)", l)
		}
		sids[l.SID]++
	}
	if len(sids) != 20 {
		t.Errorf("%d distinct SIDs, want 20 (each ref twice)", len(sids))
	}
}

func TestOutboxRejects(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	o, err := sms.NewOutbox(dir)
	if err != nil {
		t.Fatal(err)
	}
	noRef := message(1)
	noRef.Ref = ""
	badTo := message(1)
	badTo.To = "12345"
	for _, m := range []sms.Message{noRef, badTo} {
		if _, err := o.Send(t.Context(), m); !errors.Is(err, sms.ErrInvalidMessage) {
			t.Errorf("Send(%+v) = %v, want ErrInvalidMessage", m, err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := o.Send(ctx, message(1)); !errors.Is(err, context.Canceled) {
		t.Errorf("Send with a cancelled context = %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, sms.OutboxFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("outbox written after rejected sends: %v", err)
	}
	if _, err := sms.NewOutbox(""); err == nil {
		t.Error(`NewOutbox("") = nil error`)
	}
}
