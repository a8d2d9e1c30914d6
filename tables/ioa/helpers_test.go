package ioa_test

import (
	"strconv"

	"github.com/quarry-sec/quarry/detections"
)

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func countLow(rs []*detections.Rule) int64 {
	var n int64
	for _, r := range rs {
		if r.Severity == detections.SeverityLow {
			n++
		}
	}
	return n
}
