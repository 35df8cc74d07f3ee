package main

import (
	"context"
	"errors"
	"math"
	"math/bits"
	"net"
	"time"
)

// The latency histogram is log-linear, in the manner of HdrHistogram: values
// below 128 ns have a bucket each, and every power of two above that is split
// into 64 buckets. A bucket is therefore at most 1/64 (1.6%) of its lower
// bound wide, and a quantile read from it is off by at most that much.
const (
	histogramLinear  = 128
	histogramPerOct  = 64
	histogramBuckets = histogramLinear + 56*histogramPerOct // covers every positive int64
)

// histogram counts durations in nanoseconds with a fixed 29 KiB of memory,
// however many values it records.
type histogram struct {
	counts   [histogramBuckets]uint64
	total    uint64
	sum      float64
	min, max int64
}

// bucketIndex returns the bucket of a value in nanoseconds.
func bucketIndex(v int64) int {
	if v < histogramLinear {
		return int(max(v, 0))
	}
	u := uint64(v)
	shift := bits.Len64(u) - 7 // keeps the top 7 bits, a mantissa in [64, 127]
	return histogramLinear + (shift-1)*histogramPerOct + int(u>>shift) - histogramPerOct
}

// bucketUpper returns the largest value that falls into bucket i.
func bucketUpper(i int) int64 {
	if i < histogramLinear {
		return int64(i)
	}
	shift := (i-histogramLinear)/histogramPerOct + 1
	mantissa := (i-histogramLinear)%histogramPerOct + histogramPerOct
	return int64(uint64(mantissa+1)<<shift - 1)
}

func (h *histogram) record(d time.Duration) {
	v := max(int64(d), 0)
	h.counts[bucketIndex(v)]++
	if h.total == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.total++
	h.sum += float64(v)
}

func (h *histogram) merge(o *histogram) {
	if o.total == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.total == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.total += o.total
	h.sum += o.sum
}

// quantile returns the value at quantile q (0 < q ≤ 1): the upper bound of
// the bucket that holds the ceil(q·n)-th smallest value, clamped to the
// recorded minimum and maximum. It returns 0 for an empty histogram.
func (h *histogram) quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	rank = min(max(rank, 1), h.total)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(max(bucketUpper(i), h.min), h.max))
		}
	}
	return time.Duration(h.max)
}

func (h *histogram) mean() time.Duration {
	if h.total == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.total))
}

// opStats collects the results of one kind of operation in one worker. An
// operation is one logical request. A refresh that got 503 and was retried
// is still one operation, but each HTTP response counts in status and codes.
// Methods on a nil *opStats do nothing, so warm-up runs the same code and
// records nothing.
type opStats struct {
	requests int64 // operations finished, successful or not
	errors   int64 // operations that failed
	retried  int64 // 503 responses that were retried with the same request
	latency  histogram
	status   map[int]int64    // every HTTP response by status code
	codes    map[string]int64 // every non-2xx response and client failure by error code
}

func newOpStats() *opStats {
	return &opStats{status: map[int]int64{}, codes: map[string]int64{}}
}

// response counts one HTTP response. code is the problem document's code,
// empty for a success.
func (s *opStats) response(status int, code string) {
	if s == nil {
		return
	}
	s.status[status]++
	if status < 200 || status > 299 {
		if code == "" {
			code = "none"
		}
		s.codes[code]++
	}
}

// failure counts a request that got no HTTP response. A request canceled
// because the run was interrupted is not counted.
func (s *opStats) failure(err error) {
	if s == nil || errors.Is(err, context.Canceled) {
		return
	}
	s.codes[clientErrorCode(err)]++
}

func (s *opStats) retry() {
	if s != nil {
		s.retried++
	}
}

// finish records the outcome and latency of one operation.
func (s *opStats) finish(latency time.Duration, ok bool) {
	if s == nil {
		return
	}
	s.requests++
	if !ok {
		s.errors++
	}
	s.latency.record(latency)
}

func (s *opStats) merge(o *opStats) {
	s.requests += o.requests
	s.errors += o.errors
	s.retried += o.retried
	s.latency.merge(&o.latency)
	for k, v := range o.status {
		s.status[k] += v
	}
	for k, v := range o.codes {
		s.codes[k] += v
	}
}

// clientErrorCode names a failure that produced no HTTP response. None of
// Rotor's error codes starts with "client_", so the two cannot be confused.
func clientErrorCode(err error) string {
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "client_timeout"
	default:
		return "client_transport_error"
	}
}
