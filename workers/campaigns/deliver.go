package campaigns

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/workers/sms"
)

// codeInDoubt is the failure code of an SMS that may or may not have left:
// it is not sent again unless an operator retries the failed recipients,
// and its delivery report, should one come, still settles it.
const codeInDoubt = "in_doubt"

// inDoubt moves a "sending" SMS to failed as in doubt, saying why.
func inDoubt(why string) transition {
	return transition{from: []EntryState{EntrySending}, to: EntryFailed, detail: codeInDoubt + "|" + why}
}

// ready is a recipient a chunk is about to send to, with the message.
type ready struct {
	entry Entry
	r     recipient
	msg   outgoing
}

// sendBatch handles a batch of recipients whose entries are pending (or
// sending, after a crash): it resolves and renders them, settles those who
// get nothing, then takes their turns under the campaign's rate and claims
// them ("sending") as many at a time as the limiter grants, and sends. An
// SMS is claimed one at a time: one found "sending" after a crash is in
// doubt and not sent again, so only the one being sent may be "sending".
// prepaid says the (single) recipient already had its turn: the provider
// refused it and asked for a later try. It returns nil to go on with the
// next batch; a *HoldError, errRunCancelled or a transient error stop the
// chunk, and recipients claimed but not sent to go back to pending.
func (c *chunk) sendBatch(ctx context.Context, batch []Entry, prepaid bool) error {
	todo, err := c.prepare(ctx, batch)
	if err != nil {
		return err
	}
	def := c.info.def
	claimMax := len(todo)
	if def.Channel == jobs.ChannelSMS {
		claimMax = 1
	}
	for len(todo) > 0 {
		n := min(claimMax, len(todo))
		if prepaid {
			n, prepaid = 1, false
		} else {
			granted, wait, err := c.e.throttle.takeUpTo(ctx, def.Name, def.RatePerSecond, n)
			if err != nil {
				return err
			}
			if granted == 0 {
				return hold(wait, "rate limit of %v/s", def.RatePerSecond)
			}
			n = granted
		}
		claimed, err := c.claim(ctx, todo[:n])
		if err != nil {
			return err
		}
		todo = todo[n:]
		for i, p := range claimed {
			if err := c.deliverOrDefer(ctx, p); err != nil {
				c.unclaim(ctx, claimed[i+1:])
				return err
			}
		}
	}
	return nil
}

// prepare resolves and renders a batch. Recipients who get nothing are
// settled here (skipped with the reason, failed when the template does not
// render for them, failed as in doubt for an SMS found "sending"); those
// held by quiet hours are left pending. The rest come back in order.
func (c *chunk) prepare(ctx context.Context, batch []Entry) ([]ready, error) {
	def := c.info.def
	from := []EntryState{EntryPending, EntrySending}
	live := make([]Entry, 0, len(batch))
	ids := make([]string, 0, len(batch))
	for _, en := range batch {
		if en.State == EntrySending && def.Channel == jobs.ChannelSMS {
			if err := c.move(ctx, en.Recipient, inDoubt("the daemon stopped while sending; not sent again to avoid a duplicate SMS")); err != nil {
				return nil, err
			}
			continue
		}
		live = append(live, en)
		ids = append(ids, en.Recipient)
	}
	if len(live) == 0 {
		return nil, nil
	}
	// a retry-failed run keeps its parent's frozen definition, so a file
	// audience still names its file and its chunks carry the rows
	rs, reasons, err := c.e.resolveMany(ctx, def.Channel, def.Audience.File != "", ids, c.rows)
	if err != nil {
		return nil, fmt.Errorf("campaign %s run %s: %w", c.args.Campaign, c.args.Run, err)
	}
	out := make([]ready, 0, len(live))
	for i, en := range live {
		r, reason := rs[i], reasons[i]
		if reason == "" {
			reason = skipReason(r, def.Channel)
		}
		if reason != "" {
			if err := c.move(ctx, en.Recipient, transition{from: from, to: EntrySkipped, detail: reason}); err != nil {
				return nil, err
			}
			continue
		}
		if def.Channel == jobs.ChannelSMS {
			if skip, held := c.quietOrExpired(r); skip || held {
				if skip {
					if err := c.move(ctx, en.Recipient, transition{from: from, to: EntrySkipped, detail: ReasonExpired}); err != nil {
						return nil, err
					}
				}
				continue
			}
		}
		msg, err := c.e.render(def, c.args.Run, r)
		if err != nil {
			if err := c.move(ctx, en.Recipient, transition{from: from, to: EntryFailed, detail: "template|" + oneLine(err.Error()),
				maxRatio: def.MaxErrorRatio, minAttempts: c.e.cfg.MinAttempts}); err != nil {
				return nil, err
			}
			continue
		}
		out = append(out, ready{entry: en, r: r, msg: msg})
	}
	return out, nil
}

// claim moves the entries of todo to "sending", in one script call, if the
// run is still running, and returns those it moved: another attempt may
// have settled some meanwhile.
func (c *chunk) claim(ctx context.Context, todo []ready) ([]ready, error) {
	res, err := c.e.store.transitionMany(ctx, c.args.Campaign, c.args.Run, recipientIDs(todo),
		transition{from: []EntryState{EntryPending, EntrySending}, to: EntrySending, requireRun: StateRunning})
	switch {
	case err != nil:
		// Redis may have run the claim and stopped before its reply: give
		// the recipients back, or the next attempt takes them for sends in
		// doubt (an SMS in doubt is failed, not sent). None of them was
		// sent, and no other attempt holds them.
		c.unclaim(ctx, todo)
		return nil, err
	case res.runState == StateCancelled || res.runState == StateFinished:
		return nil, errRunCancelled
	case res.runState != "":
		return nil, hold(c.e.cfg.PausePoll, "run %s", res.runState)
	}
	claimed := todo[:0:0]
	for i, p := range todo {
		if res.moved[i] {
			claimed = append(claimed, p)
		}
	}
	return claimed, nil
}

// unclaim gives recipients claimed but not sent to back to pending when the
// chunk stops before their turn, trying for up to releaseFor while Redis
// does not answer. Should that fail they stay "sending": the next attempt
// sends an e-mail they never got, and fails an SMS as in doubt.
func (c *chunk) unclaim(ctx context.Context, rest []ready) {
	if len(rest) == 0 {
		return
	}
	err := keepTrying(ctx, releaseFor, func() error {
		_, err := c.e.store.transitionMany(context.WithoutCancel(ctx), c.args.Campaign, c.args.Run, recipientIDs(rest),
			transition{from: []EntryState{EntrySending}, to: EntryPending})
		return err
	})
	if err != nil {
		c.e.cfg.Logger.Warn("campaign chunk: return claimed recipients to pending", "campaign", c.args.Campaign, "run", c.args.Run, "recipients", len(rest), "error", err)
	}
}

// keepTrying calls f until it succeeds, waiting 50 ms doubling to 1 s in
// between, for up to limit of waiting or until ctx is done, and returns
// f's last error: for the writes a chunk must not leave undone across a
// Redis restart or failover.
func keepTrying(ctx context.Context, limit time.Duration, f func() error) error {
	var waited time.Duration
	for wait := 50 * time.Millisecond; ; waited, wait = waited+wait, min(2*wait, time.Second) {
		err := f()
		if err == nil || waited+wait > limit || sleepCtx(ctx, wait) != nil {
			return err
		}
	}
}

// recipientIDs returns the ledger keys of ps.
func recipientIDs(ps []ready) []string {
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.entry.Recipient
	}
	return ids
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
	c.e.onWire.Add(1)
	ref, err := c.sendWithRetries(ctx, msg)
	c.e.onWire.Add(-1)
	def := c.info.def
	if err != nil && def.Channel == jobs.ChannelSMS && sms.IsInDoubt(err) {
		// The request reached Twilio and no answer came: as after a crash
		// mid-send, the SMS is not sent again unless an operator says so.
		return c.move(context.WithoutCancel(ctx), r.id, inDoubt(oneLine(err.Error())))
	}
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
	if def.Channel == jobs.ChannelSMS && ref != "" { // "": accepted, SID unknown
		at := sidRef{campaign: def.Name, run: c.args.Run, recipient: r.id, customer: r.customerID}
		if err := c.e.store.indexSID(context.WithoutCancel(ctx), ref, at, c.e.cfg.SIDTTL); err != nil {
			c.e.cfg.Logger.Warn("campaign chunk: index sms sid", "campaign", def.Name, "run", c.args.Run, "error", err)
		}
	}
	return c.recordSent(context.WithoutCancel(ctx), r, ref, msg.summary())
}

// sendAttempts is how many times a chunk tries one message in-process when
// the provider fails transiently (SMTP 4xx, network, Twilio 429/5xx) before
// it gives the chunk back to the queue. A few percent of transient failures
// are normal at volume; ending the chunk on each would stall the run.
const sendAttempts = 4

// sendWithRetries sends msg, retrying a transient failure after 250ms,
// 500ms, 1s, as long as that wait is at most MaxRateWait. A retry renews
// the chunk's slot and uses the message's turn under the campaign's rate
// (the rate counts messages: the provider took none); the entry stays
// "sending" meanwhile. A provider's rate limit
// (Twilio 429) is returned at once: the chunk defers that recipient by the
// provider's Retry-After and sends to the others meanwhile. The last error
// is returned.
func (c *chunk) sendWithRetries(ctx context.Context, msg outgoing) (string, error) {
	def := c.info.def
	for attempt := 1; ; attempt++ {
		if err := c.e.checkAlive(); err != nil {
			return "", err
		}
		sendCtx, cancel := context.WithTimeout(ctx, c.e.cfg.SlotLease/3)
		ref, err := c.e.sendMessage(sendCtx, msg)
		cancel()
		if err != nil {
			c.e.cfg.Metrics.sendError(def.Name, def.Channel, c.e.errorClass(def.Channel, err))
		}
		if err == nil || attempt == sendAttempts || ctx.Err() != nil || c.e.isPermanent(def.Channel, err) || sms.IsInDoubt(err) {
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
	}
}

// recordFor is how long recordSent keeps trying the ledger: long enough
// for Redis to restart or fail over.
const recordFor = 8 * time.Second

// recordSent moves r's entry to sent and writes the timeline event, with
// the messages other chunks record at the same time (the engine's
// recorder), trying the ledger for up to recordFor: the message has left,
// and an entry left in "sending" is in doubt after a retry (an e-mail is
// sent again, an SMS fails as in doubt). An event that
// could not be written stops the chunk; the next attempt catches it up.
// So does a run an operator paused or cancelled since the batch was
// claimed: the recipients claimed after this one go back to pending
// unsent, and a cancel stops every chunk within one message.
func (c *chunk) recordSent(ctx context.Context, r recipient, ref, text string) error {
	rec := &sentRecord{campaign: c.args.Campaign, run: c.args.Run, id: r.id, ref: ref, customer: r.customerID}
	if r.customerID != "" {
		rec.event = c.event(r, ref, text)
	}
	var res recordResult
	if err := keepTrying(ctx, recordFor, func() error { res = c.e.rec.record(ctx, rec); return res.ledger }); err != nil {
		return fmt.Errorf("campaign %s run %s: recipient %s: record sent: %w", c.args.Campaign, c.args.Run, r.id, err)
	}
	c.settled++
	c.e.cfg.Metrics.settled(c.args.Campaign, c.info.def.Channel, EntrySent)
	if res.eventWritten {
		c.events = append(c.events, r.id) // dropped from noevent when the chunk ends
	}
	if res.event != nil {
		return fmt.Errorf("campaign %s run %s: recipient %s: timeline event: %w", c.args.Campaign, c.args.Run, r.id, res.event)
	}
	return c.stillRunning(res.run)
}

// stillRunning turns the run's state, as the ledger last saw it, into what
// stops the chunk: errRunCancelled for a run that ended, a hold for a
// paused one, nil while it runs.
func (c *chunk) stillRunning(st State) error {
	switch st {
	case StateRunning, "":
		return nil
	case StatePaused:
		return hold(c.e.cfg.PausePoll, "run paused")
	}
	return errRunCancelled
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
		if t.to == EntryFailed {
			c.e.cfg.Metrics.settled(c.args.Campaign, c.info.def.Channel, EntryFailed)
		}
	}
	if res.paused {
		c.e.cfg.Logger.Warn("campaign run paused: error ratio", "campaign", c.args.Campaign, "run", c.args.Run)
		return hold(c.e.cfg.PausePoll, "run paused by max_error_ratio")
	}
	return nil
}

// errorClass sorts a failed send for backoffice_campaign_send_errors_total.
func (e *Engine) errorClass(channel string, err error) string {
	switch {
	case channel == jobs.ChannelSMS && sms.IsInDoubt(err):
		return errorInDoubt
	case e.isPermanent(channel, err):
		return errorPermanent
	}
	if _, limited := providerLimit(err); limited {
		return errorProviderLimit
	}
	return errorTransient
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
