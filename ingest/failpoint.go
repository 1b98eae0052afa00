package ingest

import (
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

// Failpoints let the crash tests SIGKILL an ingest process at exact points of
// its write path, where random kills rarely land. GAPWATCH_FAILPOINT=NAME:N
// kills the process the Nth time it passes NAME. Unset, they cost one atomic load.
const (
	failBeforeWrite = "before-write" // a batch is taken, its dead letters published, counts not stored
	failAfterWrite  = "after-write"  // counts and offsets stored, Kafka commit not done
)

var failpoint = parseFailpoint(os.Getenv("GAPWATCH_FAILPOINT"))

type failpointSpec struct {
	name  string
	after int64
	seen  atomic.Int64
}

func parseFailpoint(s string) *failpointSpec {
	name, n, ok := strings.Cut(s, ":")
	after, err := strconv.ParseInt(n, 10, 64)
	if !ok || err != nil || after < 1 {
		return nil
	}
	return &failpointSpec{name: name, after: after}
}

func hitFailpoint(name string) {
	if f := failpoint; f != nil && f.name == name && f.seen.Add(1) == f.after {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}
