package campaigns

import (
	"testing"
	"time"
)

func TestQuietHoursHoldUntil(t *testing.T) {
	t.Parallel()
	ba, err := time.LoadLocation("Europe/Bratislava")
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, ba)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		window string
		now    time.Time
		want   time.Time
	}{
		{"21:00-08:00", at("2026-11-23 22:30"), at("2026-11-24 08:00")},
		{"21:00-08:00", at("2026-11-23 07:59"), at("2026-11-23 08:00")},
		{"21:00-08:00", at("2026-11-23 08:00"), time.Time{}},
		{"21:00-08:00", at("2026-11-23 20:59"), time.Time{}},
		{"21:00-08:00", at("2026-11-23 21:00"), at("2026-11-24 08:00")},
		{"12:00-13:30", at("2026-11-23 12:10"), at("2026-11-23 13:30")},
		{"12:00-13:30", at("2026-11-23 13:30"), time.Time{}},
		// the night the clocks go back: the window ends at 08:00 local
		{"21:00-08:00", at("2026-10-24 23:00"), at("2026-10-25 08:00")},
		{"", at("2026-11-23 23:00"), time.Time{}},
	}
	for _, tt := range tests {
		q, err := parseQuiet(tt.window)
		if err != nil {
			t.Fatal(err)
		}
		if got := q.holdUntil(tt.now.UTC(), ba); !got.Equal(tt.want) {
			t.Errorf("%q at %s: hold until %s, want %s", tt.window, tt.now, got, tt.want)
		}
	}
}
