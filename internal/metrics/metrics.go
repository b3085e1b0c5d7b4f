// Package metrics is kycgate's Prometheus registry: the Go runtime, the
// process, the database pools, the HTTP routes and the domain's events. It
// is the one package that knows Prometheus; the domain reports to it through
// kyc.Observer, the HTTP layer through httpapi.Recorder.
//
// No label carries a tenant, person, address or raw path: every label value
// comes from a fixed list (route patterns, methods, status codes, reasons),
// so the number of series is bounded whatever clients send.
package metrics

import (
	"database/sql"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kycgate/kycgate/internal/kyc"
)

// Metrics holds the registry and kycgate's own collectors. It implements
// kyc.Observer and httpapi.Recorder.
type Metrics struct {
	reg *prometheus.Registry

	requests *prometheus.CounterVec   // route, method, code
	latency  *prometheus.HistogramVec // route, method, status (class)
	// series caches each (route, method, code)'s two series: one map
	// lookup per request instead of two label hashings and vector lookups.
	series sync.Map // reqKey → reqSeries

	codesSent, codesFailed, codesVerified prometheus.Counter
	codesRefused                          *prometheus.CounterVec // reason
	sessions                              *prometheus.CounterVec // kind
	quotaRefused                          prometheus.Counter
	webhooks                              *prometheus.CounterVec // result
	providerErrors                        *prometheus.CounterVec // op
	reconcileLag, reconcileRun            prometheus.Gauge
}

// The Didit webhook results, for Recorder.Webhook.
const (
	WebhookAccepted     = "accepted"
	WebhookBadSignature = "bad_signature"
	WebhookTooLarge     = "too_large"
	WebhookBusy         = "busy"
	WebhookIgnored      = "ignored"
	WebhookInvalid      = "invalid" // signed, but not a body we can read
	WebhookFailed       = "failed"  // our own failure applying it (5xx, Didit retries)
)

// sessionKinds names kyc's create outcomes as operators say them.
var sessionKinds = map[string]string{
	kyc.CreateNew:      "new",
	kyc.CreateExisting: "resumed",
	kyc.CreateApproved: "already_approved",
}

// New registers the runtime, process and database-pool collectors (pools
// by name, see store.DB.Pools) and kycgate's own.
func New(pools map[string]*sql.DB) *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for name, db := range pools {
		reg.MustRegister(collectors.NewDBStatsCollector(db, name))
	}
	f := factory{reg}
	m := &Metrics{reg: reg,
		requests: f.counterVec("kycgate_http_requests_total", "HTTP requests answered, by route pattern, method and status code.", "route", "method", "code"),
		latency: f.histogramVec("kycgate_http_request_duration_seconds",
			"HTTP request latency by route pattern, method and status class (2xx, 4xx, 5xx…).", "route", "method", "status"),
		codesSent:     f.counter("kycgate_codes_sent_total", "Verification codes the mail server accepted (or took without a verdict)."),
		codesFailed:   f.counter("kycgate_codes_send_failed_total", "Verification codes whose mail was not delivered; the code was dropped."),
		codesVerified: f.counter("kycgate_codes_verified_total", "Verification codes that proved an address or a wallet's link."),
		codesRefused: f.counterVec("kycgate_codes_refused_total",
			"Code sends and checks refused, by reason: invalid, expired, max_attempts, rate_limited.", "reason"),
		sessions: f.counterVec("kycgate_sessions_created_total",
			"KYC session creates answered, by kind: new, resumed, already_approved.", "kind"),
		quotaRefused: f.counter("kycgate_quota_refusals_total", "KYC session creates refused for the tenant's monthly quota."),
		webhooks: f.counterVec("kycgate_didit_webhooks_total",
			"Didit webhook deliveries received, by result.", "result"),
		providerErrors: f.counterVec("kycgate_didit_api_errors_total",
			"Didit API calls that failed after their retries, by operation: create, decision.", "op"),
		reconcileLag: f.gauge("kycgate_reconcile_lag_seconds",
			"How long past its poll time the oldest watched session waited when the last reconcile pass began; 0 when none was due."),
		reconcileRun: f.gauge("kycgate_reconcile_last_run_timestamp_seconds", "When the last reconcile pass began (Unix time)."),
	}
	// Every fixed label value exists from the start, so rate() and the
	// dashboard see a 0 before the first event, not an absent series.
	for _, r := range []string{kyc.RefusedInvalid, kyc.RefusedExpired, kyc.RefusedMaxAttempts, kyc.RefusedRateLimited} {
		m.codesRefused.WithLabelValues(r)
	}
	for _, k := range sessionKinds {
		m.sessions.WithLabelValues(k)
	}
	for _, r := range []string{WebhookAccepted, WebhookBadSignature, WebhookTooLarge, WebhookBusy, WebhookIgnored, WebhookInvalid, WebhookFailed} {
		m.webhooks.WithLabelValues(r)
	}
	for _, op := range []string{kyc.ProviderOpCreate, kyc.ProviderOpDecision, kyc.ProviderOpDelete} {
		m.providerErrors.WithLabelValues(op)
	}
	return m
}

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry is the registry, for collectors registered elsewhere.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// codeLabels are the status codes' label values, made once: the request
// path must not format an integer per request.
var codeLabels, classLabels = func() (codes, classes [600]string) {
	for c := range codes {
		codes[c] = strconv.Itoa(c)
		classes[c] = strconv.Itoa(c/100) + "xx"
	}
	return
}()

type reqKey struct {
	route, method string
	code          int
}

type reqSeries struct {
	count   prometheus.Counter
	latency prometheus.Observer
}

// ObserveRequest counts an answered request. route is a pattern (or
// "unmatched"), method already bounded by the caller: the cache is as
// bounded as the series.
func (m *Metrics) ObserveRequest(route, method string, code int, took time.Duration) {
	if code < 0 || code >= len(codeLabels) {
		code = 0
	}
	k := reqKey{route, method, code}
	v, ok := m.series.Load(k)
	if !ok {
		v, _ = m.series.LoadOrStore(k, reqSeries{
			count:   m.requests.WithLabelValues(route, method, codeLabels[code]),
			latency: m.latency.WithLabelValues(route, method, classLabels[code]),
		})
	}
	s := v.(reqSeries)
	s.count.Inc()
	s.latency.Observe(took.Seconds())
}

// Webhook counts a Didit webhook delivery by its result (Webhook*).
func (m *Metrics) Webhook(result string) { m.webhooks.WithLabelValues(result).Inc() }

func (m *Metrics) CodeSent()                 { m.codesSent.Inc() }
func (m *Metrics) CodeSendFailed()           { m.codesFailed.Inc() }
func (m *Metrics) CodeVerified()             { m.codesVerified.Inc() }
func (m *Metrics) CodeRefused(reason string) { m.codesRefused.WithLabelValues(reason).Inc() }
func (m *Metrics) QuotaRefused()             { m.quotaRefused.Inc() }
func (m *Metrics) ProviderError(op string)   { m.providerErrors.WithLabelValues(op).Inc() }

func (m *Metrics) SessionCreated(kind string) {
	if k, ok := sessionKinds[kind]; ok {
		m.sessions.WithLabelValues(k).Inc()
	}
}

func (m *Metrics) ReconcileLag(lag time.Duration) {
	m.reconcileLag.Set(lag.Seconds())
	m.reconcileRun.SetToCurrentTime()
}

var _ kyc.Observer = (*Metrics)(nil)

// factory registers what it makes.
type factory struct{ reg *prometheus.Registry }

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	f.reg.MustRegister(c)
	return c
}

func (f factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	f.reg.MustRegister(c)
	return c
}

func (f factory) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	f.reg.MustRegister(g)
	return g
}

// latencyBuckets are the hand-written exposition's, kept so dashboards
// built on them still line up.
var latencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

func (f factory) histogramVec(name, help string, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: latencyBuckets}, labels)
	f.reg.MustRegister(h)
	return h
}
