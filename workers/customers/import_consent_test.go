package customers

import (
	"os"
	"testing"
	"time"
)

// An SMS STOP that arrives while an import runs must win over the import's
// "yes" for that customer: the file was written before the customer said
// STOP, so the import's consent is the older decision.
func TestImportDoesNotUndoAStopReceivedWhileItRuns(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	mustUpsert(t, b.store, Customer{ID: "c-2", Phone: "+421905222222"})
	b.clock.Advance(time.Minute)
	path := writeCSV(t, "id,sms_consent\nc-1,yes\nc-2,yes\n")
	stopped := false
	_, err := b.store.Import(ctx, ImportRequest{ImportID: "race", Path: path, BatchSize: 1, Progress: func(ImportSummary) {
		if stopped {
			return
		}
		stopped = true
		// c-2 texts STOP after the import started, before its row is read.
		b.clock.Advance(time.Minute)
		if _, err := b.store.SetConsent(ctx, "c-2", ChannelSMS, OptedOut, "sms:STOP", b.clock.Now()); err != nil {
			t.Error(err)
		}
		b.clock.Advance(time.Minute)
	}})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := b.store.Get(ctx, "c-2")
	if c := got.Consent[ChannelSMS]; c.Status != OptedOut || c.Source != "sms:STOP" {
		t.Fatalf("c-2 sms consent after the import = %+v; want the STOP kept", c)
	}
	if c1, _ := b.store.Get(ctx, "c-1"); c1.Consent[ChannelSMS].Status != OptedIn {
		t.Fatalf("c-1 sms consent = %+v; want opted in by the import", c1.Consent)
	}
}

// A file written before a customer's STOP does not opt the customer in
// again: its consent decisions date from when the file was last modified.
func TestImportOfAFileOlderThanAStop(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	mustUpsert(t, b.store, Customer{ID: "c-1", Phone: "+421905111111"})
	path := writeCSV(t, "id,sms_consent,email_consent\nc-1,yes,yes\n")
	written := b.clock.Now()
	if err := os.Chtimes(path, written, written); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(time.Hour)
	if _, err := b.store.SetConsent(ctx, "c-1", ChannelSMS, OptedOut, "sms:STOP", b.clock.Now()); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(time.Hour)
	if _, err := b.store.Import(ctx, ImportRequest{ImportID: "old-file", Path: path}); err != nil {
		t.Fatal(err)
	}
	got, _ := b.store.Get(ctx, "c-1")
	if c := got.Consent[ChannelSMS]; c.Status != OptedOut || c.Source != "sms:STOP" {
		t.Fatalf("sms consent after importing a file older than the STOP = %+v; want the STOP kept", c)
	}
	if c := got.Consent[ChannelEmail]; c.Status != OptedIn || !c.At.Equal(written) {
		t.Fatalf("e-mail consent = %+v; want opted in as of the file's time %v", c, written)
	}
}
