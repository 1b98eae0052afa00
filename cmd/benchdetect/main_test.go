package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Only rows at which every series recorded nothing, three or more in a row
// with no row missing between them, are the collector's outage: one series'
// quiet run, two shared empty rows, or empty rows either side of a missing
// one, are not.
func TestCollectorOutages(t *testing.T) {
	const w = 300
	ts := []int64{0, w, 2 * w, 3 * w, 4 * w, 5 * w, 6 * w, 7 * w, 8 * w, 9 * w, 10 * w}
	busy := []uint64{5, 0, 0, 0, 0, 7, 0, 0, 6, 0, 0}
	quiet := []uint64{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3}
	require.Equal(t, [][2]int64{{0, 6 * w}}, collectorOutages([][]int64{ts, ts}, [][]uint64{busy, quiet}))
	require.Empty(t, collectorOutages([][]int64{ts}, [][]uint64{{1, 1, 0, 0, 1, 0, 0, 1, 1, 1, 1}}))
	require.Equal(t, [][2]int64{{0, 6 * w}}, collectorOutages([][]int64{ts, ts}, [][]uint64{quiet, busy}), "the second series sends")
	gappy := []int64{0, w, 2 * w, 4 * w, 5 * w}
	require.Empty(t, collectorOutages([][]int64{gappy}, [][]uint64{{1, 0, 0, 0, 1}}), "a missing row splits the run")
}
