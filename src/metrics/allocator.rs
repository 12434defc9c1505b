//! jemalloc's own counters as `switchboard_allocator_bytes{kind}`: RSS alone cannot tell
//! memory the gateway uses from memory the allocator keeps after a burst.

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntGaugeVec, Opts};

/// Reads jemalloc's statistics at every scrape (they are refreshed by advancing its
/// epoch, a few microseconds).
pub struct AllocatorCollector {
    bytes: IntGaugeVec,
}

impl AllocatorCollector {
    pub fn new() -> prometheus::Result<Self> {
        let bytes = IntGaugeVec::new(
            Opts::new(
                "allocator_bytes",
                "jemalloc: allocated (in use), active (pages holding it), resident \
                 (allocator RSS), metadata, retained (unmapped-ready, not RSS)",
            ),
            &["kind"],
        )?;
        Ok(Self { bytes })
    }
}

impl Collector for AllocatorCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.bytes.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        for (kind, value) in read() {
            self.bytes
                .with_label_values(&[kind])
                .set(i64::try_from(value).unwrap_or(i64::MAX));
        }
        self.bytes.collect()
    }
}

/// The counters, or none when the binary does not run on jemalloc.
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
pub fn read() -> Vec<(&'static str, usize)> {
    use tikv_jemalloc_ctl::{epoch, stats};
    if epoch::advance().is_err() {
        return Vec::new();
    }
    let counters = [
        ("allocated", stats::allocated::read()),
        ("active", stats::active::read()),
        ("resident", stats::resident::read()),
        ("metadata", stats::metadata::read()),
        ("retained", stats::retained::read()),
    ];
    counters
        .into_iter()
        .filter_map(|(kind, value)| value.ok().map(|v| (kind, v)))
        .collect()
}

#[cfg(not(all(feature = "jemalloc", not(target_env = "msvc"))))]
pub fn read() -> Vec<(&'static str, usize)> {
    Vec::new()
}

/// jemalloc's full statistics as JSON (`malloc_stats_print`): live regions per size
/// class, per arena, per thread cache. Two of them, taken before and under a load, list
/// exactly what each connection allocates (loadtest/size_classes.py). None without
/// jemalloc.
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
pub fn stats_json() -> Option<Vec<u8>> {
    use tikv_jemalloc_ctl::stats_print::{Options, stats_print};
    let mut out = Vec::new();
    let mut options = Options::default();
    options.json_format = true;
    stats_print(&mut out, options).ok().map(|()| out)
}

#[cfg(not(all(feature = "jemalloc", not(target_env = "msvc"))))]
pub fn stats_json() -> Option<Vec<u8>> {
    None
}

#[cfg(all(test, feature = "jemalloc", not(target_env = "msvc")))]
mod tests {
    #[test]
    fn every_kind_is_read() {
        let kinds: Vec<&str> = super::read().into_iter().map(|(kind, _)| kind).collect();
        assert_eq!(
            kinds,
            ["allocated", "active", "resident", "metadata", "retained"]
        );
    }

    #[test]
    fn the_full_statistics_are_json_with_size_classes() {
        let json = super::stats_json().expect("stats");
        let stats: serde_json::Value = serde_json::from_slice(&json).expect("json");
        let classes = &stats["jemalloc"]["arenas"]["bin"];
        assert!(
            classes.as_array().is_some_and(|b| !b.is_empty()),
            "{classes}"
        );
        assert!(stats["jemalloc"]["stats.arenas"].is_object());
    }
}
