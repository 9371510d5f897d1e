// Package workers holds the asynq handlers of every job family. A handler
// decodes its args (an invalid payload wraps asynq.SkipRetry), checks its
// ledger, does its effect through a small interface it declares, and records
// the outcome. Concrete stores and senders come in through Deps.
package workers

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/shopworks/backoffice/templates"
	"github.com/shopworks/backoffice/workers/campaigns"
	"github.com/shopworks/backoffice/workers/customers"
	"github.com/shopworks/backoffice/workers/inbox"
)

// Deps are the concrete collaborators the handlers need. The daemon builds
// one Deps at start-up; tests build their own with real Redis.
type Deps struct {
	Redis     redis.UniversalClient
	KeyPrefix string
	Client    *asynq.Client // for jobs that enqueue other jobs
	Logger    *slog.Logger
	DataDir   string
	Now       func() time.Time // nil means time.Now
	// Family-specific collaborators are added below, one field each.
	Campaigns *campaigns.Engine // campaign:* (nil fails those tasks)
	Customers *customers.Store  // customer records and timelines (nil fails customers:* and sms:* tasks)
	Inbox     *inbox.Store      // staff inbox of unanswered and unfiled input (nil fails sms:* tasks)
	SMS       SMSSender         // answers HELP: *sms.Twilio or *sms.Outbox (nil: HELP goes to the inbox)
	Templates *templates.Set    // message templates (nil: as SMS)
}

func (d Deps) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

// Register adds the handler of every job kind to mux. Registering a kind
// twice panics: that is a wiring bug, caught at start-up.
func Register(mux *asynq.ServeMux, d Deps) {
	r := registrar{mux: mux, seen: map[string]bool{}}
	registerCustomers(r, d)
	registerCampaigns(r, d)
	registerSMS(r, d)
}

type registrar struct {
	mux  *asynq.ServeMux
	seen map[string]bool
}

func (r registrar) handle(kind string, h asynq.Handler) {
	if r.seen[kind] {
		panic(fmt.Sprintf("workers: job kind %q registered twice", kind))
	}
	r.seen[kind] = true
	r.mux.Handle(kind, h)
}
