package sms

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/shopworks/backoffice/workers/redistest"
)

func TestInboundStore(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	rdb := redistest.Start(t).Client(t)
	s := NewInboundStore(rdb, "bo:")
	m := InboundMessage{SID: "SM0123456789abcdef0123456789abcdef", CustomerID: "c1", From: "+421900123456", To: "+421233000000",
		Body: "photo of the damage", MediaURLs: []string{"https://api.twilio.com/m/0"}, Keyword: "none",
		At: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	if _, err := s.Get(ctx, m.SID); !errors.Is(err, ErrNoInbound) {
		t.Fatalf("Get before Save = %v, want ErrNoInbound", err)
	}
	if err := s.Save(ctx, m); err != nil {
		t.Fatalf("Save: %v", err)
	}
	retry := m
	retry.Body = "a retry must not overwrite"
	if err := s.Save(ctx, retry); err != nil {
		t.Fatalf("Save again: %v", err)
	}
	if got, err := s.Get(ctx, m.SID); err != nil || got.ReplySID != "" {
		t.Fatalf("Get before any claim = %+v, %v, want no reply", got, err)
	}
	// A claim whose send failed is released; the next attempt claims again.
	if got, err := s.ClaimReply(ctx, m.SID); err != nil || got != "" {
		t.Fatalf("ClaimReply (first) = %q, %v, want the claim", got, err)
	}
	if err := s.ReleaseReply(ctx, m.SID); err != nil {
		t.Fatalf("ReleaseReply: %v", err)
	}
	if got, err := s.ClaimReply(ctx, m.SID); err != nil || got != "" {
		t.Fatalf("ClaimReply after release = %q, %v, want the claim", got, err)
	}
	// A claim still held (the attempt crashed mid-send) is in doubt.
	if _, err := s.ClaimReply(ctx, m.SID); !errors.Is(err, ErrReplyInDoubt) {
		t.Fatalf("ClaimReply while claimed = %v, want ErrReplyInDoubt", err)
	}
	if err := s.SetReply(ctx, m.SID, "SMreply1"); err != nil {
		t.Fatalf("SetReply: %v", err)
	}
	if got, err := s.ClaimReply(ctx, m.SID); err != nil || got != "SMreply1" {
		t.Fatalf("ClaimReply after SetReply = %q, %v, want SMreply1 (already sent)", got, err)
	}
	if err := s.ReleaseReply(ctx, m.SID); err != nil {
		t.Fatalf("ReleaseReply after SetReply: %v", err)
	}
	if got, err := s.Get(ctx, m.SID); err != nil || got.ReplySID != "SMreply1" {
		t.Fatalf("Get after ReleaseReply of a sent reply = %+v, %v, want reply SMreply1 kept", got, err)
	}
	got, err := s.Get(ctx, m.SID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	want := m
	want.ReplySID = "SMreply1"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Get mismatch (-want,+got):\n%s", diff)
	}
	if ttl := rdb.TTL(ctx, s.key(m.SID)).Val(); ttl <= 0 || ttl > DefaultInboundTTL {
		t.Errorf("TTL of the record = %v, want within (0, %v]", ttl, DefaultInboundTTL)
	}
}
