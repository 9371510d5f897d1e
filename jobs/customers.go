package jobs

import (
	"path/filepath"
	"regexp"
	"time"
)

// KindCustomersImport imports customers from a CSV file on the daemon's disk.
const KindCustomersImport = "customers:import"

func customerSpecs() []Spec {
	return []Spec{
		spec[CustomersImportArgs](Spec{
			Kind: KindCustomersImport, Queue: QueueBulk, MaxRetry: 5,
			Timeout: 2 * time.Hour, Retention: 7 * 24 * time.Hour,
			Summary: "stream a CSV file of customers into the customer records (idempotent upsert)",
		}),
	}
}

var importIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// CustomersImportArgs are the args of customers:import.
type CustomersImportArgs struct {
	// ImportID names the import; its summary and per-row errors are kept
	// under it. The task ID is derived from it, so an import runs once.
	ImportID string `json:"import_id"`
	// Path is the CSV file, absolute, on the daemon's disk (the API stores
	// uploads under the data directory).
	Path string `json:"path"`
	// Source is recorded as the consent source of rows that carry consent
	// columns, e.g. "import:2026-11-crm". Optional.
	Source string `json:"source,omitempty"`
}

// Kind implements Args.
func (CustomersImportArgs) Kind() string { return KindCustomersImport }

// TaskID implements Keyed.
func (a CustomersImportArgs) TaskID() string { return "customers:import:" + a.ImportID }

// Validate implements Args.
func (a CustomersImportArgs) Validate() error {
	switch {
	case !importIDPattern.MatchString(a.ImportID):
		return Errorf("import_id", "must be 1-64 characters of letters, digits, '.', '_' or '-', starting with a letter or digit")
	case a.Path == "":
		return Errorf("path", "is required")
	case !filepath.IsAbs(a.Path):
		return Errorf("path", "must be an absolute path on the daemon's disk, got %q", a.Path)
	case len(a.Source) > 200:
		return Errorf("source", "must be at most 200 characters")
	}
	return nil
}
