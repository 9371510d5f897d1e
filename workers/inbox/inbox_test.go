package inbox

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
	"github.com/shopworks/backoffice/workers/redistest"
)

func TestAddOpenResolve(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t).Client(t)
	testAddOpenResolve(t, rdb)
}

// TestCluster runs the same checks on a Redis Cluster: every script's keys
// share the {inbox} slot.
func TestCluster(t *testing.T) {
	t.Parallel()
	c := redistest.StartCluster(t, 3)
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	t.Cleanup(func() { rdb.Close() })
	testAddOpenResolve(t, rdb)
}

func testAddOpenResolve(t *testing.T, rdb redis.UniversalClient) {
	ctx := t.Context()
	s := New(rdb, "bo:")
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	msg1 := Entry{ID: "sms:SM1", Kind: KindMessage, Channel: "sms", Ref: "SM1", CustomerID: "c1", From: "+421900000001", Body: "where is my order?", At: t0}
	msg2 := Entry{ID: "sms:SM2", Kind: KindMessage, Channel: "sms", Ref: "SM2", CustomerID: "c2", From: "+421900000002", Body: "", Reason: "empty body", At: t0.Add(time.Minute)}
	bad := Entry{ID: "sms-status:SMX:delivered", Kind: KindUnmatched, Channel: "sms", Ref: "SMX", Reason: "unknown message sid", Detail: "status delivered", At: t0.Add(2 * time.Minute)}
	for _, e := range []Entry{msg1, msg2, bad} {
		added, err := s.Add(ctx, e)
		if err != nil || !added {
			t.Fatalf("Add(%s) = %v, %v, want true, nil", e.ID, added, err)
		}
	}
	again := msg1
	again.Body = "changed by a retry"
	if added, err := s.Add(ctx, again); err != nil || added {
		t.Fatalf("Add(%s) again = %v, %v, want false, nil (first one kept)", again.ID, added, err)
	}

	got, err := s.Open(ctx, KindMessage, 0)
	if err != nil {
		t.Fatalf("Open(message): %v", err)
	}
	if diff := cmp.Diff([]Entry{msg2, msg1}, got); diff != "" {
		t.Errorf("Open(message) mismatch, newest first (-want,+got):\n%s", diff)
	}
	if got, err := s.Open(ctx, KindMessage, 1); err != nil || len(got) != 1 || got[0].ID != msg2.ID {
		t.Errorf("Open(message, 1) = %v, %v, want just %s", got, err, msg2.ID)
	}
	if got, err := s.Open(ctx, KindUnmatched, 0); err != nil || len(got) != 1 || got[0].Detail != "status delivered" {
		t.Errorf("Open(unmatched) = %v, %v, want the unknown delivery report", got, err)
	}

	at := t0.Add(time.Hour)
	if err := s.Resolve(ctx, msg1.ID, "alice", at); err != nil {
		t.Fatalf("Resolve(%s): %v", msg1.ID, err)
	}
	if err := s.Resolve(ctx, msg1.ID, "bob", at.Add(time.Hour)); err != nil {
		t.Fatalf("Resolve(%s) again: %v", msg1.ID, err)
	}
	e, err := s.Get(ctx, msg1.ID)
	if err != nil || e.ResolvedAt == nil || !e.ResolvedAt.Equal(at) || e.ResolvedBy != "alice" {
		t.Errorf("Get(%s) after Resolve = %+v, %v, want resolved by alice at %v", msg1.ID, e, err, at)
	}
	if ttl := rdb.PTTL(ctx, s.keys.entry(msg1.ID)).Val(); ttl <= 0 {
		t.Errorf("resolved entry has TTL %v, want it to expire", ttl)
	}
	if n, err := s.OpenCount(ctx, KindMessage); err != nil || n != 1 {
		t.Errorf("OpenCount(message) = %d, %v, want 1", n, err)
	}
	if added, err := s.Add(ctx, msg1); err != nil || added {
		t.Errorf("Add(%s) after Resolve = %v, %v, want false: a resolved input is not filed again", msg1.ID, added, err)
	}
	if err := s.Resolve(ctx, "sms:nope", "alice", at); !errors.Is(err, ErrNotFound) {
		t.Errorf("Resolve(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := s.Get(ctx, "sms:nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(unknown) = %v, want ErrNotFound", err)
	}

	counts, err := s.Counts(ctx)
	if err != nil {
		t.Fatalf("Counts: %v", err)
	}
	want := map[string]int64{"message": 1, "message:empty body": 1, "unmatched:unknown message sid": 1}
	if diff := cmp.Diff(want, counts); diff != "" {
		t.Errorf("Counts mismatch (-want,+got):\n%s", diff)
	}
}

func TestAddRefusesInvalid(t *testing.T) {
	t.Parallel()
	s := New(redistest.Start(t).Client(t), "bo:")
	at := time.Unix(1700000000, 0)
	tests := []struct {
		name string
		e    Entry
		want string
	}{
		{"no id", Entry{Kind: KindMessage, At: at}, "id must be"},
		{"long id", Entry{ID: strings.Repeat("x", 257), Kind: KindMessage, At: at}, "id must be"},
		{"bad kind", Entry{ID: "x", Kind: "spam", At: at}, "kind must be"},
		{"no time", Entry{ID: "x", Kind: KindMessage}, "at is required"},
		{"unmatched without reason", Entry{ID: "x", Kind: KindUnmatched, At: at}, "needs a reason"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.Add(t.Context(), tt.e); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Add(%+v) = %v, want an error containing %q", tt.e, err, tt.want)
			}
		})
	}
	if _, err := s.Open(t.Context(), "spam", 0); err == nil {
		t.Errorf("Open(spam) = nil error, want a kind error")
	}
}
