//! Fault injection for tests of partitions: when the environment names a faults file
//! (`DROVER_FAULTS_FILE`), every peer address listed in it, one `ip:port` per line, is treated
//! as unreachable by this server's outgoing server-to-server calls. Writing the file on both
//! sides of a link cuts it; emptying the files heals it. Without the variable nothing is read.

use std::cell::RefCell;
use std::time::{Duration, Instant};

/// The environment variable naming the faults file.
pub const FAULTS_FILE_ENV: &str = "DROVER_FAULTS_FILE";
/// How long a read of the file is trusted before it is read again.
const REFRESH: Duration = Duration::from_millis(100);

struct Cached {
    read_at: Instant,
    blocked: Vec<String>,
}

thread_local! {
    static CACHE: RefCell<Option<Cached>> = const { RefCell::new(None) };
    static PATH: Option<String> = std::env::var(FAULTS_FILE_ENV).ok().filter(|p| !p.is_empty());
}

/// Reports whether calls to `addr` must fail.
pub fn blocked(addr: &str) -> bool {
    let Some(path) = PATH.with(Clone::clone) else {
        return false;
    };
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        let stale = cache.as_ref().is_none_or(|c| c.read_at.elapsed() > REFRESH);
        if stale {
            let blocked = std::fs::read_to_string(&path)
                .map(|text| {
                    text.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            *cache = Some(Cached {
                read_at: Instant::now(),
                blocked,
            });
        }
        cache
            .as_ref()
            .is_some_and(|c| c.blocked.iter().any(|b| b == addr))
    })
}
