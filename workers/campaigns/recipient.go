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
	fr, err := decodeRow(id, data)
	if err != nil {
		return recipient{}, err
	}
	r := recipient{id: id, name: fr.Name, email: fr.Email, phone: fr.Phone, language: fr.Language, timezone: fr.Timezone, extra: fr.Extra}
	c, found, err := e.customerByAddress(ctx, channel, r.address(channel))
	if err != nil {
		return recipient{}, err
	}
	if found {
		r.customerID = c.customerID
		r.optedOut = c.optedOut
		r.name = cmp.Or(r.name, c.name)
		r.language = cmp.Or(r.language, c.language)
		r.timezone = cmp.Or(r.timezone, c.timezone)
	}
	return r, nil
}

// decodeRow decodes a stored file row.
func decodeRow(id, data string) (fileRecipient, error) {
	var fr fileRecipient
	if err := json.Unmarshal([]byte(data), &fr); err != nil {
		return fr, fmt.Errorf("recipient %s: decode stored row: %w", id, err)
	}
	return fr, nil
}
