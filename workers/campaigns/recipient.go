package campaigns

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"

	"github.com/shopworks/backoffice/jobs"
)

// recipient is who a chunk sends one message to, resolved right before
// the send from the customer record (consent as it is now) or, for a file
// audience, from the stored row (and the customer with that address, if
// there is one).
type recipient struct {
	id         string // ledger key
	customerID string // "" for a file row that is no customer
	name       string
	email      string
	phone      string
	language   string
	timezone   string
	extra      map[string]string
	optedOut   bool
}

// address is the recipient's address on channel.
func (r recipient) address(channel string) string {
	if channel == jobs.ChannelSMS {
		return r.phone
	}
	return r.email
}

// resolveFile turns a stored file row into a recipient, taking consent
// (and the customer id, for timeline events and unsubscribe links) from
// the customer with the same address, if any.
func (e *Engine) resolveFile(ctx context.Context, channel, id, data string) (recipient, error) {
	rs, _, err := e.resolveMany(ctx, channel, true, []string{id}, map[string]string{id: data})
	if err != nil {
		return recipient{}, err
	}
	return rs[0], nil
}

// resolveMany is what a chunk resolves right before sending to a batch:
// the recipients with ledger keys ids as they are now, from the customer
// records (a gone customer comes back with reason ReasonNotFound) or, for
// a file audience, from the stored rows and the customers with their
// addresses; a few round trips for the whole batch.
func (e *Engine) resolveMany(ctx context.Context, channel string, file bool, ids []string, rows map[string]string) ([]recipient, []string, error) {
	rs, reasons := make([]recipient, len(ids)), make([]string, len(ids))
	if !file {
		cs, found, err := e.cfg.Customers.GetMany(ctx, ids)
		if err != nil {
			return nil, nil, err
		}
		for i, id := range ids {
			if !found[i] {
				rs[i], reasons[i] = recipient{id: id}, ReasonNotFound
				continue
			}
			rs[i] = fromCustomer(cs[i], channel)
		}
		return rs, reasons, nil
	}
	addrs := make([]string, len(ids))
	for i, id := range ids {
		data, ok := rows[id]
		if !ok {
			return nil, nil, permanent(fmt.Errorf("recipient %s: the chunk has no stored row for it", id))
		}
		fr, err := decodeRow(id, data)
		if err != nil {
			return nil, nil, err
		}
		rs[i] = recipient{id: id, name: fr.Name, email: fr.Email, phone: fr.Phone, language: fr.Language, timezone: fr.Timezone, extra: fr.Extra}
		addrs[i] = rs[i].address(channel)
	}
	lookup := e.cfg.Customers.ByEmails
	if channel == jobs.ChannelSMS {
		lookup = e.cfg.Customers.ByPhones
	}
	cs, found, err := lookup(ctx, addrs)
	if err != nil {
		return nil, nil, fmt.Errorf("find customers by address: %w", err)
	}
	for i := range rs {
		if found[i] {
			rs[i].withCustomer(fromCustomer(cs[i], channel))
		}
	}
	return rs, reasons, nil
}

// withCustomer takes consent and the customer id (for timeline events and
// unsubscribe links) from c, the customer with r's address, and the fields
// the row left empty.
func (r *recipient) withCustomer(c recipient) {
	r.customerID = c.customerID
	r.optedOut = c.optedOut
	r.name = cmp.Or(r.name, c.name)
	r.language = cmp.Or(r.language, c.language)
	r.timezone = cmp.Or(r.timezone, c.timezone)
}

// decodeRow decodes a stored file row.
func decodeRow(id, data string) (fileRecipient, error) {
	var fr fileRecipient
	if err := json.Unmarshal([]byte(data), &fr); err != nil {
		return fr, fmt.Errorf("recipient %s: decode stored row: %w", id, err)
	}
	return fr, nil
}
