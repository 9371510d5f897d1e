package main

import (
	"context"
	"os"
	"testing"
)

// TestMain lets the test binary stand in for loadcampaign as the baseline's
// sender process (runSenderProcess starts os.Executable()).
func TestMain(m *testing.M) {
	if len(os.Args) == 2 && os.Args[1] == senderArg {
		os.Exit(senderMain(context.Background(), os.Stdin, os.Stdout))
	}
	os.Exit(m.Run())
}

func TestCommandStatsPerMessage(t *testing.T) {
	before := parseCommandStats("# Commandstats\r\ncmdstat_evalsha:calls=10,usec=50,usec_per_call=5.00\r\ncmdstat_get:calls=4,usec=4\r\n")
	after := parseCommandStats("# Commandstats\r\ncmdstat_evalsha:calls=210,usec=950\r\ncmdstat_get:calls=4,usec=4\r\n" +
		"cmdstat_hmget:calls=54,usec=100\r\ncmdstat_info:calls=9,usec=1\r\ncmdstat_sadd:calls=14\r\n")
	if got, want := after.perMessage(before, 100), "2.68 (evalsha 2.00, hmget 0.54, sadd 0.14); time: evalsha 9.0 µs, hmget 1.0 µs, sadd 0.0 µs"; got != want {
		t.Errorf("perMessage = %q, want %q", got, want)
	}
}
