package customers

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// seed creates n customers: every 3rd tagged vip, every 2nd newsletter,
// languages sk, cs, pl, en in turn.
func seed(t *testing.T, s *Store, n int) []Customer {
	t.Helper()
	langs := []string{"sk", "cs", "pl", "en"}
	all := make([]Customer, n)
	for i := range n {
		c := Customer{ID: fmt.Sprintf("c-%05d", i), Email: fmt.Sprintf("c%d@example.sk", i), Language: langs[i%4]}
		if i%3 == 0 {
			c.Tags = append(c.Tags, "vip")
		}
		if i%2 == 0 {
			c.Tags = append(c.Tags, "newsletter")
		}
		all[i] = c
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				if _, err := s.Upsert(t.Context(), all[i]); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("seed: %v", err)
	}
	return all
}

func TestScan(t *testing.T) {
	t.Parallel()
	b := setup(t)
	all := seed(t, b.store, 3000)
	tests := []struct {
		name string
		q    Query
		keep func(Customer) bool
	}{
		{"everyone", Query{}, func(Customer) bool { return true }},
		{"vip", Query{Tags: []string{"VIP"}}, func(c Customer) bool { return slices.Contains(c.Tags, "vip") }},
		{"vip newsletter sk|cs", Query{Tags: []string{"vip", "newsletter"}, Languages: []string{"sk", "cs"}},
			func(c Customer) bool {
				return slices.Contains(c.Tags, "vip") && slices.Contains(c.Tags, "newsletter") && (c.Language == "sk" || c.Language == "cs")
			}},
		{"pl", Query{Languages: []string{"pl"}}, func(c Customer) bool { return c.Language == "pl" }},
		{"unknown tag", Query{Tags: []string{"nobody"}}, func(Customer) bool { return false }},
	}
	for _, tt := range tests {
		var want []string
		for _, c := range all {
			if tt.keep(c) {
				want = append(want, c.ID)
			}
		}
		seen := map[string]bool{}
		err := b.store.Scan(t.Context(), tt.q, func(c Customer) error {
			seen[c.ID] = true
			return nil
		})
		if err != nil {
			t.Fatalf("%s: Scan: %v", tt.name, err)
		}
		got := slices.Sorted(func(yield func(string) bool) {
			for id := range seen {
				if !yield(id) {
					return
				}
			}
		})
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: Scan ids (-want,+got):\n%s", tt.name, diff)
		}
	}
	stop := errors.New("stop")
	calls := 0
	err := b.store.Scan(t.Context(), Query{}, func(Customer) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("Scan with fn failing: %d calls, error %v; want 1 call and the error", calls, err)
	}
	if n, err := b.store.Count(t.Context()); err != nil || n != 3000 {
		t.Errorf("Count = %d, %v; want 3000", n, err)
	}
}
