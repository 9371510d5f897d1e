package customers

import (
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Channel is a way of reaching a customer.
type Channel string

// The channels a customer can consent to.
const (
	ChannelEmail  Channel = "email"
	ChannelSMS    Channel = "sms"
	ChannelLetter Channel = "letter"
)

// ConsentStatus is a customer's answer for one channel.
type ConsentStatus string

// The consent statuses.
const (
	OptedIn  ConsentStatus = "opted_in"
	OptedOut ConsentStatus = "opted_out"
)

// Consent is the latest consent decision for one channel.
type Consent struct {
	Status ConsentStatus `json:"status"`
	At     time.Time     `json:"at"`
	Source string        `json:"source"` // e.g. "import:2026-11-crm", "sms:STOP"
	// RepeatedAt is when the customer last repeated this decision (a second
	// STOP), when later than At; zero when they have not. A decision made
	// before it and applied after it (a retried job) is ignored, as is one
	// made before At.
	RepeatedAt time.Time `json:"repeated_at,omitzero"`
}

// Customer is one customer record.
type Customer struct {
	ID       string              `json:"id"`
	Name     string              `json:"name,omitempty"`
	Email    string              `json:"email,omitempty"`
	Phone    string              `json:"phone,omitempty"`    // E.164, e.g. +421905123456
	Language string              `json:"language,omitempty"` // ISO 639-1, e.g. sk, cs, pl, en
	Timezone string              `json:"timezone,omitempty"` // IANA, e.g. Europe/Bratislava; optional
	Tags     []string            `json:"tags,omitempty"`     // lower case, sorted, unique
	Consent  map[Channel]Consent `json:"consent,omitempty"`
	// Unknown marks a contact created from an inbound message that no one
	// has identified yet.
	Unknown   bool      `json:"unknown,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Event is one entry of a customer's timeline.
type Event struct {
	ID      string    `json:"id"` // stream id, set by the store
	At      time.Time `json:"at"`
	Channel string    `json:"channel,omitempty"`
	// Kind says what happened: "sms.in", "sms.out", "mail.sent",
	// "consent.opt_out", "consent.opt_in", "letter", "ticket", "return", ...
	Kind string `json:"kind"`
	Ref  string `json:"ref,omitempty"`  // what it refers to: a MessageSid, campaign run, RMA number
	Text string `json:"text,omitempty"` // short; truncated to 500 runes
	// Key, when set, makes AddEvent exactly-once: a second event with the
	// same key for the same customer is not added.
	Key string `json:"-"`
}

// UpsertResult says what Upsert did.
type UpsertResult struct {
	Created bool // the customer did not exist
	Changed bool // the record was written (true when Created)
}

// ErrNotFound is returned when no customer matches.
var ErrNotFound = errors.New("customer not found")

// ErrInUse is wrapped by the *FieldError returned when an e-mail address or
// phone number already belongs to another customer.
var ErrInUse = errors.New("already belongs to another customer")

// Options configure a Store. The zero value works.
type Options struct {
	// DefaultRegion is the ISO 3166 region ("SK") that phone numbers
	// without a leading + are read in. Empty: such numbers are refused.
	DefaultRegion string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// TimelineMaxLen caps each customer's timeline (approximately, the
	// oldest events go first). Zero means 10000.
	TimelineMaxLen int64
}

// Store reads and writes customer records. It is safe for concurrent use.
type Store struct {
	rdb    redis.UniversalClient
	keys   keys
	region string
	now    func() time.Time
	maxLen int64
	zones  sync.Map // valid IANA zone names already checked
}

// New returns a store on rdb whose keys all start with prefix (e.g. "bo:").
func New(rdb redis.UniversalClient, prefix string, o Options) *Store {
	s := &Store{rdb: rdb, keys: keys{prefix: prefix}, region: o.DefaultRegion, now: o.Now, maxLen: o.TimelineMaxLen}
	if s.now == nil {
		s.now = time.Now
	}
	if s.maxLen <= 0 {
		s.maxLen = 10000
	}
	return s
}

// clock returns the current time in UTC, to the millisecond, as stored.
func (s *Store) clock() time.Time { return stamp(s.now()) }

// stamp normalises a time the way the store keeps it.
func stamp(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }
