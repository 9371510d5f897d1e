package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"github.com/shopworks/backoffice/jobs"
	"github.com/shopworks/backoffice/workers/customers"
)

// errNoCustomers fails customers:* tasks on a daemon built without a store.
var errNoCustomers = errors.New("workers: customers handlers not configured (Deps.Customers is nil)")

// importLogEvery is how many checkpoints pass between progress log lines.
const importLogEvery = 100

// registerCustomers registers customers:import.
func registerCustomers(r registrar, d Deps) {
	r.handle(jobs.KindCustomersImport, &customersImport{store: d.Customers})
}

// customersImport runs customers:import: it streams a CSV file into the
// customer records. The import checkpoints as it goes, so a retry resumes
// where the last attempt stopped; a missing file or a bad header is marked
// failed on the import and not retried.
type customersImport struct {
	store *customers.Store
}

// ProcessTask implements asynq.Handler.
func (h *customersImport) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var a jobs.CustomersImportArgs
	if err := jobs.Unmarshal(t, &a); err != nil {
		return fmt.Errorf("%w: %v", asynq.SkipRetry, err)
	}
	if h.store == nil {
		return errNoCustomers
	}
	log := LoggerFrom(ctx).With("import_id", a.ImportID)
	checkpoints := 0
	sum, err := h.store.Import(ctx, customers.ImportRequest{ImportID: a.ImportID, Path: a.Path, Source: a.Source,
		Progress: func(s customers.ImportSummary) {
			if checkpoints++; checkpoints%importLogEvery == 0 {
				log.Info("customers import progress", "rows", s.Rows, "line", s.Line, "rejected", s.Rejected)
			}
		}})
	switch {
	case errors.Is(err, customers.ErrBadImport):
		log.Warn("customers import failed", "error", err.Error())
		return fmt.Errorf("%w: %v", asynq.SkipRetry, err)
	case errors.Is(err, customers.ErrImportTakenOver):
		// A redelivery of this task runs the import now; it finishes it.
		log.Warn("customers import continues in another run", "error", err.Error())
		return nil
	case err != nil:
		return h.retryOrGiveUp(ctx, log, a.ImportID, err)
	}
	log.Info("customers import finished", "file", sum.File, "rows", sum.Rows, "imported", sum.Imported,
		"updated", sum.Updated, "unchanged", sum.Unchanged, "rejected", sum.Rejected, "resumes", sum.Resumes)
	return nil
}

// retryOrGiveUp returns err for asynq to retry, and on the last attempt
// marks the import failed first, so that its summary does not stay
// "running" for ever.
func (h *customersImport) retryOrGiveUp(ctx context.Context, log *slog.Logger, importID string, err error) error {
	retried, okR := asynq.GetRetryCount(ctx)
	maxRetry, okM := asynq.GetMaxRetry(ctx)
	if !okR || !okM || retried < maxRetry {
		return err
	}
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	reason := fmt.Sprintf("gave up after %d attempts: %v", retried+1, err)
	if ferr := h.store.FailImport(mctx, importID, reason); ferr != nil {
		log.Error("customers import: could not mark it failed", "error", ferr.Error())
	}
	return err
}
