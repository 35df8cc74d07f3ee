package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHistogramBucketsCoverValues(t *testing.T) {
	values := []int64{0, 1, 127, 128, 129, 130, 255, 256, 259, 260, 1000, 1e6, 1e9, 1<<62 + 12345, 1<<63 - 1}
	for _, v := range values {
		i := bucketIndex(v)
		if i < 0 || i >= histogramBuckets {
			t.Fatalf("bucketIndex(%d) = %d, outside [0, %d)", v, i, histogramBuckets)
		}
		if upper := bucketUpper(i); upper < v {
			t.Errorf("bucketUpper(bucketIndex(%d)) = %d, below the value", v, upper)
		}
		if i > 0 && bucketUpper(i-1) >= v {
			t.Errorf("value %d also fits bucket %d with upper bound %d", v, i-1, bucketUpper(i-1))
		}
	}
}

func TestHistogramQuantilesMatchSortedSamples(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var h histogram
	samples := make([]time.Duration, 100_000)
	for i := range samples {
		// Log-uniform from 10µs to 1s, like request latencies.
		samples[i] = time.Duration(10_000 * math.Pow(100_000, rng.Float64()))
		h.record(samples[i])
	}
	slices.Sort(samples)

	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
		exact := samples[int(q*float64(len(samples)))-1]
		got := h.quantile(q)
		if got < exact || float64(got) > float64(exact)*(1+1.0/64) {
			t.Errorf("quantile(%g): got %s, want %s to 1/64 above it", q, got, exact)
		}
	}
	if got := h.quantile(1); got != samples[len(samples)-1] {
		t.Errorf("quantile(1): got %s, want the max %s", got, samples[len(samples)-1])
	}
}

func TestHistogramMergeAddsCounts(t *testing.T) {
	var a, b histogram
	a.record(time.Millisecond)
	b.record(3 * time.Millisecond)
	b.record(2 * time.Millisecond)
	a.merge(&b)
	if a.total != 3 {
		t.Errorf("total: got %d, want 3", a.total)
	}
	if a.min != int64(time.Millisecond) || a.max != int64(3*time.Millisecond) {
		t.Errorf("min, max: got %d, %d, want 1ms, 3ms", a.min, a.max)
	}
	if got := a.mean(); got != 2*time.Millisecond {
		t.Errorf("mean: got %s, want 2ms", got)
	}
}

func TestHistogramEmptyReturnsZero(t *testing.T) {
	var h histogram
	if got := h.quantile(0.99); got != 0 {
		t.Errorf("quantile of empty histogram: got %s, want 0", got)
	}
}
