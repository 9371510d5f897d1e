package customers

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestUpsertGetAndLookups(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	in := Customer{ID: "c-1", Name: " Jana Nováková ", Email: "Jana.Novakova@Example.SK", Phone: "0905 123 456",
		Language: "SK", Timezone: "Europe/Bratislava", Tags: []string{"VIP", "newsletter", "vip"}}
	res, err := b.store.Upsert(ctx, in)
	if err != nil {
		t.Fatalf("Upsert(new) error: %v", err)
	}
	if res != (UpsertResult{Created: true, Changed: true}) {
		t.Fatalf("Upsert(new) = %+v, want created and changed", res)
	}
	now := b.clock.Now()
	want := Customer{ID: "c-1", Name: "Jana Nováková", Email: "Jana.Novakova@Example.SK", Phone: "+421905123456",
		Language: "sk", Timezone: "Europe/Bratislava", Tags: []string{"newsletter", "vip"}, CreatedAt: now, UpdatedAt: now}
	got, err := b.store.Get(ctx, "c-1")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("Get(c-1) (-want,+got):\n%s", diff)
	}
	lookups := []struct {
		name string
		get  func() (Customer, error)
	}{
		{"ByEmail lower case", func() (Customer, error) { return b.store.ByEmail(ctx, "jana.novakova@example.sk") }},
		{"ByPhone national", func() (Customer, error) { return b.store.ByPhone(ctx, "0905123456") }},
		{"ByPhone international", func() (Customer, error) { return b.store.ByPhone(ctx, "+421 905 123 456") }},
		{"Find id", func() (Customer, error) { return b.store.Find(ctx, "c-1") }},
		{"Find e-mail", func() (Customer, error) { return b.store.Find(ctx, "JANA.novakova@example.sk") }},
		{"Find phone", func() (Customer, error) { return b.store.Find(ctx, "00421905123456") }},
	}
	for _, l := range lookups {
		got, err := l.get()
		if err != nil {
			t.Errorf("%s: %v", l.name, err)
			continue
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-want,+got):\n%s", l.name, diff)
		}
	}

	b.clock.Advance(time.Hour)
	if res, err := b.store.Upsert(ctx, in); err != nil || res != (UpsertResult{}) {
		t.Fatalf("Upsert(same again) = %+v, %v; want no change", res, err)
	}
	if got, _ := b.store.Get(ctx, "c-1"); !got.UpdatedAt.Equal(now) {
		t.Fatalf("UpdatedAt after an unchanged upsert = %v, want %v", got.UpdatedAt, now)
	}
	in.Name = "Jana Malá"
	if res, err := b.store.Upsert(ctx, in); err != nil || res != (UpsertResult{Changed: true}) {
		t.Fatalf("Upsert(new name) = %+v, %v; want changed", res, err)
	}
	got, _ = b.store.Get(ctx, "c-1")
	if got.Name != "Jana Malá" || !got.UpdatedAt.Equal(b.clock.Now()) || !got.CreatedAt.Equal(now) {
		t.Fatalf("after rename: name %q created %v updated %v; want Jana Malá, %v, %v", got.Name, got.CreatedAt, got.UpdatedAt, now, b.clock.Now())
	}
	for _, ref := range []string{"c-2", "nobody@example.sk", "+421905000000", "not a ref"} {
		if _, err := b.store.Find(ctx, ref); !errors.Is(err, ErrNotFound) {
			t.Errorf("Find(%q) error = %v, want ErrNotFound", ref, err)
		}
	}
	if n, err := b.store.Count(ctx); err != nil || n != 1 {
		t.Errorf("Count = %d, %v; want 1", n, err)
	}
}

func TestUpsertValidation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tests := []struct {
		name  string
		c     Customer
		field string
		msg   string
	}{
		{"id missing", Customer{}, "id", "must be 1-64"},
		{"id with brace", Customer{ID: "a{b}"}, "id", "must be 1-64"},
		{"e-mail garbage", Customer{ID: "c", Email: "not-an-email"}, "email", `"not-an-email" is not a valid e-mail address`},
		{"e-mail with name", Customer{ID: "c", Email: "Jana <jana@example.sk>"}, "email", "not a bare e-mail address"},
		{"e-mail without tld", Customer{ID: "c", Email: "jana@localhost"}, "email", "no top-level part"},
		{"phone garbage", Customer{ID: "c", Phone: "call me"}, "phone", `"call me"`},
		{"phone too short", Customer{ID: "c", Phone: "0905"}, "phone", `"0905": not a valid number`},
		{"language", Customer{ID: "c", Language: "xx"}, "language", `ISO 639-1`},
		{"language long", Customer{ID: "c", Language: "slovak"}, "language", `"slovak"`},
		{"timezone", Customer{ID: "c", Timezone: "Mars/Olympus"}, "timezone", `"Mars/Olympus" is not an IANA time zone`},
		{"timezone Local", Customer{ID: "c", Timezone: "Local"}, "timezone", `is not an IANA`},
		{"tag", Customer{ID: "c", Tags: []string{"ok", "not ok"}}, "tags", `"not ok"`},
		{"name control", Customer{ID: "c", Name: "a\x00b"}, "name", "control characters"},
		{"name utf8", Customer{ID: "c", Name: "a\xffb"}, "name", "UTF-8"},
		{"consent channel", Customer{ID: "c", Consent: map[Channel]Consent{"fax": {Status: OptedIn}}}, "consent", "unknown channel"},
		{"consent status", Customer{ID: "c", Consent: map[Channel]Consent{ChannelSMS: {Status: "maybe"}}}, "consent.sms", "opted_in or opted_out"},
	}
	for _, tt := range tests {
		_, err := b.store.Upsert(t.Context(), tt.c)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field || !strings.Contains(fe.Msg, tt.msg) {
			t.Errorf("%s: Upsert error = %v; want field %s containing %q", tt.name, err, tt.field, tt.msg)
		}
	}
	if n, _ := b.store.Count(t.Context()); n != 0 {
		t.Errorf("Count after invalid upserts = %d, want 0", n)
	}
}

func TestNormalizePhone(t *testing.T) {
	t.Parallel()
	sk := New(nil, "", Options{DefaultRegion: "SK"})
	none := New(nil, "", Options{})
	tests := []struct {
		store   *Store
		in      string
		want    string
		wantErr string
	}{
		{sk, "0905 123 456", "+421905123456", ""},
		{sk, "+421 905 123 456", "+421905123456", ""},
		{sk, "00421905123456", "+421905123456", ""},
		{sk, "02/593 012 34", "+421259301234", ""},
		{sk, "+420 601 123 456", "+420601123456", ""},
		{sk, "00420 601 123 456", "+420601123456", ""},
		{sk, "+48 512 345 678", "+48512345678", ""},
		{sk, "+48 (22) 123 45 67", "+48221234567", ""},
		{none, "+421905123456", "+421905123456", ""},
		{none, "0905123456", "", `phone number "0905123456": needs an international prefix`},
		{sk, "hello", "", `phone number "hello"`},
		{sk, "12", "", `phone number "12"`},
		{sk, "+999 123 456 789", "", `phone number "+999 123 456 789"`},
		{sk, "+421 905 123 456 789 000", "", `phone number "+421 905 123 456 789 000"`},
		{sk, "", "", "phone number is empty"},
		{sk, "+421905123456x12", "", `phone number "+421905123456x12": has an extension (12)`},
		{sk, "+421 2 5930 1234 ext. 9", "", `has an extension (9)`},
	}
	for _, tt := range tests {
		got, err := tt.store.NormalizePhone(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("NormalizePhone(%q) = %q, %v; want error containing %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("NormalizePhone(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestEmailChangeMovesIndexes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	c := Customer{ID: "c-1", Email: "old@example.sk", Phone: "+421905111111", Tags: []string{"a", "b"}}
	mustUpsert(t, b.store, c)
	c.Email, c.Phone, c.Tags = "new@example.sk", "+421905222222", []string{"b", "c"}
	mustUpsert(t, b.store, c)

	if _, err := b.store.ByEmail(ctx, "old@example.sk"); !errors.Is(err, ErrNotFound) {
		t.Errorf("ByEmail(old) error = %v, want ErrNotFound", err)
	}
	if _, err := b.store.ByPhone(ctx, "+421905111111"); !errors.Is(err, ErrNotFound) {
		t.Errorf("ByPhone(old) error = %v, want ErrNotFound", err)
	}
	if got, err := b.store.ByEmail(ctx, "NEW@example.sk"); err != nil || got.ID != "c-1" {
		t.Errorf("ByEmail(new) = %s, %v; want c-1", got.ID, err)
	}
	if n := b.rdb.HExists(ctx, "bo:idx:email", "old@example.sk").Val(); n {
		t.Errorf("idx:email still holds the old address")
	}
	if n := b.rdb.HExists(ctx, "bo:idx:phone", "+421905111111").Val(); n {
		t.Errorf("idx:phone still holds the old number")
	}
	for tag, want := range map[string]bool{"a": false, "b": true, "c": true} {
		if got := b.rdb.SIsMember(ctx, "bo:tag:"+tag, "c-1").Val(); got != want {
			t.Errorf("c-1 in tag set %s = %v, want %v", tag, got, want)
		}
	}
	// The old address is free for another customer now.
	mustUpsert(t, b.store, Customer{ID: "c-2", Email: "OLD@example.sk"})
	if got, err := b.store.ByEmail(ctx, "old@example.sk"); err != nil || got.ID != "c-2" {
		t.Errorf("ByEmail(old) after c-2 took it = %s, %v; want c-2", got.ID, err)
	}
}

func TestConflictingEmailAndPhoneRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	mustUpsert(t, b.store, Customer{ID: "c-1", Email: "jana@example.sk", Phone: "+421905111111"})
	tests := []struct {
		c     Customer
		field string
	}{
		{Customer{ID: "c-2", Email: "JANA@example.sk"}, "email"},
		{Customer{ID: "c-2", Phone: "0905 111 111"}, "phone"},
		{Customer{ID: "c-2", Email: "other@example.sk", Phone: "0905111111"}, "phone"},
	}
	for _, tt := range tests {
		_, err := b.store.Upsert(ctx, tt.c)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field || !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "customer c-1") {
			t.Errorf("Upsert(%+v) error = %v; want field %s in use by customer c-1", tt.c, err, tt.field)
		}
	}
	if _, err := b.store.Get(ctx, "c-2"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(c-2) after refused upserts: %v, want ErrNotFound", err)
	}
	// The refused upsert released what it had claimed.
	if b.rdb.HExists(ctx, "bo:idx:email", "other@example.sk").Val() {
		t.Errorf("a refused upsert left its e-mail claim behind")
	}
	if got, err := b.store.ByEmail(ctx, "jana@example.sk"); err != nil || got.ID != "c-1" {
		t.Errorf("ByEmail(jana) = %s, %v; want c-1", got.ID, err)
	}
}

func TestStaleClaimIsTakenOverAfterGrace(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	mustUpsert(t, b.store, Customer{ID: "c-1", Email: "jana@example.sk"})
	// A crash of an update of c-1 left a claim on an address c-1's record
	// does not hold.
	leftover := newClaim("c-1", b.clock.Now())
	b.rdb.HSet(ctx, "bo:idx:email", "left@example.sk", leftover)
	if _, err := b.store.ByEmail(ctx, "left@example.sk"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ByEmail(leftover) error = %v, want ErrNotFound", err)
	}
	// While it is young it might be an update in flight: refused.
	if _, err := b.store.Upsert(ctx, Customer{ID: "c-2", Email: "left@example.sk"}); !errors.Is(err, ErrInUse) {
		t.Fatalf("Upsert claiming a young leftover: error = %v, want ErrInUse", err)
	}
	b.clock.Advance(claimGrace + time.Second)
	if _, err := b.store.Upsert(ctx, Customer{ID: "c-2", Email: "left@example.sk"}); err != nil {
		t.Fatalf("Upsert claiming a stale leftover: %v", err)
	}
	if got, err := b.store.ByEmail(ctx, "left@example.sk"); err != nil || got.ID != "c-2" {
		t.Fatalf("ByEmail(left) = %s, %v; want c-2", got.ID, err)
	}
	// An old claim whose owner still holds the address is never taken.
	if _, err := b.store.Upsert(ctx, Customer{ID: "c-3", Email: "jana@example.sk"}); !errors.Is(err, ErrInUse) {
		t.Fatalf("Upsert claiming c-1's address: error = %v, want ErrInUse", err)
	}
}

func TestConcurrentUpsertsOfOneCustomer(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	const n = 16
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := b.store.Upsert(ctx, Customer{ID: "c-1", Email: fmt.Sprintf("v%d@example.sk", i),
				Phone: fmt.Sprintf("+4219051000%02d", i), Tags: []string{fmt.Sprintf("t%d", i), "common"}})
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent Upsert: %v", err)
		}
	}
	final, err := b.store.Get(ctx, "c-1")
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		email := fmt.Sprintf("v%d@example.sk", i)
		got, err := b.store.ByEmail(ctx, email)
		if email == final.Email {
			if err != nil || got.ID != "c-1" {
				t.Errorf("ByEmail(final %s) = %s, %v", email, got.ID, err)
			}
		} else if !errors.Is(err, ErrNotFound) {
			t.Errorf("ByEmail(%s) not held by the final record: error = %v, want ErrNotFound", email, err)
		}
		tag := fmt.Sprintf("t%d", i)
		member := b.rdb.SIsMember(ctx, "bo:tag:"+tag, "c-1").Val()
		if containsTag(final.Tags, tag) && !member {
			t.Errorf("final record carries %s but the tag set lacks c-1", tag)
		}
	}
	if !b.rdb.SIsMember(ctx, "bo:tag:common", "c-1").Val() {
		t.Errorf("tag set common lacks c-1")
	}
}

func mustUpsert(t *testing.T, s *Store, c Customer) UpsertResult {
	t.Helper()
	res, err := s.Upsert(t.Context(), c)
	if err != nil {
		t.Fatalf("Upsert(%s): %v", c.ID, err)
	}
	return res
}

// The batch lookups campaign chunks use answer like their one-at-a-time
// counterparts, in order, for found, missing, invalid and stale entries.
func TestBatchLookups(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	mustUpsert(t, b.store, Customer{ID: "c-1", Email: "jana@example.sk", Phone: "+421905111111"})
	mustUpsert(t, b.store, Customer{ID: "c-2", Email: "petr@example.cz", Phone: "+420601222333"})
	// a stale index entry (left by a crash) pointing at a record that does
	// not hold the address any more is no match
	b.rdb.HSet(ctx, "bo:idx:email", "ghost@example.sk", "c-1|1|x")

	cs, found, err := b.store.GetMany(ctx, []string{"c-2", "nobody", "not an id!", "c-1"})
	if err != nil {
		t.Fatal(err)
	}
	if !found[0] || cs[0].Email != "petr@example.cz" || found[1] || found[2] || !found[3] || cs[3].ID != "c-1" {
		t.Errorf("GetMany = %+v, found %v", cs, found)
	}
	cs, found, err = b.store.ByEmails(ctx, []string{"JANA@example.sk", "", "ghost@example.sk", "x@example.sk", " petr@example.cz "})
	if err != nil {
		t.Fatal(err)
	}
	if want := []bool{true, false, false, false, true}; !slices.Equal(found, want) || cs[0].ID != "c-1" || cs[4].ID != "c-2" {
		t.Errorf("ByEmails found %v (want %v), ids %q %q", found, want, cs[0].ID, cs[4].ID)
	}
	cs, found, err = b.store.ByPhones(ctx, []string{"0905 111 111", "not a number", "+420601222333", "+421905999999"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []bool{true, false, true, false}; !slices.Equal(found, want) || cs[0].ID != "c-1" || cs[2].ID != "c-2" {
		t.Errorf("ByPhones found %v (want %v), ids %q %q", found, want, cs[0].ID, cs[2].ID)
	}
	if cs, found, err := b.store.GetMany(ctx, nil); err != nil || len(cs) != 0 || len(found) != 0 {
		t.Errorf("GetMany(nil) = %v, %v, %v", cs, found, err)
	}
}

// The same address written with a precomposed letter or with a combining
// accent (NFC or NFD, as macOS exports text) is one mailbox: one customer.
func TestEmailUnicodeFormsAreOneAddress(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	const nfc, nfd = "j\u00e1na@ex\u00e1mple.sk", "ja\u0301na@exa\u0301mple.sk"
	mustUpsert(t, b.store, Customer{ID: "c-1", Email: nfd})
	if got, _ := b.store.Get(ctx, "c-1"); got.Email != nfc {
		t.Errorf("stored e-mail = %q, want it in NFC %q", got.Email, nfc)
	}
	_, err := b.store.Upsert(ctx, Customer{ID: "c-2", Email: nfc})
	if !errors.Is(err, ErrInUse) {
		t.Errorf("Upsert(c-2, the same address in NFC) error = %v; want ErrInUse", err)
	}
	for _, addr := range []string{nfc, nfd, strings.ToUpper(nfd)} {
		if got, err := b.store.ByEmail(ctx, addr); err != nil || got.ID != "c-1" {
			t.Errorf("ByEmail(%q) = %q, %v; want c-1", addr, got.ID, err)
		}
	}
}

// Invisible characters make an address that looks like another one but
// reaches nobody: refused.
func TestEmailWithInvisibleCharactersRefused(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"jana@example.sk\u200b", "\ufeffjana@example.sk", "ja\u00adna@example.sk", "jana\u2060@example.sk"} {
		if err := CheckEmail(addr); err == nil || !strings.Contains(err.Error(), "invisible") {
			t.Errorf("CheckEmail(%q) = %v; want refused for an invisible character", addr, err)
		}
	}
	if err := CheckEmail("j\u00e1na@example.sk"); err != nil {
		t.Errorf("CheckEmail(jána@example.sk) = %v, want nil", err)
	}
}
