package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// load is the CPU the rest of the machine used during one measurement, in
// core-seconds: the broker, ClickHouse, and everything else (this harness and
// whatever else runs on the machine) besides the measured consumer.
type load struct{ kafka, clickhouse, other float64 }

// cpuSnap is a reading of the machine's and the servers' CPU counters.
type cpuSnap struct {
	at                       time.Time
	machine, kafka, ch, self float64
}

// servers are the pids of the broker and ClickHouse, found once by command line (0: not found).
var servers struct {
	once      sync.Once
	kafka, ch int
}

func findServers() {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		switch {
		case slices.Contains(args, "kafka.Kafka") && servers.kafka == 0:
			servers.kafka = pid
		case strings.HasSuffix(args[0], "clickhouse-server") && servers.ch == 0:
			servers.ch = pid
		}
	}
}

func snapCPU() cpuSnap {
	servers.once.Do(findServers)
	s := cpuSnap{at: time.Now()}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
		for i, v := range f[1:] {
			if i == 3 || i == 4 || i >= 8 { // idle, iowait; guest time is already in user
				continue
			}
			x, _ := strconv.ParseFloat(v, 64)
			s.machine += x / 100
		}
	}
	if servers.kafka != 0 {
		s.kafka, _ = procCPU(servers.kafka)
	}
	if servers.ch != 0 {
		s.ch, _ = procCPU(servers.ch)
	}
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	s.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	return s
}

// waitQuiet waits, up to o.quietWait, until the processes other than the
// broker, ClickHouse and this harness use under a third of a core.
func waitQuiet(ctx context.Context, o options) {
	if o.quietWait <= 0 {
		return
	}
	deadline := time.Now().Add(o.quietWait)
	noted := false
	for {
		s0 := snapCPU()
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		s1 := snapCPU()
		other := (s1.machine - s0.machine) - (s1.kafka - s0.kafka) - (s1.ch - s0.ch) - (s1.self - s0.self)
		cores := other / s1.at.Sub(s0.at).Seconds()
		switch {
		case cores < 1.0/3:
			return
		case time.Now().After(deadline):
			fmt.Printf("  NOTE: other processes keep %.1f cores busy; measuring anyway (see \"other s\" below)\n", cores)
			return
		case !noted:
			fmt.Fprintf(os.Stderr, "benchingest: other processes use %.1f cores; waiting up to %s for them to settle\n", cores, o.quietWait)
			noted = true
		}
	}
}

// contended marks a run during which other processes used over a third of a core.
func contended(r result) string {
	if r.load.other > r.seconds/3 {
		return " *contended"
	}
	return ""
}

// since is the load between s0 and s1 of a measurement whose consumer used consumerCPU.
func since(s0, s1 cpuSnap, consumerCPU float64) load {
	l := load{kafka: s1.kafka - s0.kafka, clickhouse: s1.ch - s0.ch}
	l.other = max(0, (s1.machine-s0.machine)-consumerCPU-l.kafka-l.clickhouse)
	return l
}

// procStatus returns VmRSS and VmHWM of pid in MB.
func procStatus(pid int) (rss, hwm float64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb / 1024
		case "VmHWM:":
			hwm = kb / 1024
		}
	}
	return rss, hwm, nil
}

// procCPU returns the user + system CPU seconds pid has used.
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command (in parentheses, may hold spaces): utime is the 14th field.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: short", pid)
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100, nil // USER_HZ is 100 on Linux
}
