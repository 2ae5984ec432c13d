//! `GET /metrics`: what the server is doing, in Prometheus' text format.
//! Counters are updated where things happen (the router, the consent
//! groups, the pool); this module only defines them and renders them.
//! get_project_config, the hot path, uses handles resolved once, so
//! counting it is two atomic adds and one histogram observation.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

pub use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub rpc: &'static str,
    /// "success", a BOINC error number ("-138"), or "unknown" (HTTP 503:
    /// a COMMIT whose fate could not be learnt).
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabel {
    pub rpc: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConsentLabels {
    /// "grouped" or "alone".
    pub path: &'static str,
    /// Whether a consent row was appended ("false": the flag already was
    /// the latest one, or the type is disabled or unknown).
    pub recorded: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms .. ~16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<RpcLabel, Histogram, fn() -> Histogram>,
    pub consent_changes: Family<ConsentLabels, Counter>,
    /// Requests per consent group (each COMMIT).
    pub group_sizes: Histogram,
    /// Requests refused by a per-client limit, by limit.
    pub limit_refusals: Family<KindLabel, Counter>,
    /// Time waited for a pooled database connection.
    pub pool_waits: Histogram,
    /// Database trouble by kind (pool timeout, connect error).
    pub db_errors: Family<KindLabel, Counter>,
    /// Attempts that found their account's row busy and tried again.
    pub busy_retries: Counter,
    gpc_requests: Counter,
    gpc_latency: Histogram,
    /// Off (`rpc_metrics` 0): requests are not counted and nothing is
    /// rendered. The counters the server itself waits on (busy retries,
    /// group sizes) keep counting either way.
    enabled: bool,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(true)
    }
}

impl Metrics {
    pub fn new(enabled: bool) -> Self {
        let mut registry = Registry::with_prefix("boinc_rpc");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "RPC requests answered, by RPC and outcome",
            requests.clone(),
        );
        let latency: Family<RpcLabel, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "request_duration_seconds",
            "Time from a request's arrival to its reply, by RPC",
            latency.clone(),
        );
        let consent_changes = Family::<ConsentLabels, Counter>::default();
        registry.register(
            "consent_changes",
            "am_set_info consent changes applied, by path and whether a row was appended",
            consent_changes.clone(),
        );
        let group_sizes = Histogram::new([1.0, 2.0, 4.0, 8.0, 16.0, 32.0]);
        registry.register(
            "consent_group_size",
            "Consent changes committed per group",
            group_sizes.clone(),
        );
        let limit_refusals = Family::<KindLabel, Counter>::default();
        registry.register(
            "limit_refusals",
            "Requests refused by a per-client limit, by limit",
            limit_refusals.clone(),
        );
        let pool_waits = Histogram::new(exponential_buckets(0.0001, 4.0, 9));
        registry.register(
            "db_pool_wait_seconds",
            "Time waited for a pooled database connection",
            pool_waits.clone(),
        );
        let db_errors = Family::<KindLabel, Counter>::default();
        registry.register(
            "db_errors",
            "Database connections that could not be had, by kind",
            db_errors.clone(),
        );
        let busy_retries = Counter::default();
        registry.register(
            "busy_retries",
            "Attempts that found their account's row held elsewhere and tried again",
            busy_retries.clone(),
        );
        registry.register(
            "build",
            "This boinc-rpc's version",
            Info::new(BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            }),
        );
        let gpc = RpcLabel {
            rpc: "get_project_config",
        };
        let gpc_requests = requests
            .get_or_create(&RequestLabels {
                rpc: gpc.rpc,
                outcome: "success".into(),
            })
            .clone();
        let gpc_latency = latency.get_or_create(&gpc).clone();
        Self {
            registry,
            requests,
            latency,
            consent_changes,
            group_sizes,
            limit_refusals,
            pool_waits,
            db_errors,
            busy_retries,
            gpc_requests,
            gpc_latency,
            enabled,
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// One answered request.
    pub fn request(&self, rpc: &'static str, outcome: String, seconds: f64) {
        if !self.enabled {
            return;
        }
        self.requests
            .get_or_create(&RequestLabels { rpc, outcome })
            .inc();
        self.latency
            .get_or_create(&RpcLabel { rpc })
            .observe(seconds);
    }

    /// One get_project_config (always a success: it is served from cache).
    pub fn project_config(&self, seconds: f64) {
        if !self.enabled {
            return;
        }
        self.gpc_requests.inc();
        self.gpc_latency.observe(seconds);
    }

    pub fn consent_change(&self, path: &'static str, recorded: bool) {
        if !self.enabled {
            return;
        }
        let recorded = if recorded { "true" } else { "false" };
        self.consent_changes
            .get_or_create(&ConsentLabels { path, recorded })
            .inc();
    }

    /// The text exposition; None while metrics are off.
    pub fn render(&self) -> Option<String> {
        if !self.enabled {
            return None;
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        Some(out)
    }
}
