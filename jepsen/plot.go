package main

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// chart is a small PNG plot: time in seconds on x, a linear or logarithmic
// scale on y, shaded fault windows, points and lines.
type chart struct {
	img                      *image.RGBA
	left, right, top, bottom int // plot area in pixels
	xmax                     float64
	ymin, ymax               float64
	logY                     bool
	legendY                  int
}

// Colours of the plots.
var (
	colWhite  = color.RGBA{255, 255, 255, 255}
	colBlack  = color.RGBA{0, 0, 0, 255}
	colGrid   = color.RGBA{225, 225, 225, 255}
	colFault  = color.RGBA{255, 215, 215, 255}
	colOK     = color.RGBA{40, 150, 60, 255}
	colFail   = color.RGBA{50, 90, 200, 255}
	colInfo   = color.RGBA{220, 60, 40, 255}
	colOther  = color.RGBA{150, 110, 30, 255}
	colPurple = color.RGBA{130, 60, 170, 255}
)

const chartWidth, chartHeight = 1000, 420

func newChart(title, ylabel string, xmax, ymin, ymax float64, logY bool) *chart {
	c := &chart{
		img:  image.NewRGBA(image.Rect(0, 0, chartWidth, chartHeight)),
		left: 70, right: chartWidth - 160, top: 30, bottom: chartHeight - 40,
		xmax: math.Max(xmax, 1), ymin: ymin, ymax: ymax, logY: logY,
	}
	draw.Draw(c.img, c.img.Bounds(), image.NewUniform(colWhite), image.Point{}, draw.Src)
	c.text(c.left, 18, title, colBlack)
	c.text(c.left, chartHeight-8, "seconds since the start of the run", colBlack)
	c.text(4, c.top-6, ylabel, colBlack)
	c.legendY = c.top + 10
	return c
}

func (c *chart) px(x float64) int {
	return c.left + int(x/c.xmax*float64(c.right-c.left))
}

func (c *chart) py(y float64) int {
	lo, hi := c.ymin, c.ymax
	if c.logY {
		y, lo, hi = math.Log10(math.Max(y, c.ymin)), math.Log10(lo), math.Log10(hi)
	}
	f := (y - lo) / (hi - lo)
	f = math.Min(math.Max(f, 0), 1)
	return c.bottom - int(f*float64(c.bottom-c.top))
}

// axes draws the grid, tick labels and frame.
func (c *chart) axes() {
	step := niceStep(c.xmax / 10)
	for x := 0.0; x <= c.xmax; x += step {
		c.vline(c.px(x), c.top, c.bottom, colGrid)
		c.text(c.px(x)-6, c.bottom+14, trimFloat(x), colBlack)
	}
	for _, y := range c.yTicks() {
		c.hline(c.left, c.right, c.py(y), colGrid)
		c.text(8, c.py(y)+4, trimFloat(y), colBlack)
	}
	c.hline(c.left, c.right, c.bottom, colBlack)
	c.hline(c.left, c.right, c.top, colBlack)
	c.vline(c.left, c.top, c.bottom, colBlack)
	c.vline(c.right, c.top, c.bottom, colBlack)
}

func (c *chart) yTicks() []float64 {
	var ticks []float64
	if c.logY {
		for y := c.ymin; y <= c.ymax*1.0001; y *= 10 {
			ticks = append(ticks, y)
		}
		return ticks
	}
	step := niceStep((c.ymax - c.ymin) / 6)
	for y := c.ymin; y <= c.ymax*1.0001; y += step {
		ticks = append(ticks, y)
	}
	return ticks
}

// niceStep rounds raw up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

func trimFloat(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2g", v)
}

// shade fills a fault window and labels it with its number.
func (c *chart) shade(x0, x1 float64, label string) {
	r := image.Rect(c.px(x0), c.top+1, max(c.px(x1), c.px(x0)+1), c.bottom)
	draw.Draw(c.img, r, image.NewUniform(colFault), image.Point{}, draw.Src)
	c.text(r.Min.X+2, c.top+12, label, colInfo)
}

// point draws a 3x3 dot.
func (c *chart) point(x, y float64, col color.RGBA) {
	px, py := c.px(x), c.py(y)
	for dx := -1; dx <= 1; dx++ {
		for dy := -1; dy <= 1; dy++ {
			c.img.SetRGBA(px+dx, py+dy, col)
		}
	}
}

// line joins the points (xs[i], ys[i]).
func (c *chart) line(xs, ys []float64, col color.RGBA) {
	for i := 1; i < len(xs); i++ {
		c.segment(c.px(xs[i-1]), c.py(ys[i-1]), c.px(xs[i]), c.py(ys[i]), col)
	}
}

func (c *chart) segment(x0, y0, x1, y1 int, col color.RGBA) {
	steps := max(abs(x1-x0), abs(y1-y0), 1)
	for i := 0; i <= steps; i++ {
		x := x0 + (x1-x0)*i/steps
		y := y0 + (y1-y0)*i/steps
		c.img.SetRGBA(x, y, col)
		c.img.SetRGBA(x, y+1, col)
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func (c *chart) hline(x0, x1, y int, col color.RGBA) {
	for x := x0; x <= x1; x++ {
		c.img.SetRGBA(x, y, col)
	}
}

func (c *chart) vline(x, y0, y1 int, col color.RGBA) {
	for y := y0; y <= y1; y++ {
		c.img.SetRGBA(x, y, col)
	}
}

// legend adds one entry to the right of the plot area.
func (c *chart) legend(label string, col color.RGBA) {
	x := c.right + 12
	r := image.Rect(x, c.legendY-8, x+10, c.legendY+2)
	draw.Draw(c.img, r, image.NewUniform(col), image.Point{}, draw.Src)
	c.text(x+16, c.legendY+2, label, colBlack)
	c.legendY += 18
}

func (c *chart) text(x, y int, s string, col color.RGBA) {
	d := font.Drawer{Dst: c.img, Src: image.NewUniform(col), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

func (c *chart) save(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, c.img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// plotRun writes latency.png and throughput.png for the history: every
// client operation's latency over time by outcome, and completed
// operations per second by kind, with the fault windows shaded and
// numbered as in the results.
func plotRun(history []Event, latencyPath, throughputPath string) error {
	ops, err := PairOps(history)
	if err != nil {
		return err
	}
	windows := faultWindows(ops)
	var end float64
	for _, e := range history {
		end = math.Max(end, float64(e.Time)/1e9)
	}
	shadeAll := func(c *chart) {
		for i, w := range windows {
			stop := float64(w.end) / 1e9
			if w.end == math.MaxInt64 {
				stop = end
			}
			c.shade(float64(w.start)/1e9, stop, fmt.Sprintf("F%d", i+1))
		}
	}

	lat := newChart("Latency of each operation (log scale), fault windows shaded", "ms", end, 0.1, 10000, true)
	shadeAll(lat)
	lat.axes()
	counts := make(map[string][]float64) // series -> completions per second
	seconds := int(end) + 1
	series := []struct {
		name string
		col  color.RGBA
	}{{"refresh ok", colOK}, {"validate ok", colPurple}, {"login ok", colOther}, {"fail", colFail}, {"info", colInfo}}
	for _, s := range series {
		counts[s.name] = make([]float64, seconds)
	}
	for _, op := range ops {
		if op.F() == opNemesis || op.F() == opReadSession || op.Open {
			continue
		}
		col, key := colOK, op.F()+" ok"
		switch op.Type() {
		case typeFail:
			col, key = colFail, "fail"
		case typeInfo:
			col, key = colInfo, "info"
		}
		at := float64(op.Completion.Time) / 1e9
		lat.point(float64(op.CallTime())/1e9, float64(op.Completion.Latency)/1e6, col)
		if c, ok := counts[key]; ok && int(at) < seconds {
			c[int(at)]++
		}
	}
	lat.legend("ok", colOK)
	lat.legend("fail (4xx)", colFail)
	lat.legend("info (timeout, 503)", colInfo)
	lat.legend("fault window", colFault)
	if err := lat.save(latencyPath); err != nil {
		return err
	}

	peak := 1.0
	for _, c := range counts {
		for _, v := range c {
			peak = math.Max(peak, v)
		}
	}
	tp := newChart("Completed operations per second, fault windows shaded", "ops/s", end, 0, niceStep(peak/6)*6, false)
	shadeAll(tp)
	tp.axes()
	xs := make([]float64, seconds)
	for i := range xs {
		xs[i] = float64(i) + 0.5
	}
	for _, s := range series {
		tp.line(xs, counts[s.name], s.col)
		tp.legend(s.name, s.col)
	}
	tp.legend("fault window", colFault)
	return tp.save(throughputPath)
}
