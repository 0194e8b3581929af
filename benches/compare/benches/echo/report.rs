//! The scenario rows and the Markdown report: the results table with
//! silverback's ratios, a CPU-use table to tell server-bound cells from
//! load-generator-bound ones, the server-core cost per operation, and notes
//! on errors and stalls.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::fmt::{group, ratio};
use crate::loadgen::Sample;
use crate::servers::Kind;

/// How a row's figure is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Messages per second.
    MsgsPerSec,
    /// 10^6 payload bytes echoed per second (each byte counted once).
    MbPerSec,
    /// KB (1024 bytes) of server RSS per connection; lower is better.
    KbPerConn,
    /// Completed handshake cycles per second.
    PerSec,
}

impl Unit {
    fn lower_is_better(self) -> bool {
        self == Unit::KbPerConn
    }

    fn format(self, v: f64) -> String {
        match self {
            Unit::MsgsPerSec | Unit::PerSec => group(v.round() as u64),
            Unit::MbPerSec => format!("{v:.1}"),
            Unit::KbPerConn => format!("{v:.2}"),
        }
    }
}

/// One table row.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    /// Text of the first column.
    pub label: &'static str,
    /// How its figures are printed and compared.
    pub unit: Unit,
    /// The compressed (permessage-deflate) row: only servers that support
    /// it are measured; the others, the raw echo included, show "–".
    pub deflate: bool,
}

impl Row {
    /// Whether `kind` is measured in this row: the compressed row takes the
    /// servers that support permessage-deflate, the others every server but
    /// the peers added for the compressed row.
    pub fn applies(&self, kind: Kind) -> bool {
        if self.deflate {
            kind.supports_deflate()
        } else {
            !kind.deflate_only()
        }
    }
}

/// Every measured cell, by row index and server.
#[derive(Debug, Default)]
pub struct Results {
    cells: HashMap<(usize, Kind), Sample>,
}

impl Results {
    /// Records the sample of row `row` for `kind`.
    pub fn insert(&mut self, row: usize, kind: Kind, sample: Sample) {
        self.cells.insert((row, kind), sample);
    }

    fn get(&self, row: usize, kind: Kind) -> Option<&Sample> {
        self.cells.get(&(row, kind))
    }

    /// A figure that counts: measured without setup failure.
    fn value(&self, row: usize, kind: Kind) -> Option<f64> {
        self.get(row, kind).filter(|s| !s.declined && (s.value > 0.0 || s.error_count == 0)).map(|s| s.value)
    }
}

/// Renders the whole report.
pub fn render(rows: &[Row], results: &Results, kinds: &[Kind], preamble: &str) -> String {
    let mut out = String::new();
    out.push_str(preamble);
    let header = |out: &mut String, extra: &[&str]| {
        out.push_str("| scenario |");
        for kind in Kind::ALL {
            let name = if kind == Kind::Raw { "raw TCP echo (limit)" } else { kind.name() };
            let _ = write!(out, " {name} |");
        }
        for e in extra {
            let _ = write!(out, " {e} |");
        }
        out.push_str("\n|---|");
        for _ in 0..Kind::ALL.len() + extra.len() {
            out.push_str("--:|");
        }
        out.push('\n');
    };

    header(&mut out, &["silverback / limit", "silverback / best peer"]);
    let mut notes = Vec::new();
    let mut details = Vec::new();
    let measured = |i: usize| Kind::ALL.into_iter().any(|k| results.get(i, k).is_some());
    for (i, row) in rows.iter().enumerate().filter(|(i, _)| measured(*i)) {
        let _ = write!(out, "| {} |", row.label);
        for kind in Kind::ALL {
            if let Some(detail) = results.get(i, kind).and_then(|s| s.detail.as_ref()) {
                details.push(format!("{} / {}: {detail}", kind.name(), row.label));
            }
            let cell = match results.get(i, kind) {
                None if kinds.contains(&kind) && row.applies(kind) => "n/a".to_owned(),
                None => "–".to_owned(),
                Some(s) if s.declined => "–".to_owned(),
                Some(s) => {
                    let mut cell = row.unit.format(s.value);
                    if s.error_count > 0 || s.stalled > 0 {
                        cell.push_str(" ⚠");
                        notes.push(note(row, kind, s));
                    }
                    cell
                }
            };
            let _ = write!(out, " {cell} |");
        }
        let sb = results.value(i, Kind::Silverback);
        let limit = results.value(i, Kind::Raw);
        let peers = Kind::ALL.into_iter().filter(|k| k.is_peer()).filter_map(|k| results.value(i, k));
        let best = if row.unit.lower_is_better() { peers.min_by(f64::total_cmp) } else { peers.max_by(f64::total_cmp) };
        let _ = writeln!(out, " {} | {} |", ratio(sb, limit), ratio(sb, best));
    }
    let worst = results
        .cells
        .iter()
        .filter_map(|((row, kind), s)| Some((s.spread?, *row, *kind)))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    if let Some((spread, row, kind)) = worst {
        let _ = writeln!(
            out,
            "\nNoise: the widest round-to-round spread ((max − min) / median) was {:.0}%, \
             {} in \"{}\".",
            spread * 100.0,
            kind.name(),
            rows[row].label
        );
    }
    out.push_str(
        "\nRatios are silverback's figure divided by the other's: above 1 is better \
         for silverback in every row except RSS, where below 1 is better. \
         \"Best peer\" is the best of the peer columns measured in the row (the lowest, \
         for RSS). Yawc, sockudo-ws and wtx are measured in the compressed row only; \
         servers without permessage-deflate show \"–\" there.\n",
    );
    if !details.is_empty() {
        out.push_str("\nNegotiated compression and compressed echo sizes:\n\n");
        for d in &details {
            let _ = writeln!(out, "- {d}");
        }
    }

    out.push_str(
        "\nCPU busy during each measured window, server core % / load-generator \
         core % (from /proc/stat, so kernel and softirq work counts; 100 = the \
         core never idled). A server core near 100 means the server is the \
         bottleneck; a load-generator core near 100 with the server core below \
         it means the figure is bounded by the load generator:\n\n",
    );
    header(&mut out, &[]);
    for (i, row) in rows.iter().enumerate().filter(|(i, _)| measured(*i)) {
        if row.unit == Unit::KbPerConn {
            continue;
        }
        let _ = write!(out, "| {} |", row.label);
        for kind in Kind::ALL {
            let cell = match results.get(i, kind) {
                Some(Sample { server_cpu: Some(s), client_cpu: Some(c), .. }) => format!("{s:.0} / {c:.0}"),
                Some(_) | None => "–".to_owned(),
            };
            let _ = write!(out, " {cell} |");
        }
        out.push('\n');
    }

    out.push_str(
        "\nServer-core busy time per echoed message or completed handshake, in µs \
         (lower is better). It divides the server core's busy time by the rate, so \
         it shows each server's cost even in rows the load generator limits:\n\n",
    );
    header(&mut out, &["silverback / best peer"]);
    for (i, row) in rows.iter().enumerate().filter(|(i, _)| measured(*i)) {
        if row.unit == Unit::KbPerConn {
            continue;
        }
        let _ = write!(out, "| {} |", row.label);
        let cost = |kind| results.get(i, kind).and_then(|s| s.server_us_per_op);
        for kind in Kind::ALL {
            let cell = cost(kind).map_or_else(|| "–".to_owned(), |us| format!("{us:.2}"));
            let _ = write!(out, " {cell} |");
        }
        let best = Kind::ALL.into_iter().filter(|k| k.is_peer()).filter_map(cost).min_by(f64::total_cmp);
        let _ = writeln!(out, " {} |", ratio(cost(Kind::Silverback), best));
    }

    if !notes.is_empty() {
        out.push_str("\nProblems (⚠):\n\n");
        for n in notes {
            let _ = writeln!(out, "- {n}");
        }
    }
    out
}

fn note(row: &Row, kind: Kind, s: &Sample) -> String {
    let mut n = format!("{} / {}:", kind.name(), row.label);
    if s.stalled > 0 {
        let _ = write!(n, " {} connection(s) made no progress in the window;", s.stalled);
    }
    if s.error_count > 0 {
        let _ = write!(n, " {} error(s), first: {}", s.error_count, s.errors.join(" | "));
    }
    n
}
