//! Raising the open-files limit, for tests and benches that open
//! thousands of sockets (included by path from `benches/`).

/// Raises this process's open-files limit to `needed` (both ends of
/// every connection a test opens), within the hard limit; panics when
/// that is not enough.
#[allow(unsafe_code)]
pub fn raise_open_files_limit(needed: u64) {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `limit` is a valid, writable `rlimit` for the call's duration.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
    if limit.rlim_cur < needed {
        limit.rlim_cur = needed.min(limit.rlim_max);
        // SAFETY: as above; a failure only leaves the old limit in place.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
    }
    // SAFETY: as above.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
    assert!(limit.rlim_cur >= needed, "need {needed} open files, the limit is {}", limit.rlim_cur);
}
