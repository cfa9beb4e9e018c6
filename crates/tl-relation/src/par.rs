//! When work is worth the thread pool. Asking rayon anything, even how many threads it has,
//! starts its pool, and starting two threads (and their idle spinning) costs more than a small
//! program's whole evaluation. So work of known size runs on the calling thread when it is
//! small, and work of unknown cost (a join's fan-out) starts on the calling thread and hands
//! what is left to the pool only once it has taken longer than starting the pool would.

use rayon::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Items of cheap, even work (tuples to write or count) below which it runs on this thread.
pub(crate) const SMALL: usize = 1 << 15;

/// How long the calling thread works alone before [`map_adaptive`] shares the rest.
const ALONE: Duration = Duration::from_micros(200);

/// Whether this crate has handed work to the pool: once it has, the pool's start is paid, and
/// work of unknown cost goes to it at once.
static POOL: AtomicBool = AtomicBool::new(false);

/// The pool's thread count, starting it (and noting that it runs).
fn pool_threads() -> usize {
    POOL.store(true, Relaxed);
    rayon::current_num_threads()
}

/// Pieces to cut `items` items of cheap, even work into: one (the pool untouched) when they
/// are few, else `per_thread` per thread.
pub(crate) fn pieces(items: usize, per_thread: usize) -> usize {
    if items < SMALL {
        1
    } else {
        (pool_threads() * per_thread).max(1)
    }
}

/// The size of the pieces `items` items are cut into: `per_thread` pieces per thread, each
/// holding at least `least`. The threads are counted without starting the pool.
pub(crate) fn chunk(items: usize, least: usize, per_thread: usize) -> usize {
    static THREADS: OnceLock<usize> = OnceLock::new();
    let threads = *THREADS.get_or_init(|| {
        std::env::var("RAYON_NUM_THREADS")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&n| n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    });
    (items / (threads * per_thread).max(1)).max(least).max(1)
}

/// Runs `f` on each job, on the pool only when there is more than one.
pub(crate) fn for_each<T: Send>(jobs: Vec<T>, f: impl Fn(T) + Sync + Send) {
    if jobs.len() <= 1 {
        jobs.into_iter().for_each(f);
    } else {
        POOL.store(true, Relaxed);
        jobs.into_par_iter().for_each(f);
    }
}

/// Maps each job, in order, on the pool only when there is more than one.
pub(crate) fn map<T: Send, R: Send>(jobs: Vec<T>, f: impl Fn(T) -> R + Sync + Send) -> Vec<R> {
    if jobs.len() <= 1 {
        jobs.into_iter().map(f).collect()
    } else {
        POOL.store(true, Relaxed);
        jobs.into_par_iter().map(f).collect()
    }
}

/// Maps each job, in order, for jobs whose cost is not known in advance: until the pool has
/// been needed once, this thread maps them alone for the first [`ALONE`], and the pool takes
/// whatever is left then.
pub(crate) fn map_adaptive<T: Send, R: Send>(
    jobs: Vec<T>,
    f: impl Fn(T) -> R + Sync + Send,
) -> Vec<R> {
    if POOL.load(Relaxed) {
        return map(jobs, f);
    }
    let started = Instant::now();
    let mut out = Vec::with_capacity(jobs.len());
    let mut rest = jobs.into_iter();
    while started.elapsed() < ALONE {
        match rest.next() {
            Some(job) => out.push(f(job)),
            None => return out,
        }
    }
    out.extend(map(rest.collect(), f));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adaptive_maps_keep_order_whether_or_not_they_share() {
        let quick: Vec<u32> = map_adaptive((0..100).collect(), |x| x * 2);
        assert_eq!(quick, (0..100).map(|x| x * 2).collect::<Vec<_>>());
        // Slow jobs pass the time alone, so the pool maps the later ones.
        let slow = map_adaptive((0..8u64).collect(), |x| {
            std::thread::sleep(Duration::from_micros(150));
            x + 1
        });
        assert_eq!(slow, (1..9).collect::<Vec<_>>());
        assert_eq!(chunk(10, 256, 8), 256);
        assert!(chunk(1 << 30, 256, 8) > 256);
    }
}
