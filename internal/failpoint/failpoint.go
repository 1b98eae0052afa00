// Package failpoint lets crash tests SIGKILL a gapwatch process at exact points
// of its write paths, where random kills rarely land. GAPWATCH_FAILPOINT=NAME:N
// kills the process the Nth time it passes NAME. Unset, a check costs one load.
package failpoint

import (
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

type spec struct {
	name  string
	after int64
	seen  atomic.Int64
}

var active = parse(os.Getenv("GAPWATCH_FAILPOINT"))

func parse(s string) *spec {
	name, n, ok := strings.Cut(s, ":")
	after, err := strconv.ParseInt(n, 10, 64)
	if !ok || err != nil || after < 1 {
		return nil
	}
	return &spec{name: name, after: after}
}

// Armed reports whether the next Hit of name kills the process.
func Armed(name string) bool {
	f := active
	return f != nil && f.name == name && f.seen.Load()+1 == f.after
}

// Hit counts a pass of name and kills the process on the configured pass.
func Hit(name string) {
	if f := active; f != nil && f.name == name && f.seen.Add(1) == f.after {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}
