package config

import (
	"errors"
	"slices"
	"strings"
)

// otherVars are the BACKOFFICE_* variables that belong to something else
// than the daemon: the CLI's and the test suite's.
var otherVars = []string{"BACKOFFICE_URL", "BACKOFFICE_TOKEN", "BACKOFFICE_KEEP_SCREENSHOTS"}

// CheckNames returns an *Error for every BACKOFFICE_* variable of environ
// (os.Environ) that no setting reads: a misspelt name would otherwise leave
// its setting at the default in silence (BACKOFFICE_PUBLC_URL, and every
// unsubscribe link points at localhost). Values are never repeated.
func CheckNames(environ []string) error {
	known := map[string]bool{}
	var names []string
	for _, s := range settings() {
		known[s.env] = true
		names = append(names, s.env)
	}
	for _, v := range otherVars {
		known[v] = true
	}
	var errs []error
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "BACKOFFICE_") || known[name] {
			continue
		}
		msg := "unknown variable"
		if guess := closest(name, names); guess != "" {
			msg += "; did you mean " + guess + "?"
		}
		errs = append(errs, &Error{Var: name, Msg: msg})
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}

// closest returns the name of names nearest to s, if at most 3 edits away.
func closest(s string, names []string) string {
	best, bestDist := "", 4
	for _, n := range names {
		if d := editDistance(s, n); d < bestDist {
			best, bestDist = n, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
