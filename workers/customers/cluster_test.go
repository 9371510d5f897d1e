package customers

import (
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/shopworks/backoffice/workers/redistest"
)

func TestStoreOnCluster(t *testing.T) {
	t.Parallel()
	cl := redistest.StartCluster(t, 3)
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs()})
	t.Cleanup(func() { _ = rdb.Close() })
	clk := newClock()
	s := New(rdb, "bo:", Options{DefaultRegion: "SK", Now: clk.Now})
	ctx := t.Context()

	for i := range 50 {
		c := Customer{ID: fmt.Sprintf("c-%d", i), Email: fmt.Sprintf("c%d@example.sk", i), Phone: fmt.Sprintf("09051000%02d", i), Language: "sk"}
		if i%2 == 0 {
			c.Tags = []string{"vip"}
		}
		if _, err := s.Upsert(ctx, c); err != nil {
			t.Fatalf("Upsert on cluster: %v", err)
		}
	}
	// Move an e-mail: the record, the index entries and the tag sets live
	// on different nodes.
	if _, err := s.Upsert(ctx, Customer{ID: "c-0", Email: "moved@example.sk", Language: "cs", Tags: []string{"new"}}); err != nil {
		t.Fatalf("Upsert(move) on cluster: %v", err)
	}
	if got, err := s.ByEmail(ctx, "moved@example.sk"); err != nil || got.ID != "c-0" {
		t.Fatalf("ByEmail on cluster = %s, %v", got.ID, err)
	}
	if _, err := s.Upsert(ctx, Customer{ID: "c-x", Email: "c1@example.sk"}); err == nil {
		t.Fatalf("Upsert of another customer's e-mail on cluster succeeded")
	}
	if changed, err := s.SetConsent(ctx, "c-3", ChannelSMS, OptedOut, "sms:STOP", clk.Now()); err != nil || !changed {
		t.Fatalf("SetConsent on cluster = %v, %v", changed, err)
	}
	id1, added, err := s.AddEvent(ctx, "c-3", Event{Kind: "sms.in", Key: "SM1"})
	if err != nil || !added {
		t.Fatalf("AddEvent on cluster = %v, %v", added, err)
	}
	if id2, added, err := s.AddEvent(ctx, "c-3", Event{Kind: "sms.in", Key: "SM1"}); err != nil || added || id2 != id1 {
		t.Fatalf("AddEvent again on cluster = %s, %v, %v; want %s, false", id2, added, err, id1)
	}
	if ev, err := s.Timeline(ctx, "c-3", 10); err != nil || len(ev) != 2 {
		t.Fatalf("Timeline on cluster = %d events, %v; want 2", len(ev), err)
	}
	n := 0
	if err := s.Scan(ctx, Query{Tags: []string{"vip"}, Languages: []string{"sk"}}, func(Customer) error { n++; return nil }); err != nil {
		t.Fatalf("Scan on cluster: %v", err)
	}
	if n != 24 { // c-0 left vip and sk
		t.Fatalf("Scan(vip, sk) on cluster found %d customers, want 24", n)
	}
	if c, created, err := s.FindOrCreateByPhone(ctx, "+421905999999", "sms:SM9"); err != nil || !created || !c.Unknown {
		t.Fatalf("FindOrCreateByPhone on cluster = %+v, %v, %v", c, created, err)
	}
	// The batch lookups and events of campaign chunks: records on every node.
	ids := []string{"c-5", "c-17", "nobody", "c-42"}
	if cs, found, err := s.GetMany(ctx, ids); err != nil || !found[0] || !found[1] || found[2] || !found[3] || cs[3].ID != "c-42" {
		t.Fatalf("GetMany on cluster = %v, %v", found, err)
	}
	if cs, found, err := s.ByEmails(ctx, []string{"c5@example.sk", "moved@example.sk", "c0@example.sk"}); err != nil ||
		!found[0] || cs[1].ID != "c-0" || found[2] {
		t.Fatalf("ByEmails on cluster = %v, %v", found, err)
	}
	if cs, found, err := s.ByPhones(ctx, []string{"0905100007", "0905100049"}); err != nil || cs[0].ID != "c-7" || cs[1].ID != "c-49" || !found[1] {
		t.Fatalf("ByPhones on cluster = %v, %v", found, err)
	}
	var evs []CustomerEvent
	for _, id := range []string{"c-5", "c-17", "c-42"} {
		evs = append(evs, CustomerEvent{ID: id, Event: Event{Kind: "mail.sent", Key: "campaign:x:r1:" + id}})
	}
	if errs, err := s.AddEvents(ctx, evs); err != nil || errs[0] != nil || errs[1] != nil || errs[2] != nil {
		t.Fatalf("AddEvents on cluster = %v, %v", errs, err)
	}
	if ev, err := s.Timeline(ctx, "c-42", 10); err != nil || len(ev) != 1 {
		t.Fatalf("Timeline of c-42 on cluster = %d events, %v; want 1", len(ev), err)
	}
}
