package customers

import (
	"fmt"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// NormalizePhone returns raw as an E.164 number (+421905123456). Numbers
// without an international prefix are read in Options.DefaultRegion. The
// error names the input.
func (s *Store) NormalizePhone(raw string) (string, error) {
	in := strings.TrimSpace(raw)
	switch {
	case in == "":
		return "", fmt.Errorf("phone number is empty")
	case len(in) > 64:
		return "", fmt.Errorf("phone number %.40q...: longer than 64 characters", in)
	}
	region := strings.ToUpper(s.region)
	if region == "" {
		if !strings.HasPrefix(in, "+") {
			return "", fmt.Errorf("phone number %q: needs an international prefix such as +421 (no default region is set)", in)
		}
		region = "ZZ"
	}
	num, err := phonenumbers.Parse(in, region)
	if err != nil {
		return "", fmt.Errorf("phone number %q: %w", in, err)
	}
	if !phonenumbers.IsValidNumber(num) {
		return "", fmt.Errorf("phone number %q: not a valid number", in)
	}
	if ext := num.GetExtension(); ext != "" {
		// E.164 has no extension: storing the number without it would
		// silently make it another line's.
		return "", fmt.Errorf("phone number %q: has an extension (%s); give the number of a line that takes SMS", in, ext)
	}
	return phonenumbers.Format(num, phonenumbers.E164), nil
}
