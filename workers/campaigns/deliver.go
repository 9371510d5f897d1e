package campaigns

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/shopworks/backoffice/jobs"
)

// one handles one recipient whose entry is pending (or sending, after a
// crash). It returns nil to go on with the next recipient; a *HoldError,
// errRunCancelled or a transient error stop the chunk.
func (c *chunk) one(ctx context.Context, en Entry) error {
	def := c.info.def
	if en.State == EntrySending && def.Channel == jobs.ChannelSMS {
		return c.move(ctx, en.Recipient, transition{from: []EntryState{EntrySending}, to: EntryFailed,
			detail: "in_doubt|the daemon stopped while sending; not sent again to avoid a duplicate SMS"})
	}
	from := []EntryState{EntryPending, EntrySending}
	r, reason, err := c.resolve(ctx, en.Recipient)
	if err != nil {
		return err
	}
	if reason == "" {
		reason = skipReason(r, def.Channel)
	}
	if reason != "" {
		return c.move(ctx, en.Recipient, transition{from: from, to: EntrySkipped, detail: reason})
	}
	if def.Channel == jobs.ChannelSMS {
		if skip, held := c.quietOrExpired(r); skip || held {
			if skip {
				return c.move(ctx, en.Recipient, transition{from: from, to: EntrySkipped, detail: ReasonExpired})
			}
			return nil
		}
	}
	msg, err := c.e.render(def, c.args.Run, r)
	if err != nil {
		return c.move(ctx, en.Recipient, transition{from: from, to: EntryFailed, detail: "template|" + oneLine(err.Error()),
			maxRatio: def.MaxErrorRatio, minAttempts: c.e.cfg.MinAttempts})
	}
	if wait, err := c.e.throttle.take(ctx, def.Name, def.RatePerSecond); err != nil || wait > 0 {
		if err != nil {
			return err
		}
		return hold(wait, "rate limit of %v/s", def.RatePerSecond)
	}
	res, err := c.e.store.transition(ctx, c.args.Campaign, c.args.Run, en.Recipient,
		transition{from: from, to: EntrySending, requireRun: StateRunning})
	switch {
	case err != nil:
		return err
	case res.runState == StateCancelled || res.runState == StateFinished:
		return errRunCancelled
	case res.runState != "":
		return hold(c.e.cfg.PausePoll, "run %s", res.runState)
	case !res.moved:
		return nil // another attempt settled it
	}
	return c.deliver(ctx, r, msg)
}

// skipReason says why r gets nothing on channel, or "".
func skipReason(r recipient, channel string) string {
	switch {
	case r.optedOut:
		return ReasonOptedOut
	case r.address(channel) == "":
		return ReasonNoAddress
	}
	return ""
}

// quietOrExpired applies an SMS campaign's validity and quiet hours to r:
// skip when the message may no longer go out (now or by the end of the
// quiet window), held when it waits for the window to end.
func (c *chunk) quietOrExpired(r recipient) (skip, held bool) {
	def, now := c.info.def, c.e.cfg.Now()
	deadline := time.Time{}
	if def.Validity > 0 {
		deadline = c.info.started.Add(time.Duration(def.Validity))
		if now.After(deadline) {
			return true, false
		}
	}
	until := c.info.quiet.holdUntil(now, c.e.location(r.timezone, def.Timezone))
	if until.IsZero() {
		return false, false
	}
	if !deadline.IsZero() && until.After(deadline) {
		return true, false
	}
	if c.quiet.IsZero() || until.Before(c.quiet) {
		c.quiet = until
	}
	return false, true
}

// deliver sends msg to r (whose entry is now "sending") and records the
// outcome.
func (c *chunk) deliver(ctx context.Context, r recipient, msg outgoing) error {
	ref, err := c.sendWithRetries(ctx, msg)
	def := c.info.def
	if err != nil && c.e.isPermanent(def.Channel, err) {
		code, text := failure(err)
		return c.move(context.WithoutCancel(ctx), r.id, transition{from: []EntryState{EntrySending}, to: EntryFailed, detail: code + "|" + text,
			maxRatio: def.MaxErrorRatio, minAttempts: c.e.cfg.MinAttempts})
	}
	if err != nil {
		if _, perr := c.e.store.transition(context.WithoutCancel(ctx), c.args.Campaign, c.args.Run, r.id,
			transition{from: []EntryState{EntrySending}, to: EntryPending}); perr != nil {
			c.e.cfg.Logger.Warn("campaign chunk: return recipient to pending", "campaign", def.Name, "run", c.args.Run, "recipient", r.id, "error", perr)
		}
		if wait, limited := providerLimit(err); limited {
			return &laterError{after: wait, err: err}
		}
		return fmt.Errorf("campaign %s run %s: recipient %s: %w", def.Name, c.args.Run, r.id, err)
	}
	if def.Channel == jobs.ChannelSMS {
		at := sidRef{campaign: def.Name, run: c.args.Run, recipient: r.id, customer: r.customerID}
		if err := c.e.store.indexSID(context.WithoutCancel(ctx), ref, at, c.e.cfg.SIDTTL); err != nil {
			c.e.cfg.Logger.Warn("campaign chunk: index sms sid", "campaign", def.Name, "run", c.args.Run, "error", err)
		}
	}
	if err := c.recordSent(context.WithoutCancel(ctx), r, ref); err != nil {
		return err
	}
	return c.addEvent(ctx, r, ref, msg.summary())
}

// sendAttempts is how many times a chunk tries one message in-process when
// the provider fails transiently (SMTP 4xx, network, Twilio 429/5xx) before
// it gives the chunk back to the queue. A few percent of transient failures
// are normal at volume; ending the chunk on each would stall the run.
const sendAttempts = 4

// sendWithRetries sends msg, retrying a transient failure after 250ms,
// 500ms, 1s, as long as that wait is at most MaxRateWait. Each retry takes
// its turn under the campaign's rate like any send, and renews the chunk's
// slot; the entry stays "sending" meanwhile. A provider's rate limit
// (Twilio 429) is returned at once: the chunk defers that recipient by the
// provider's Retry-After and sends to the others meanwhile. The last error
// is returned.
func (c *chunk) sendWithRetries(ctx context.Context, msg outgoing) (string, error) {
	def := c.info.def
	for attempt := 1; ; attempt++ {
		sendCtx, cancel := context.WithTimeout(ctx, c.e.cfg.SlotLease/3)
		ref, err := c.e.sendMessage(sendCtx, msg)
		cancel()
		if err == nil || attempt == sendAttempts || ctx.Err() != nil || c.e.isPermanent(def.Channel, err) {
			return ref, err
		}
		if _, limited := providerLimit(err); limited {
			return ref, err // deferred by the chunk: it goes on with others meanwhile
		}
		wait := 250 * time.Millisecond << (attempt - 1)
		if wait > c.e.cfg.MaxRateWait || sleepCtx(ctx, wait) != nil {
			return ref, err
		}
		if busy, lerr := c.lease.renew(ctx); lerr != nil || busy != nil {
			return ref, err
		}
		if w, terr := c.e.throttle.take(ctx, def.Name, def.RatePerSecond); terr != nil || w > 0 {
			return ref, err
		}
	}
}

// recordSent moves r's entry to sent, trying a few times: the message has
// left, and an entry left in "sending" would be in doubt after a retry.
func (c *chunk) recordSent(ctx context.Context, r recipient, ref string) error {
	t := transition{from: []EntryState{EntrySending}, to: EntrySent, detail: ref, needEvent: r.customerID != ""}
	var err error
	for attempt, wait := 0, 50*time.Millisecond; attempt < 4; attempt, wait = attempt+1, wait*4 {
		if _, err = c.e.store.transition(ctx, c.args.Campaign, c.args.Run, r.id, t); err == nil {
			c.settled++
			return nil
		}
		if sleepCtx(ctx, wait) != nil {
			break
		}
	}
	return err
}

// move applies a transition that settles a recipient without sending. A
// run paused by the error ratio stops the chunk.
func (c *chunk) move(ctx context.Context, id string, t transition) error {
	res, err := c.e.store.transition(ctx, c.args.Campaign, c.args.Run, id, t)
	if err != nil {
		return err
	}
	if res.moved {
		c.settled++
	}
	if res.paused {
		c.e.cfg.Logger.Warn("campaign run paused: error ratio", "campaign", c.args.Campaign, "run", c.args.Run)
		return hold(c.e.cfg.PausePoll, "run paused by max_error_ratio")
	}
	return nil
}

// messageID is the deterministic Message-ID of run's mail to recipient id.
func (e *Engine) messageID(campaign, run, id string) string {
	sum := sha256.Sum256([]byte(id))
	return "<" + campaign + "." + run + "." + hex.EncodeToString(sum[:10]) + "@" + e.domain + ">"
}

// oneLine keeps an error text fit for the ledger: one line, at most 300
// characters.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 300 {
		s = string(r[:300]) + "…"
	}
	return s
}

// laterError is a provider rate limit (Twilio 429) on one recipient, whose
// entry is back to pending: the chunk tries it again after the wait.
type laterError struct {
	after time.Duration
	err   error
}

func (e *laterError) Error() string { return e.err.Error() }
func (e *laterError) Unwrap() error { return e.err }

// deferred is a recipient the provider asked the chunk to try later.
type deferred struct {
	entry Entry
	due   time.Time
}
