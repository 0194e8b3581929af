//! The two system calls the fan-out bench needs beyond std: the system-wide
//! monotonic clock that timestamps messages across processes, and raising
//! the open-file limit for thousands of sockets.

/// `CLOCK_MONOTONIC` in nanoseconds. On Linux it is one clock for every
/// process of the machine, so a server's send time and the load
/// generator's receive time can be subtracted.
pub fn mono_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always
    // exists on Linux, so the call only writes `ts`.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_MONOTONIC)");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Raises the soft RLIMIT_NOFILE to the hard limit and returns the new
/// soft limit (or the old one if raising failed).
pub fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `lim` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 0;
    }
    let raised = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
    // SAFETY: `raised` is a valid rlimit whose soft limit does not exceed
    // its hard limit, which is unchanged.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
        raised.rlim_cur
    } else {
        lim.rlim_cur
    }
}

/// Writes `ns` as 16 lowercase hex digits: the timestamp at the start of
/// every payload (text messages must be UTF-8, so not raw bytes).
pub fn put_stamp(out: &mut [u8], ns: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in out[..16].iter_mut().enumerate() {
        *b = HEX[(ns >> (60 - 4 * i)) as usize & 0xf];
    }
}

/// Reads a timestamp written by [`put_stamp`].
pub fn get_stamp(bytes: &[u8]) -> Option<u64> {
    let hex = bytes.get(..16)?;
    hex.iter().try_fold(0u64, |acc, &b| {
        let d = (b as char).to_digit(16)?;
        Some(acc << 4 | u64::from(d))
    })
}
