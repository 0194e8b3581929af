//! What the benches read from the machine: core pinning, CPU time from
//! `/proc`, the date, the CPU model and the locked crate versions. Shared by
//! the echo bench and, through `#[path]`, the fan-out bench.

use std::process::Command;

/// (server core, load-generator core): the first two cores, or `None` on a
/// one-core machine (then nothing is pinned).
pub fn pinning() -> Option<(core_affinity::CoreId, core_affinity::CoreId)> {
    match core_affinity::get_core_ids().unwrap_or_default().as_slice() {
        [a, b, ..] => Some((*a, *b)),
        _ => None,
    }
}

/// Busy ticks (USER_HZ) of core `core` in the text of `/proc/stat`:
/// everything but idle and iowait, so softirq work on loopback counts too.
pub fn core_busy(stat: &str, core: usize) -> Option<u64> {
    let prefix = format!("cpu{core} ");
    let line = stat.lines().find(|l| l.starts_with(&prefix))?;
    let fields: Vec<u64> = line[prefix.len()..].split_whitespace().filter_map(|f| f.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal ...; guest time is
    // already inside user.
    let busy = fields.iter().take(8).sum::<u64>() - fields.get(3)? - fields.get(4)?;
    Some(busy)
}

/// A process's utime + stime in USER_HZ ticks, from its `/proc/PID/stat`
/// at `path`.
pub fn process_ticks(path: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th of the whole line.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// The current date and time, `2026-11-26 07:48 UTC`.
pub fn date_utc() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// The CPU's model name from `/proc/cpuinfo`.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}

/// The version of `name` in Cargo.lock, or `?`.
pub fn locked_version(name: &str) -> String {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.lock")).unwrap_or_default();
    let needle = format!("name = \"{name}\"\n");
    lock.find(&needle)
        .and_then(|at| lock[at + needle.len()..].lines().next())
        .and_then(|l| l.strip_prefix("version = \""))
        .map_or_else(|| "?".to_owned(), |v| v.trim_end_matches('"').to_owned())
}
