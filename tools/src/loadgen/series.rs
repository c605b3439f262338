//! The per-second time series of a run (`-out DIR`): allocations placed and running since the
//! scenario started, heartbeat rate and latency percentiles over each second, written as
//! `series.json` and drawn as `chart.svg` (allocations above, heartbeat latency below).

use std::cell::RefCell;
use std::fmt::Write as _;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use net::client::sim::SimStats;
use net::rpc::StopSignal;
use serde::Serialize;

/// How often the series is sampled.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);

/// One second of a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Sample {
    pub seconds: f64,
    /// Allocations the simulated nodes saw placed since the recorder started.
    pub allocs_placed: u64,
    /// Allocations whose `running` report the servers accepted since the recorder started.
    pub allocs_running: u64,
    pub heartbeats_per_second: f64,
    /// Heartbeat latency over this second only; 0 when no heartbeat was answered.
    pub heartbeat_p50_ms: f64,
    pub heartbeat_p99_ms: f64,
}

/// Samples `stats` every second until `stop`, from the counters' values at the start.
pub async fn record(stats: Rc<SimStats>, stop: StopSignal, out: Rc<RefCell<Vec<Sample>>>) {
    let base = stats.snapshot();
    let started = Instant::now();
    let mut previous = stats.heartbeat_latency_us.borrow().clone();
    let mut previous_sent = base.heartbeats_sent;
    let mut previous_at = started;
    loop {
        futures_lite::future::or(
            async {
                glommio::timer::sleep(SAMPLE_INTERVAL).await;
                false
            },
            async {
                stop.wait().await;
                true
            },
        )
        .await;
        let now = stats.snapshot();
        let current = stats.heartbeat_latency_us.borrow().clone();
        let window = second_of(&current, &previous);
        let at = Instant::now();
        // The heartbeats scenario resets the counters when it starts measuring.
        let sent = now
            .heartbeats_sent
            .saturating_sub(previous_sent.min(now.heartbeats_sent));
        let elapsed = at.duration_since(previous_at).as_secs_f64().max(1e-9);
        let ms = |q: f64| {
            if window.is_empty() {
                0.0
            } else {
                window.value_at_quantile(q) as f64 / 1000.0
            }
        };
        out.borrow_mut().push(Sample {
            seconds: at.duration_since(started).as_secs_f64(),
            allocs_placed: now
                .allocs_placed_seen
                .saturating_sub(base.allocs_placed_seen),
            allocs_running: now
                .allocs_running_reported
                .saturating_sub(base.allocs_running_reported),
            heartbeats_per_second: sent as f64 / elapsed,
            heartbeat_p50_ms: ms(0.5),
            heartbeat_p99_ms: ms(0.99),
        });
        previous = current;
        previous_sent = now.heartbeats_sent;
        previous_at = at;
        if stop.is_stopped() {
            return;
        }
    }
}

/// The latencies recorded between `previous` and `current` (all of `current` after a reset).
fn second_of(current: &Histogram<u64>, previous: &Histogram<u64>) -> Histogram<u64> {
    let mut window = current.clone();
    if current.len() < previous.len() || window.subtract(previous).is_err() {
        return current.clone();
    }
    window
}

/// Writes `series.json` and `chart.svg` into `dir` (created if missing).
pub fn write(dir: &Path, title: &str, samples: &[Sample]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("-out: cannot create {dir:?}"))?;
    let json = serde_json::to_vec_pretty(samples).expect("samples serialize");
    std::fs::write(dir.join("series.json"), json)
        .with_context(|| format!("-out: cannot write series.json in {dir:?}"))?;
    std::fs::write(dir.join("chart.svg"), chart(title, samples))
        .with_context(|| format!("-out: cannot write chart.svg in {dir:?}"))?;
    Ok(())
}

const WIDTH: f64 = 900.0;
const PANEL_HEIGHT: f64 = 260.0;
const MARGIN_LEFT: f64 = 80.0;
const MARGIN_RIGHT: f64 = 150.0;
const MARGIN_TOP: f64 = 40.0;
const PANEL_GAP: f64 = 70.0;

/// One line of a panel: its label, colour and points (seconds, value).
struct Line {
    label: &'static str,
    colour: &'static str,
    points: Vec<(f64, f64)>,
}

/// Draws the two panels as a self-contained SVG document.
pub fn chart(title: &str, samples: &[Sample]) -> String {
    let t_max = samples.iter().map(|s| s.seconds).fold(1.0, f64::max);
    let placed = |f: fn(&Sample) -> f64| samples.iter().map(|s| (s.seconds, f(s))).collect();
    let top = [
        Line {
            label: "placed",
            colour: "#1f77b4",
            points: placed(|s| s.allocs_placed as f64),
        },
        Line {
            label: "running",
            colour: "#2ca02c",
            points: placed(|s| s.allocs_running as f64),
        },
    ];
    let bottom = [
        Line {
            label: "heartbeat p50 ms",
            colour: "#ff7f0e",
            points: placed(|s| s.heartbeat_p50_ms),
        },
        Line {
            label: "heartbeat p99 ms",
            colour: "#d62728",
            points: placed(|s| s.heartbeat_p99_ms),
        },
    ];
    let height = MARGIN_TOP + 2.0 * PANEL_HEIGHT + PANEL_GAP + 50.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(
        svg,
        r#"<rect width="100%" height="100%" fill="white"/><text x="{MARGIN_LEFT}" y="24" font-size="15">{}</text>"#,
        escape(title)
    );
    panel(&mut svg, MARGIN_TOP, "allocations", t_max, &top);
    panel(
        &mut svg,
        MARGIN_TOP + PANEL_HEIGHT + PANEL_GAP,
        "heartbeat latency (ms)",
        t_max,
        &bottom,
    );
    svg.push_str("</svg>\n");
    svg
}

fn panel(svg: &mut String, y0: f64, y_label: &str, t_max: f64, lines: &[Line]) {
    let plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT;
    let v_max = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(0.0, f64::max)
        .max(1e-9);
    let x = |t: f64| MARGIN_LEFT + t / t_max * plot_w;
    let y = |v: f64| y0 + PANEL_HEIGHT - v / v_max * PANEL_HEIGHT;
    let _ = write!(
        svg,
        r##"<rect x="{MARGIN_LEFT}" y="{y0}" width="{plot_w}" height="{PANEL_HEIGHT}" fill="none" stroke="#888"/>"##
    );
    for i in 0..=4 {
        let f = f64::from(i) / 4.0;
        let _ = write!(
            svg,
            r##"<text x="{}" y="{}" text-anchor="end">{}</text><text x="{}" y="{}" text-anchor="middle">{:.0}s</text>"##,
            MARGIN_LEFT - 6.0,
            y(f * v_max) + 4.0,
            short(f * v_max),
            x(f * t_max),
            y0 + PANEL_HEIGHT + 16.0,
            f * t_max
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{}" y="{}" transform="rotate(-90 {} {})" text-anchor="middle">{}</text>"#,
        18.0,
        y0 + PANEL_HEIGHT / 2.0,
        18.0,
        y0 + PANEL_HEIGHT / 2.0,
        escape(y_label)
    );
    for (i, line) in lines.iter().enumerate() {
        let points: Vec<String> = line
            .points
            .iter()
            .map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v)))
            .collect();
        let _ = write!(
            svg,
            r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>"#,
            line.colour,
            points.join(" ")
        );
        let ly = y0 + 14.0 + 18.0 * i as f64;
        let lx = WIDTH - MARGIN_RIGHT + 12.0;
        let _ = write!(
            svg,
            r#"<line x1="{lx}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="3"/><text x="{}" y="{}">{}</text>"#,
            ly - 4.0,
            lx + 18.0,
            ly - 4.0,
            line.colour,
            lx + 24.0,
            ly,
            escape(line.label)
        );
    }
}

/// Formats an axis value: 1.2M, 35k, 12, 0.35.
fn short(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Sample> {
        (1..=5)
            .map(|i| Sample {
                seconds: f64::from(i),
                allocs_placed: 1000 * i as u64,
                allocs_running: 900 * i as u64,
                heartbeats_per_second: 100.0,
                heartbeat_p50_ms: 0.3,
                heartbeat_p99_ms: 2.5,
            })
            .collect()
    }

    #[test]
    fn chart_draws_every_line_and_escapes_the_title() {
        let svg = chart("c1m <1 server>", &samples());
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<polyline").count(), 4);
        assert!(svg.contains("c1m &lt;1 server&gt;"));
        assert!(svg.contains("heartbeat p99 ms"));
        assert!(
            !svg.contains("NaN"),
            "empty or flat series must not divide by zero"
        );
        assert!(!chart("empty", &[]).contains("NaN"));
    }

    #[test]
    fn write_puts_both_files_in_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        write(&out, "t", &samples()).unwrap();
        let json: Vec<serde_json::Value> =
            serde_json::from_slice(&std::fs::read(out.join("series.json")).unwrap()).unwrap();
        assert_eq!(json.len(), 5);
        assert_eq!(json[4]["allocs_placed"], 5000);
        assert!(std::fs::read_to_string(out.join("chart.svg"))
            .unwrap()
            .contains("<polyline"));
    }

    #[test]
    fn a_second_of_latencies_is_the_difference_of_the_totals() {
        let mut before = Histogram::<u64>::new(3).unwrap();
        before.record(100).unwrap();
        let mut after = before.clone();
        after.record(5_000).unwrap();
        let window = second_of(&after, &before);
        assert_eq!(window.len(), 1);
        assert!(window.equivalent(window.value_at_quantile(0.5), 5_000));
        let reset = Histogram::<u64>::new(3).unwrap();
        assert_eq!(second_of(&reset, &after).len(), 0, "a reset starts over");
    }
}
