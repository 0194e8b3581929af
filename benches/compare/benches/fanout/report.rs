//! The fan-out report: one Markdown table per row (payload), one line per
//! server, with the goals as ratio columns and a summary of each goal.

use std::fmt::Write as _;

use crate::fmt::{group, ratio};
use crate::loadgen::{quantile, Round};
use crate::servers::Kind;

/// One scenario of the bench.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    /// Short name, for `SB_FANOUT_ROWS`.
    pub key: &'static str,
    /// Heading of its table.
    pub label: &'static str,
    /// Payload bytes.
    pub size: usize,
    /// permessage-deflate on, JSON-like payloads.
    pub compressed: bool,
}

impl Row {
    /// Whether `kind` is measured in this row.
    pub fn applies(&self, kind: Kind) -> bool {
        if self.compressed {
            kind.compressing()
        } else {
            kind.plain()
        }
    }
}

/// The rounds of one server in one row, combined.
#[derive(Debug, Clone, Default)]
pub struct Cell {
    /// Median delivered messages/s.
    pub rate: f64,
    /// Median server CPU µs per delivered message.
    pub us_per_msg: Option<f64>,
    /// Mean server and load-generator CPU, percent of a core.
    pub server_cpu: Option<f64>,
    pub loadgen_cpu: Option<f64>,
    /// Latency quantiles over all rounds, µs.
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    /// Latency samples.
    pub samples: u64,
    /// Summed over rounds.
    pub ended_early: usize,
    pub failed: usize,
    /// Worst round.
    pub stalled: usize,
    pub opened: usize,
    /// Share of the window's messages that arrived compressed.
    pub compressed_share: Option<f64>,
    pub extension: Option<String>,
    pub errors: Vec<String>,
    /// (max − min) / median of the rounds' rates.
    pub spread: Option<f64>,
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => None,
        n if n % 2 == 1 => Some(v[n / 2]),
        n => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

impl Cell {
    /// Combines the rounds of one cell.
    pub fn combine(rounds: &[Round], measure_secs: f64) -> Cell {
        let rates: Vec<f64> = rounds.iter().map(|r| r.rate).collect();
        let rate = median(rates.clone()).unwrap_or(0.0);
        let (lo, hi) = rates.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        let mut latency = vec![0u64; rounds.iter().map(|r| r.latency.len()).max().unwrap_or(0)];
        for r in rounds {
            latency.iter_mut().zip(&r.latency).for_each(|(a, b)| *a += b);
        }
        let mean = |f: fn(&Round) -> Option<f64>| {
            let v: Vec<f64> = rounds.iter().filter_map(f).collect();
            (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
        };
        let delivered: f64 = rounds.iter().map(|r| r.rate * measure_secs).sum();
        let compressed: u64 = rounds.iter().map(|r| r.compressed).sum();
        Cell {
            rate,
            us_per_msg: median(rounds.iter().filter_map(|r| r.server_us_per_msg).collect()),
            server_cpu: mean(|r| r.server_cpu),
            loadgen_cpu: mean(|r| r.loadgen_cpu),
            p50: quantile(&latency, 0.5),
            p99: quantile(&latency, 0.99),
            samples: latency.iter().sum(),
            ended_early: rounds.iter().map(|r| r.ended_early).sum(),
            failed: rounds.iter().map(|r| r.failed).sum(),
            stalled: rounds.iter().map(|r| r.stalled).max().unwrap_or(0),
            opened: rounds.iter().map(|r| r.opened).min().unwrap_or(0),
            compressed_share: (delivered > 0.0).then(|| compressed as f64 / delivered),
            extension: rounds.iter().find_map(|r| r.extension.clone()),
            errors: rounds.iter().flat_map(|r| r.errors.iter().cloned()).take(3).collect(),
            spread: (rounds.len() > 1 && rate > 0.0).then(|| (hi - lo) / rate),
        }
    }
}

fn ms(us: Option<f64>) -> String {
    us.map_or_else(|| "–".to_owned(), |us| format!("{:.1}", us / 1e3))
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("{v:.digits$}"))
}

/// Renders the report: `cells[row][kind]` as measured (`None`: not run).
pub fn render(rows: &[Row], cells: &[Vec<(Kind, Option<Cell>)>], preamble: &str) -> String {
    let mut out = String::from(preamble);
    let mut goals = Vec::new();
    for (row, cells) in rows.iter().zip(cells) {
        if cells.is_empty() {
            continue;
        }
        let get = |k: Kind| cells.iter().find(|(kind, _)| *kind == k).and_then(|(_, c)| c.as_ref());
        let _ = writeln!(out, "### {}\n", row.label);
        if row.compressed {
            out.push_str(
                "| server | delivered msgs/s | server CPU µs/msg | server / loadgen CPU % | p50 ms | p99 ms | \
                 ended early / stalled | compressed | CPU/msg: silverback(per-conn) ÷ this | CPU/msg: yawc ÷ this |\n\
                 |---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n",
            );
        } else {
            out.push_str(
                "| server | delivered msgs/s | server CPU µs/msg | server / loadgen CPU % | p50 ms | p99 ms | \
                 ended early / stalled | msgs/s ÷ raw | msgs/s ÷ best peer | CPU/msg: best peer ÷ this |\n\
                 |---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n",
            );
        }
        let peers: Vec<&Cell> = cells
            .iter()
            .filter(|(k, _)| k.is_peer())
            .filter_map(|(_, c)| c.as_ref())
            .filter(|c| c.rate > 0.0)
            .collect();
        let best_rate = peers.iter().map(|c| c.rate).max_by(f64::total_cmp);
        let best_cost = peers.iter().filter_map(|c| c.us_per_msg).min_by(f64::total_cmp);
        for (kind, cell) in cells {
            let name = match (kind, row.compressed) {
                (Kind::Raw, _) => "raw TCP fan-out (limit)",
                (Kind::Silverback, true) => "silverback (Topic, compress once)",
                (Kind::Silverback, false) => "silverback (Topic)",
                (k, _) => k.name(),
            };
            let Some(c) = cell else {
                let _ = writeln!(out, "| {name} | not run (time bound) | | | | | | | | |");
                continue;
            };
            let cpu = format!("{} / {}", opt(c.server_cpu, 0), opt(c.loadgen_cpu, 0));
            let trouble = format!("{} / {}", c.ended_early, c.stalled);
            let _ = write!(
                out,
                "| {name} | {} | {} | {cpu} | {} | {} | {trouble} |",
                group(c.rate.round() as u64),
                opt(c.us_per_msg, 2),
                ms(c.p50),
                ms(c.p99),
            );
            if row.compressed {
                let cost = |k| get(k).and_then(|c: &Cell| c.us_per_msg);
                let _ = writeln!(
                    out,
                    " {} | {} | {} |",
                    c.compressed_share.map_or_else(|| "–".to_owned(), |s| format!("{:.0}%", s * 100.0)),
                    ratio(cost(Kind::SilverbackPerConn), c.us_per_msg),
                    ratio(cost(Kind::Yawc), c.us_per_msg),
                );
            } else {
                let raw = get(Kind::Raw).map(|c| c.rate);
                let _ = writeln!(
                    out,
                    " {} | {} | {} |",
                    ratio(Some(c.rate), raw),
                    ratio(Some(c.rate), best_rate),
                    ratio(best_cost, c.us_per_msg),
                );
            }
        }
        out.push('\n');
        for (kind, cell) in cells {
            let Some(c) = cell else { continue };
            if c.failed > 0 || !c.errors.is_empty() {
                let _ = writeln!(
                    out,
                    "- {}: {} connection(s) failed to open; first errors: {}",
                    kind.name(),
                    c.failed,
                    c.errors.join(" | ")
                );
            }
            if c.opened > 0 && c.opened < settings_conns(cells) {
                let _ = writeln!(out, "- {}: only {} connections opened", kind.name(), c.opened);
            }
            if c.samples == 0 {
                let _ = writeln!(out, "- {}: no latency samples", kind.name());
            }
            if let Some(ext) = &c.extension {
                let _ = writeln!(out, "- {} agreed to `{ext}`", kind.name());
            }
        }
        let spread =
            cells.iter().filter_map(|(k, c)| Some((c.as_ref()?.spread?, *k))).max_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((s, k)) = spread {
            let _ = writeln!(out, "- widest round-to-round spread of msgs/s: {:.0}% ({})", s * 100.0, k.name());
        }
        out.push('\n');

        // The goals.
        let Some(sb) = get(Kind::Silverback) else { continue };
        let met = |ok: bool| if ok { "met" } else { "NOT met" };
        goals.push(format!(
            "{}: silverback connections ended early {} (goal 0: {})",
            row.label,
            sb.ended_early,
            met(sb.ended_early == 0 && sb.failed == 0)
        ));
        if row.compressed {
            for k in [Kind::SilverbackPerConn, Kind::Yawc] {
                let r = get(k).and_then(|c| Some(c.us_per_msg? / sb.us_per_msg?));
                if let Some(r) = r {
                    goals.push(format!(
                        "{}: CPU per message of {} ÷ silverback compress-once = {r:.2}× (goal ≥ 5: {})",
                        row.label,
                        k.name(),
                        met(r >= 5.0)
                    ));
                }
            }
        } else {
            if let Some(raw) = get(Kind::Raw).filter(|c| c.rate > 0.0) {
                let r = sb.rate / raw.rate;
                goals.push(format!("{}: silverback ÷ raw = {r:.2}× (goal ≥ 0.9: {})", row.label, met(r >= 0.9)));
            }
            if let Some(best) = best_rate {
                let r = sb.rate / best;
                goals.push(format!("{}: silverback ÷ best peer = {r:.2}× (goal ≥ 1: {})", row.label, met(r >= 1.0)));
            }
        }
    }
    if !goals.is_empty() {
        out.push_str("### Goals\n\n");
        for g in goals {
            let _ = writeln!(out, "- {g}");
        }
    }
    out
}

/// The most connections any server of the row opened: the target, unless
/// every server fell short.
fn settings_conns(cells: &[(Kind, Option<Cell>)]) -> usize {
    cells.iter().filter_map(|(_, c)| c.as_ref().map(|c| c.opened)).max().unwrap_or(0)
}
