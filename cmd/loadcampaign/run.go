package main

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// run runs the phases one after the other, each on its own servers, and
// prints the table. ok is false when a message was lost or duplicated or a
// phase could not be measured; the error is that of the first phase that
// failed (the later phases still run, unless the context ended).
func run(ctx context.Context, o options, out io.Writer) (ok bool, err error) {
	fmt.Fprintf(out, "loadcampaign: phases %s; daemon %s\n", strings.Join(o.phases, ", "), o.daemon)
	var rep report
	var errs []error
	for _, phase := range o.phases {
		if ctx.Err() != nil {
			break
		}
		var rows []row
		var perr error
		switch phase {
		case phaseEmail:
			var r emailResult
			r, perr = runEmail(ctx, o, out)
			if perr == nil {
				rows = r.rows()
			}
		case phasePlan:
			var r planResult
			r, perr = runPlan(ctx, o, out)
			if perr == nil {
				rows = r.rows()
			}
		case phaseSMS:
			var r smsResult
			r, perr = runSMS(ctx, o, out)
			if perr == nil {
				rows = r.rows()
			}
		}
		if perr != nil {
			fmt.Fprintf(out, "  %s: %v\n", phase, perr)
			rows = []row{failedRow(phase, perr)}
			errs = append(errs, fmt.Errorf("%s: %w", phase, perr))
		}
		rep.add(rows...)
	}
	fmt.Fprintln(out)
	rep.print(out)
	if ctx.Err() != nil {
		errs = append(errs, ctx.Err())
	}
	if len(errs) > 0 {
		return false, errs[0]
	}
	return !rep.failed, nil
}
