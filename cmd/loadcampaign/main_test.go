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
