//! jemalloc's own counters as `switchboard_allocator_bytes{kind}`: RSS alone cannot tell
//! memory the gateway uses from memory the allocator keeps after a burst. Also its full
//! statistics (`/debug/allocator`) and the idle workers' cache trim.

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

/// Least time between two trims of one thread's cache.
const TRIM_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Gives this thread's cached free blocks back to the allocator, at most once per
/// `TRIM_EVERY`; meant for a runtime's park hook. jemalloc trims a thread's cache only
/// while that thread allocates, so after a burst (a mass disconnect) idle workers would
/// keep theirs, and with them whole pages (RESULTS "Mass disconnect").
pub fn trim_thread_cache() {
    use std::cell::Cell;
    use std::time::Instant;
    thread_local!(static LAST: Cell<Option<Instant>> = const { Cell::new(None) });
    let now = Instant::now();
    if LAST
        .get()
        .is_none_or(|at| now.duration_since(at) >= TRIM_EVERY)
    {
        LAST.set(Some(now));
        flush_thread_cache();
    }
}

/// Disabling a thread's cache flushes it (jemalloc's `thread.tcache.enabled`); enabling
/// it again starts an empty one. Left alone when caches are off (`tcache:false`).
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
fn flush_thread_cache() {
    use tikv_jemalloc_ctl::{Access, AsName};
    let enabled = b"thread.tcache.enabled\0".name();
    if Access::<bool>::read(enabled) == Ok(true) && enabled.write(false).is_ok() {
        let _ = enabled.write(true);
    }
}

#[cfg(not(all(feature = "jemalloc", not(target_env = "msvc"))))]
fn flush_thread_cache() {}

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
    fn a_trim_leaves_the_thread_cache_as_it_found_it() {
        use tikv_jemalloc_ctl::{Access, AsName};
        let enabled = b"thread.tcache.enabled\0".name();
        let read = || Access::<bool>::read(enabled).expect("readable");
        std::thread::spawn(move || {
            assert!(read(), "caches are on by default");
            super::flush_thread_cache();
            assert!(read(), "flushed and back on");
            enabled.write(false).expect("off");
            super::flush_thread_cache();
            assert!(!read(), "an operator's tcache:false is kept");
        })
        .join()
        .expect("thread");
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
