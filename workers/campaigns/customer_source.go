package campaigns

import (
	"context"
	"errors"
	"fmt"

	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/workers/customers"
)

// CustomerSource is the customer store as campaigns use it (*customers.Store).
type CustomerSource interface {
	// Scan calls fn for every customer the query selects.
	Scan(ctx context.Context, q customers.Query, fn func(customers.Customer) error) error
	// Get returns one customer (customers.ErrNotFound when gone).
	Get(ctx context.Context, id string) (customers.Customer, error)
	// ByEmail and ByPhone find the customer with that address.
	ByEmail(ctx context.Context, email string) (customers.Customer, error)
	ByPhone(ctx context.Context, phone string) (customers.Customer, error)
	// GetMany, ByEmails and ByPhones are the same for a batch, in order;
	// found[i] is false for one that does not exist.
	GetMany(ctx context.Context, ids []string) ([]customers.Customer, []bool, error)
	ByEmails(ctx context.Context, emails []string) ([]customers.Customer, []bool, error)
	ByPhones(ctx context.Context, phones []string) ([]customers.Customer, []bool, error)
	// AddEvent adds a timeline event, once per ev.Key; AddEvents many in
	// one round trip, with an error per event.
	AddEvent(ctx context.Context, id string, ev customers.Event) (string, bool, error)
	AddEvents(ctx context.Context, events []customers.CustomerEvent) ([]error, error)
}

// customerAudience selects a campaign's audience from the customer records.
type customerAudience struct {
	src     CustomerSource
	query   customers.Query
	channel string
}

func (e *Engine) customerSource(def jobs.Campaign) audienceSource {
	return customerAudience{src: e.cfg.Customers, channel: def.Channel,
		query: customers.Query{Tags: def.Audience.Tags, Languages: def.Audience.Languages}}
}

// dupMode is "ignore": a retried launch scans the customers again from
// the start and those planned already are dropped silently.
func (customerAudience) dupMode() string { return "ignore" }

func (a customerAudience) each(ctx context.Context, _ string, emit func(candidate) error) error {
	return a.src.Scan(ctx, a.query, func(c customers.Customer) error {
		return emit(candidate{id: c.ID, reason: skipReason(fromCustomer(c, a.channel), a.channel)})
	})
}

// fromCustomer is the recipient a customer record makes on channel.
func fromCustomer(c customers.Customer, channel string) recipient {
	return recipient{
		id: c.ID, customerID: c.ID, name: c.Name, email: c.Email, phone: c.Phone,
		language: c.Language, timezone: c.Timezone,
		optedOut: c.Consent[customers.Channel(channel)].Status == customers.OptedOut,
	}
}

// customerRecipient loads customer id as they are now.
func (e *Engine) customerRecipient(ctx context.Context, channel, id string) (recipient, bool, error) {
	c, err := e.cfg.Customers.Get(ctx, id)
	if errors.Is(err, customers.ErrNotFound) {
		return recipient{}, false, nil
	}
	if err != nil {
		return recipient{}, false, err
	}
	return fromCustomer(c, channel), true, nil
}

// addEvent writes the timeline event of a message sent to r (once: the
// key is the run and the recipient). ref is the Message-ID or SID.
func (c *chunk) addEvent(ctx context.Context, r recipient, ref, text string) error {
	if r.customerID == "" {
		return nil
	}
	if _, _, err := c.e.cfg.Customers.AddEvent(ctx, r.customerID, c.event(r, ref, text)); err != nil && !errors.Is(err, customers.ErrNotFound) {
		return fmt.Errorf("campaign %s run %s: recipient %s: timeline event: %w", c.args.Campaign, c.args.Run, r.id, err)
	}
	c.events = append(c.events, r.id)
	return nil
}

// event is the timeline event of the message sent to r; text is what it
// shows (the subject or the SMS), "campaign <name>" when unknown.
func (c *chunk) event(r recipient, ref, text string) customers.Event {
	kind := "mail.sent"
	if c.info.def.Channel == jobs.ChannelSMS {
		kind = "sms.out"
	}
	if text == "" {
		text = "campaign " + c.args.Campaign
	}
	return customers.Event{
		Channel: c.info.def.Channel, Kind: kind, Ref: ref, Text: text,
		Key: "campaign:" + c.args.Campaign + ":" + c.args.Run + ":" + r.id,
	}
}
