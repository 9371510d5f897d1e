package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Targets of the issue. Performance targets are reported (PASS/MISS), not
// enforced; a lost or duplicated message fails the run.
const (
	targetEmailRatio   = 0.80             // campaign msgs/s over the go-mail ceiling
	targetPlanTime     = 30 * time.Second // for 1,000,000 recipients
	targetPlanRecips   = 1_000_000
	targetPeakRSS      = 200 << 20 // bytes
	targetSMSTolerance = 0.05      // achieved rate within 5% of the configured one
)

// row is one line of the final table.
type row struct {
	figure, measured, baseline, ratio, target, result string
}

// report collects the rows of every phase.
type report struct {
	rows   []row
	failed bool // a correctness check failed
}

func (r *report) add(rows ...row) {
	for _, x := range rows {
		if x.result == "FAIL" {
			r.failed = true
		}
		r.rows = append(r.rows, x)
	}
}

// print writes the table.
func (r *report) print(out io.Writer) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tmeasured\tbaseline\tratio\ttarget\tresult")
	fmt.Fprintln(tw, "------\t--------\t--------\t-----\t------\t------")
	for _, x := range r.rows {
		fmt.Fprintln(tw, strings.Join([]string{x.figure, x.measured, dash(x.baseline), dash(x.ratio), dash(x.target), dash(x.result)}, "\t"))
	}
	_ = tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// verdict is PASS when ok, else MISS (a performance target).
func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

// check is PASS when ok, else FAIL (a correctness check).
func check(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

func ratio(a, b float64) string {
	if b == 0 {
		return ""
	}
	return fmt.Sprintf("%.2f", a/b)
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

func count(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// failedRow reports a phase that could not be measured.
func failedRow(phase string, err error) row {
	return row{figure: phase, measured: "error: " + oneLine(err.Error()), result: "FAIL"}
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}
