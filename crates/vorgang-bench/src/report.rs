//! What a run reports: latency percentiles from the histogram, the table, the JSON lines.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latency percentiles of the successful imports, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latencies {
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// Slowest.
    pub max_us: u64,
    /// Arithmetic mean.
    pub mean_us: f64,
}

impl Latencies {
    /// The percentiles of `histogram` (values in microseconds); `None` when it is empty.
    ///
    /// HDR histograms answer a quantile with the highest value equivalent (within the
    /// histogram's precision, here 3 significant digits) to the recorded value at that rank, so
    /// a reported p99 is never below the true one by more than 0.1 %.
    pub fn of(histogram: &Histogram<u64>) -> Option<Self> {
        if histogram.is_empty() {
            return None;
        }
        Some(Self {
            p50_us: histogram.value_at_quantile(0.50),
            p90_us: histogram.value_at_quantile(0.90),
            p99_us: histogram.value_at_quantile(0.99),
            max_us: histogram.max(),
            mean_us: histogram.mean(),
        })
    }
}

/// The result of one target, as printed (table row and JSON object).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// `relay`, `sqlite` or `postgres`.
    pub target: &'static str,
    /// 201 answers completed inside the measured window.
    pub imports: u64,
    /// `imports` per second of the measured window.
    pub imports_per_s: f64,
    /// Percentiles of the 201 answers; `None` if there was none.
    pub latency: Option<Latencies>,
    /// Highest resident set size of the target process sampled (every 50 ms) during warm-up and
    /// measurement, in KiB; `None` where `/proc` is not available.
    pub peak_rss_kib: Option<u64>,
    /// The kernel's high-water mark (`VmHWM`) of the target process at the end, in KiB: its peak
    /// over its whole life, start and token request included.
    pub vm_hwm_kib: Option<u64>,
    /// Requests in the window that were not a 201: by status code, `timeout` or `connection`.
    pub errors: BTreeMap<String, u64>,
    /// Errors / (imports + errors).
    pub error_rate: f64,
    /// imports/s relative to the relay's in the same run; `None` without a relay row.
    pub ratio_to_relay: Option<f64>,
}

impl Summary {
    /// Sum of all errors.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// Fills in [`Summary::ratio_to_relay`] from the relay's row, if the run had one.
pub fn set_ratios(summaries: &mut [Summary]) {
    let relay = summaries
        .iter()
        .find(|s| s.target == "relay")
        .map(|s| s.imports_per_s)
        .filter(|rate| *rate > 0.0);
    for summary in summaries {
        summary.ratio_to_relay = relay.map(|relay| summary.imports_per_s / relay);
    }
}

/// The error rate of `imports` successes and `errors` failures (0 when nothing was sent).
pub fn error_rate(imports: u64, errors: u64) -> f64 {
    let total = imports.saturating_add(errors);
    if total == 0 {
        0.0
    } else {
        // Counts stay far below 2^52: exact as f64.
        #[allow(clippy::cast_precision_loss)]
        let rate = errors as f64 / total as f64;
        rate
    }
}

/// Imports per second over `window`.
pub fn per_second(count: u64, window: Duration) -> f64 {
    let seconds = window.as_secs_f64();
    if seconds <= 0.0 {
        return 0.0;
    }
    #[allow(clippy::cast_precision_loss)]
    let count = count as f64;
    count / seconds
}

/// The table: Markdown, so it can be pasted into docs/performance.md as printed.
pub fn table(summaries: &[Summary]) -> String {
    let mut out = String::from(
        "| target | imports/s | p50 | p90 | p99 | peak RSS | vs relay | errors |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for s in summaries {
        let (p50, p90, p99) = s.latency.map_or_else(
            || ("–".to_owned(), "–".to_owned(), "–".to_owned()),
            |l| (millis(l.p50_us), millis(l.p90_us), millis(l.p99_us)),
        );
        let errors = match s.error_count() {
            0 => "0".to_owned(),
            n => format!("{n} ({})", percent(s.error_rate)),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {p50} | {p90} | {p99} | {} | {} | {errors} |",
            s.target,
            thousands(s.imports_per_s),
            s.peak_rss_kib.map_or_else(|| "–".to_owned(), mebibytes),
            s.ratio_to_relay.map_or_else(|| "–".to_owned(), percent),
        );
    }
    out
}

/// One JSON object per target, one per line, each with the run's parameters (`run`).
pub fn json_lines(summaries: &[Summary], run: &serde_json::Value) -> String {
    let mut out = String::new();
    for summary in summaries {
        let mut object = serde_json::to_value(summary).unwrap_or_default();
        if let Some(map) = object.as_object_mut() {
            map.insert("run".into(), run.clone());
        }
        let _ = writeln!(out, "{object}");
    }
    out
}

/// `1234.6` → `1,235`.
pub fn thousands(value: f64) -> String {
    // Rounded and clamped first: the cast cannot truncate.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let whole = value.round().max(0.0) as u64;
    let digits = whole.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Microseconds as milliseconds with about three significant digits: `6.12 ms`, `20.3 ms`,
/// `383 ms`.
pub fn millis(us: u64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let ms = us as f64 / 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 100.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

/// KiB as MiB with one decimal.
pub fn mebibytes(kib: u64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let mib = kib as f64 / 1024.0;
    format!("{mib:.1} MiB")
}

/// A ratio as a percentage: one decimal below 10 %, whole above.
pub fn percent(ratio: f64) -> String {
    let pct = ratio * 100.0;
    if pct < 10.0 {
        format!("{pct:.1} %")
    } else {
        format!("{pct:.0} %")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram(values: impl IntoIterator<Item = u64>) -> Histogram<u64> {
        let mut h = Histogram::new_with_bounds(1, 60_000_000, 3).unwrap();
        for v in values {
            h.record(v).unwrap();
        }
        h
    }

    #[test]
    fn percentiles_come_from_the_histogram_ranks() {
        // 1..=1000 µs: the p50 is 500, p90 900, p99 990 (exact at 3 significant digits).
        let latencies = Latencies::of(&histogram(1..=1000)).unwrap();
        assert_eq!(latencies.p50_us, 500);
        assert_eq!(latencies.p90_us, 900);
        assert_eq!(latencies.p99_us, 990);
        assert_eq!(latencies.max_us, 1000);
        assert!((latencies.mean_us - 500.5).abs() < 0.5);
        assert!(Latencies::of(&histogram([])).is_none());

        // A slow tail moves the p99 and the max, not the median. Above 2048 µs a bucket spans
        // several µs: a quantile is reported as the highest value of its bucket.
        let h = histogram(std::iter::repeat_n(5_000, 980).chain(std::iter::repeat_n(400_000, 20)));
        let tail = Latencies::of(&h).unwrap();
        assert!(h.equivalent(tail.p50_us, 5_000), "{tail:?}");
        assert!(h.equivalent(tail.p90_us, 5_000), "{tail:?}");
        assert!(h.equivalent(tail.p99_us, 400_000), "{tail:?}");
        assert!(tail.p99_us >= 400_000 && tail.p99_us <= 400_400, "{tail:?}");
        assert!(h.equivalent(tail.max_us, 400_000), "{tail:?}");
    }

    fn summary(target: &'static str, rate: f64, rss_kib: Option<u64>) -> Summary {
        Summary {
            target,
            imports: 0,
            imports_per_s: rate,
            latency: Some(Latencies {
                p50_us: 6_123,
                p90_us: 9_870,
                p99_us: 20_340,
                max_us: 50_000,
                mean_us: 6_500.0,
            }),
            peak_rss_kib: rss_kib,
            vm_hwm_kib: None,
            errors: BTreeMap::new(),
            error_rate: 0.0,
            ratio_to_relay: None,
        }
    }

    #[test]
    fn the_table_has_one_row_per_target_and_ratios_to_the_relay() {
        let mut rows = vec![
            summary("relay", 4_626.4, Some(9 * 1024)),
            summary("sqlite", 223.0, Some(36 * 1024 + 512)),
            Summary {
                latency: None,
                errors: BTreeMap::from([("503".to_owned(), 3), ("timeout".to_owned(), 1)]),
                error_rate: error_rate(396, 4),
                ..summary("postgres", 2_313.2, None)
            },
        ];
        set_ratios(&mut rows);
        assert_eq!(
            table(&rows),
            "| target | imports/s | p50 | p90 | p99 | peak RSS | vs relay | errors |\n\
             | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n\
             | relay | 4,626 | 6.12 ms | 9.87 ms | 20.3 ms | 9.0 MiB | 100 % | 0 |\n\
             | sqlite | 223 | 6.12 ms | 9.87 ms | 20.3 ms | 36.5 MiB | 4.8 % | 0 |\n\
             | postgres | 2,313 | – | – | – | – | 50 % | 4 (1.0 %) |\n"
        );
    }

    #[test]
    fn without_a_relay_there_is_no_ratio() {
        let mut rows = vec![summary("sqlite", 223.0, None)];
        set_ratios(&mut rows);
        assert_eq!(rows[0].ratio_to_relay, None);
        assert!(
            table(&rows).contains("| sqlite | 223 | 6.12 ms | 9.87 ms | 20.3 ms | – | – | 0 |")
        );
    }

    #[test]
    fn json_lines_carry_the_figures_and_the_run() {
        let mut rows = vec![
            summary("relay", 100.0, Some(2048)),
            summary("sqlite", 50.0, None),
        ];
        set_ratios(&mut rows);
        let out = json_lines(&rows, &serde_json::json!({"connections": 32}));
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["target"], "sqlite");
        assert_eq!(lines[1]["ratio_to_relay"], 0.5);
        assert_eq!(lines[1]["latency"]["p99_us"], 20_340);
        assert_eq!(lines[0]["peak_rss_kib"], 2048);
        assert_eq!(lines[0]["run"]["connections"], 32);
    }

    #[test]
    fn number_formats() {
        assert_eq!(thousands(0.2), "0");
        assert_eq!(thousands(999.5), "1,000");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
        assert_eq!(millis(383_200), "383 ms");
        assert_eq!(millis(87), "0.09 ms");
        assert_eq!(mebibytes(9 * 1024 + 102), "9.1 MiB");
        assert_eq!(percent(1.0), "100 %");
        assert_eq!(percent(0.048_2), "4.8 %");
        assert_eq!(error_rate(0, 0), 0.0);
        assert_eq!(error_rate(99, 1), 0.01);
        assert_eq!(per_second(300, Duration::from_secs(15)), 20.0);
    }
}
