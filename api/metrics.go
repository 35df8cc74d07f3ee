package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the node's Prometheus series. Each Server has its own registry,
// so several nodes can run in one process (as tests do).
type metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	refresh  *prometheus.CounterVec
	apply    prometheus.Histogram
}

func (s *Server) newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rotor_http_requests_total",
			Help: "HTTP requests by route template, method and status code.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rotor_http_request_duration_seconds",
			Help:    "HTTP request latency by route template.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
		refresh: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rotor_refreshes_total",
			Help: "Refresh requests by outcome: rotated, replayed (grace window), reused (session revoked), revoked, expired, invalid, unavailable.",
		}, []string{"outcome"}),
		apply: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "rotor_raft_apply_duration_seconds",
			Help:    "Time from proposing a Raft entry to its result, on the leader.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1},
		}),
	}

	node, state := s.deps.Node, s.deps.State
	gauge := func(name, help string, value func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, value)
	}
	m.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.duration, m.refresh, m.apply,
		gauge("rotor_raft_leader", "1 while this node is the Raft leader, else 0.", func() float64 {
			return boolFloat(node.IsLeader())
		}),
		gauge("rotor_raft_commit_index", "Highest log index this node knows to be committed.", func() float64 {
			return float64(node.CommitIndex())
		}),
		gauge("rotor_raft_applied_index", "Index of the last entry applied to the state machine.", func() float64 {
			return float64(node.AppliedIndex())
		}),
		gauge("rotor_revocations", "Deny entries: revoked sessions whose access tokens have not all expired.", func() float64 {
			return float64(state.Revocations().Len())
		}),
		gauge("rotor_sessions", "Sessions held in memory, revoked ones included.", func() float64 {
			_, sessions := state.Counts()
			return float64(sessions)
		}),
		gauge("rotor_users", "User accounts.", func() float64 {
			users, _ := state.Counts()
			return float64(users)
		}),
		gauge("rotor_active_actors", "Session actors running on this node.", func() float64 {
			return float64(s.deps.Actors.Active())
		}),
		gauge("rotor_raft_staleness_seconds", "Time since this node last heard from the leader; 0 on the leader.", func() float64 {
			return s.staleness().Seconds()
		}),
	)
	if s.deps.Gossip != nil {
		m.registry.MustRegister(gauge("rotor_gossip_queue", "Revocation broadcasts waiting for gossip retransmission.", func() float64 {
			return float64(s.deps.Gossip.QueueLen())
		}))
	}
	return m
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// statusRecorder keeps the status code a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// instrument counts requests and their latency by route template, so ids in
// paths do not create a series each.
func (s *Server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route := "unmatched"
		if cur := mux.CurrentRoute(r); cur != nil {
			if tpl, err := cur.GetPathTemplate(); err == nil {
				route = tpl
			}
		}
		// Responses carry tokens and session data; a handler that serves
		// something cacheable (JWKS, metadata) overrides this.
		w.Header().Set("Cache-Control", "no-store")
		rec := &statusRecorder{ResponseWriter: w}
		start := time.Now()
		next.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		s.metrics.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
		s.metrics.requests.WithLabelValues(route, r.Method, strconv.Itoa(rec.status)).Inc()
	})
}

// metricsHandler serves the registry in the Prometheus text format.
func (s *Server) metricsHandler() http.Handler {
	return promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{})
}

// ObserveApply records the latency of one Raft apply.
func (s *Server) ObserveApply(d time.Duration) {
	s.metrics.apply.Observe(d.Seconds())
}

// refreshOutcome names the result of a refresh for rotor_refreshes_total.
func refreshOutcome(replayed bool, err error) string {
	if err == nil {
		if replayed {
			return "replayed"
		}
		return "rotated"
	}
	e, ok := err.(*Error)
	if !ok {
		return "unavailable"
	}
	switch e.Code {
	case CodeRefreshReused:
		return "reused"
	case CodeSessionRevoked:
		return "revoked"
	case CodeSessionExpired:
		return "expired"
	case CodeRefreshInvalid, CodeNotFound:
		return "invalid"
	}
	return "unavailable"
}
