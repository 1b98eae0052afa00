package main

import (
	"os"
	"testing"
)

// TestMain lets the test binary stand in for the gapwatch binary: with
// GAPWATCH_TEST_AS_MAIN=1 it runs the command line it was given, so tests can
// start (and SIGKILL) real gapwatch processes.
func TestMain(m *testing.M) {
	if os.Getenv("GAPWATCH_TEST_AS_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}
