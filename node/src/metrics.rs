//! Prometheus metrics, served at `/metrics`.

use coalition_core::refusal::RefusalCode;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

/// Every metric the node exports.
pub struct Metrics {
    registry: Registry,
    /// Entries from partners applied to the ledger, by source (`peer`).
    pub entries_applied: Family<Labels, Counter>,
    /// Entries refused, by reason.
    pub entries_rejected: Family<Labels, Counter>,
    /// Points issued by this partner.
    pub points_issued: Counter,
    /// Points redeemed at this partner (certified here as redeemer).
    pub points_redeemed: Counter,
    /// Votes this node gave.
    pub votes_given: Counter,
    /// Votes this node refused, by reason code.
    pub votes_refused: Family<Labels, Counter>,
    /// Certificates this node formed as redeemer.
    pub certificates_formed: Counter,
    /// Redemptions that failed, by reason code.
    pub redemptions_failed: Family<Labels, Counter>,
    /// Seconds from order received to certificate appended.
    pub redemption_latency: Histogram,
    /// Partners connected now.
    pub peers_connected: Gauge,
    /// Entries waiting for a dependency.
    pub pending_entries: Gauge,
    /// Checkpoints sealed.
    pub checkpoints_sealed: Counter,
    /// Equivocations detected.
    pub equivocations: Counter,
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("coalition");
        let m = Metrics {
            entries_applied: Family::default(),
            entries_rejected: Family::default(),
            points_issued: Counter::default(),
            points_redeemed: Counter::default(),
            votes_given: Counter::default(),
            votes_refused: Family::default(),
            certificates_formed: Counter::default(),
            redemptions_failed: Family::default(),
            redemption_latency: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
            peers_connected: Gauge::default(),
            pending_entries: Gauge::default(),
            checkpoints_sealed: Counter::default(),
            equivocations: Counter::default(),
            registry: Registry::default(),
        };
        registry.register(
            "entries_applied",
            "Log entries from partners applied, by source",
            m.entries_applied.clone(),
        );
        registry.register(
            "entries_rejected",
            "Log entries refused, by reason",
            m.entries_rejected.clone(),
        );
        registry.register(
            "points_issued",
            "Points issued by this partner",
            m.points_issued.clone(),
        );
        registry.register(
            "points_redeemed",
            "Points redeemed at this partner",
            m.points_redeemed.clone(),
        );
        registry.register(
            "votes_given",
            "Votes given for redeem orders",
            m.votes_given.clone(),
        );
        registry.register(
            "votes_refused",
            "Votes refused, by reason",
            m.votes_refused.clone(),
        );
        registry.register(
            "certificates_formed",
            "Redeem certificates formed here",
            m.certificates_formed.clone(),
        );
        registry.register(
            "redemptions_failed",
            "Redemptions that failed, by reason",
            m.redemptions_failed.clone(),
        );
        registry.register(
            "redemption_latency_seconds",
            "Order received to certificate appended",
            m.redemption_latency.clone(),
        );
        registry.register(
            "peers_connected",
            "Partners connected",
            m.peers_connected.clone(),
        );
        registry.register(
            "pending_entries",
            "Entries waiting for a dependency",
            m.pending_entries.clone(),
        );
        registry.register(
            "checkpoints_sealed",
            "Checkpoints sealed",
            m.checkpoints_sealed.clone(),
        );
        registry.register(
            "equivocations",
            "Equivocations detected",
            m.equivocations.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Gives every label value a series at 0 from the start, so `rate()` and an alert on a
    /// counter's absence work from the first scrape, not from the first event. The refusal codes
    /// label votes and failed redemptions; `redemption_reasons` are the other reasons a redemption
    /// fails with.
    pub fn initialise_labels(&self, redemption_reasons: &[&str]) {
        zero(&self.entries_applied, "source", "peer");
        for reason in ["invalid", "rule"] {
            zero(&self.entries_rejected, "reason", reason);
        }
        for code in RefusalCode::ALL {
            zero(&self.votes_refused, "reason", code.as_str());
            zero(&self.redemptions_failed, "reason", code.as_str());
        }
        for reason in redemption_reasons {
            zero(&self.redemptions_failed, "reason", reason);
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Creates `family`'s series for `key=value`, at 0.
fn zero(family: &Family<Labels, Counter>, key: &str, value: &str) {
    drop(family.get_or_create(&label(key, value)));
}

/// A single label set.
pub fn label(key: &str, value: &str) -> Labels {
    vec![(key.to_string(), value.to_string())]
}
