package jobs

import (
	"strings"
	"testing"
)

// Decode takes exactly one JSON object: anything after it, a stray '}'
// or ']' included, is refused.
func TestDecodeRefusesTrailingData(t *testing.T) {
	t.Parallel()
	const ok = `{"import_id":"i1","path":"/data/c.csv"}`
	if _, err := Decode(KindCustomersImport, []byte(ok+" \n")); err != nil {
		t.Fatalf("Decode(%s) = %v", ok, err)
	}
	for _, tail := range []string{"}", "]", " {}", " x", ","} {
		if _, err := Decode(KindCustomersImport, []byte(ok+tail)); err == nil || !strings.Contains(err.Error(), "trailing data") {
			t.Errorf("Decode(%s%s) = %v, want trailing data", ok, tail, err)
		}
	}
}
