//! A caching device allocator: requests are rounded up to a size class, freed blocks go back
//! to a free list per class and are handed out again without a driver call.
//!
//! Size classes: up to 1 MiB, the next power of two (at least 512 bytes); above, eight classes
//! per power of two (the size rounded up to a multiple of 1/8 of the power of two below it, so
//! at most 12.5% is wasted). Every class is a multiple of 512 bytes.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

/// Smallest block handed out, in bytes.
pub(crate) const MIN_CLASS: usize = 512;
/// Largest size rounded to a power of two.
const POW2_LIMIT: usize = 1 << 20;

/// The size class a request of `bytes` is served from, or `None` when rounding overflows.
pub(crate) fn size_class(bytes: usize) -> Option<usize> {
    if bytes <= MIN_CLASS {
        return Some(MIN_CLASS);
    }
    if bytes <= POW2_LIMIT {
        return Some(bytes.next_power_of_two());
    }
    // The power of two at or below `bytes`, split in eight steps.
    let floor = 1usize << (usize::BITS - 1 - bytes.leading_zeros());
    let step = floor / 8;
    bytes.div_ceil(step).checked_mul(step)
}

/// Why the raw allocator could not serve a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RawError {
    /// The device is out of memory.
    OutOfMemory,
    /// Any other driver failure.
    Other(String),
}

/// Where blocks really come from: the CUDA driver, or a fake in tests.
pub(crate) trait RawMemory: Send + Sync {
    /// Allocates `bytes` of device memory, returning its address.
    fn alloc(&self, bytes: usize) -> Result<u64, RawError>;
    /// Returns a block to the driver. Called only when no queued work can still use it.
    fn free(&self, ptr: u64);
    /// Waits for queued device work (before blocks go back to the driver).
    fn synchronize(&self);
    /// Free device memory in bytes, as the driver reports it.
    fn free_bytes(&self) -> usize;
}

/// Counters of the caching allocator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// Bytes of blocks held by live tensors (size-class bytes).
    pub in_use: usize,
    /// The largest `in_use` seen.
    pub peak: usize,
    /// Bytes obtained from the driver and not yet returned (in use plus cached).
    pub reserved: usize,
    /// Allocation requests served (cache hits included).
    pub allocations: u64,
    /// Requests served from the cache without a driver call.
    pub cache_hits: u64,
    /// Blocks obtained from the driver.
    pub driver_allocations: u64,
}

struct PoolState {
    free: HashMap<usize, Vec<u64>>,
    stats: MemoryStats,
    /// The recording now capturing work, if any (see [`Pool::begin_recording`]).
    capturing: Option<u64>,
    /// Blocks reserved for each live recording, by size class: every block freed while it
    /// captured, and every block it handed out, once freed. A replay writes them, so nobody
    /// else may have them; the capture itself reuses them (replay repeats its order).
    held: HashMap<u64, HashMap<usize, Vec<u64>>>,
    /// The recording each block handed out while capturing belongs to.
    owner: HashMap<u64, u64>,
    next_recording: u64,
}

/// The caching allocator. Shared (`Arc`) by the backend and every block it handed out.
pub(crate) struct Pool {
    raw: Box<dyn RawMemory>,
    state: Mutex<PoolState>,
    device: String,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pool({})", self.device)
    }
}

/// Why [`Pool::alloc`] failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AllocError {
    /// Out of memory even after emptying the cache; `free` bytes were free.
    OutOfMemory {
        /// Free device memory at the time.
        free: usize,
    },
    /// The request cannot be rounded to a class (absurdly large).
    TooLarge,
    /// Another driver failure.
    Driver(String),
}

/// A block of device memory; going out of scope returns it to its pool's cache.
pub(crate) struct Block {
    ptr: u64,
    class: usize,
    pool: Arc<Pool>,
}

impl fmt::Debug for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Block({:#x}, {} bytes)", self.ptr, self.class)
    }
}

impl Block {
    /// The device address (0 for an empty block).
    pub(crate) fn ptr(&self) -> u64 {
        self.ptr
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        if self.class > 0 {
            self.pool.release(self.ptr, self.class);
        }
    }
}

impl Pool {
    /// A pool over a raw allocator; `device` names the device in errors.
    pub(crate) fn new(raw: Box<dyn RawMemory>, device: String) -> Arc<Pool> {
        Arc::new(Pool {
            raw,
            state: Mutex::new(PoolState {
                free: HashMap::new(),
                stats: MemoryStats::default(),
                capturing: None,
                held: HashMap::new(),
                owner: HashMap::new(),
                next_recording: 0,
            }),
            device,
        })
    }

    /// The device name given at creation.
    pub(crate) fn device(&self) -> &str {
        &self.device
    }

    /// Bytes that allocations could still get: free device memory plus the cached blocks.
    pub(crate) fn free_bytes(&self) -> usize {
        let cached: usize = self
            .lock()
            .free
            .iter()
            .map(|(class, ptrs)| class * ptrs.len())
            .sum();
        self.raw.free_bytes().saturating_add(cached)
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        // A panic while holding the lock cannot leave the maps inconsistent (each update is a
        // single push/pop plus counters), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A block of at least `bytes` bytes (a zero-byte request gets an empty block).
    pub(crate) fn alloc(self: &Arc<Self>, bytes: usize) -> Result<Block, AllocError> {
        if bytes == 0 {
            return Ok(Block {
                ptr: 0,
                class: 0,
                pool: self.clone(),
            });
        }
        let class = size_class(bytes).ok_or(AllocError::TooLarge)?;
        {
            let mut st = self.lock();
            st.stats.allocations += 1;
            let capturing = st.capturing;
            let mine = capturing
                .and_then(|g| st.held.get_mut(&g))
                .and_then(|h| h.get_mut(&class))
                .and_then(|v| v.pop());
            if let Some(ptr) = mine.or_else(|| st.free.get_mut(&class).and_then(|v| v.pop())) {
                st.stats.cache_hits += 1;
                Self::count_use(&mut st.stats, class);
                if let Some(g) = capturing {
                    st.owner.insert(ptr, g);
                }
                return Ok(Block {
                    ptr,
                    class,
                    pool: self.clone(),
                });
            }
        }
        let ptr = match self.raw.alloc(class) {
            Ok(p) => p,
            Err(RawError::OutOfMemory) => {
                // Give every cached block back to the driver and try once more.
                self.empty_cache();
                match self.raw.alloc(class) {
                    Ok(p) => p,
                    Err(RawError::OutOfMemory) => {
                        return Err(AllocError::OutOfMemory {
                            free: self.raw.free_bytes(),
                        })
                    }
                    Err(RawError::Other(e)) => return Err(AllocError::Driver(e)),
                }
            }
            Err(RawError::Other(e)) => return Err(AllocError::Driver(e)),
        };
        let mut st = self.lock();
        st.stats.driver_allocations += 1;
        st.stats.reserved += class;
        Self::count_use(&mut st.stats, class);
        if let Some(g) = st.capturing {
            st.owner.insert(ptr, g);
        }
        Ok(Block {
            ptr,
            class,
            pool: self.clone(),
        })
    }

    fn count_use(stats: &mut MemoryStats, class: usize) {
        stats.in_use += class;
        stats.peak = stats.peak.max(stats.in_use);
    }

    fn release(&self, ptr: u64, class: usize) {
        let mut st = self.lock();
        st.stats.in_use = st.stats.in_use.saturating_sub(class);
        let recording = match st.capturing {
            Some(g) => Some(g),
            None => match st.owner.get(&ptr) {
                Some(g) if st.held.contains_key(g) => Some(*g),
                Some(_) => {
                    st.owner.remove(&ptr);
                    None
                }
                None => None,
            },
        };
        match recording.and_then(|g| st.held.get_mut(&g)) {
            Some(held) => held.entry(class).or_default().push(ptr),
            None => st.free.entry(class).or_default().push(ptr),
        }
    }

    /// Starts reserving memory for a new recording, returning its number: until
    /// [`Pool::end_recording`], blocks handed out belong to it and blocks freed are kept for
    /// it (and reused by it).
    pub(crate) fn begin_recording(&self) -> u64 {
        let mut st = self.lock();
        let g = st.next_recording;
        st.next_recording += 1;
        st.capturing = Some(g);
        st.held.insert(g, HashMap::new());
        g
    }

    /// Stops capturing; the recording's blocks stay reserved until [`Pool::release_recording`].
    pub(crate) fn end_recording(&self) {
        self.lock().capturing = None;
    }

    /// Gives the blocks reserved for recording `g` back to the cache. The caller has waited
    /// for every replay of it to finish.
    pub(crate) fn release_recording(&self, g: u64) {
        let mut st = self.lock();
        if st.capturing == Some(g) {
            st.capturing = None;
        }
        let held = st.held.remove(&g).unwrap_or_default();
        for (class, ptrs) in held {
            st.free.entry(class).or_default().extend(ptrs);
        }
        st.owner.retain(|_, owner| *owner != g);
    }

    /// Returns every cached (free) block to the driver.
    pub(crate) fn empty_cache(&self) {
        let blocks: Vec<(usize, u64)> = {
            let mut st = self.lock();
            let all: Vec<(usize, u64)> = st
                .free
                .drain()
                .flat_map(|(c, v)| v.into_iter().map(move |p| (c, p)))
                .collect();
            let bytes: usize = all.iter().map(|&(c, _)| c).sum();
            st.stats.reserved = st.stats.reserved.saturating_sub(bytes);
            all
        };
        if blocks.is_empty() {
            return;
        }
        self.raw.synchronize();
        for (_, p) in blocks {
            self.raw.free(p);
        }
    }

    /// The current counters.
    pub(crate) fn stats(&self) -> MemoryStats {
        self.lock().stats
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.empty_cache();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

    #[test]
    fn size_classes_round_up() {
        assert_eq!(size_class(0), Some(512));
        assert_eq!(size_class(1), Some(512));
        assert_eq!(size_class(512), Some(512));
        assert_eq!(size_class(513), Some(1024));
        assert_eq!(size_class(4000), Some(4096));
        assert_eq!(size_class(1 << 20), Some(1 << 20));
        // Above 1 MiB: eight steps per power of two.
        assert_eq!(size_class((1 << 20) + 1), Some((1 << 20) + (1 << 17)));
        assert_eq!(size_class(3 << 20), Some(3 << 20));
        assert_eq!(size_class((3 << 20) + 5), Some((3 << 20) + (1 << 18)));
        for b in [1usize, 700, 5000, 1 << 21, 123_456_789, 1 << 50] {
            let c = size_class(b).unwrap_or(0);
            assert!(c >= b && c.is_multiple_of(512), "{b} -> {c}");
            assert!(b <= 512 || c < 2 * b, "{b} -> {c}");
        }
        assert_eq!(size_class(usize::MAX), None);
    }

    /// Hands out fake addresses up to a byte limit.
    struct Fake {
        next: AtomicU64,
        used: AtomicUsize,
        limit: usize,
        frees: AtomicUsize,
    }

    impl RawMemory for Arc<Fake> {
        fn alloc(&self, bytes: usize) -> Result<u64, RawError> {
            if self.used.load(Ordering::SeqCst) + bytes > self.limit {
                return Err(RawError::OutOfMemory);
            }
            self.used.fetch_add(bytes, Ordering::SeqCst);
            Ok(self.next.fetch_add(bytes as u64, Ordering::SeqCst))
        }
        fn free(&self, _ptr: u64) {
            self.frees.fetch_add(1, Ordering::SeqCst);
        }
        fn synchronize(&self) {}
        fn free_bytes(&self) -> usize {
            self.limit - self.used.load(Ordering::SeqCst)
        }
    }

    fn fake(limit: usize) -> (Arc<Fake>, Arc<Pool>) {
        let f = Arc::new(Fake {
            next: AtomicU64::new(4096),
            used: AtomicUsize::new(0),
            limit,
            frees: AtomicUsize::new(0),
        });
        (f.clone(), Pool::new(Box::new(f), "fake".into()))
    }

    #[test]
    fn freed_blocks_are_reused() -> Result<(), AllocError> {
        let (_, pool) = fake(1 << 30);
        let a = pool.alloc(1000)?;
        let pa = a.ptr();
        drop(a);
        let b = pool.alloc(900)?; // same class (1024)
        assert_eq!(b.ptr(), pa);
        let s = pool.stats();
        assert_eq!(
            (s.allocations, s.cache_hits, s.driver_allocations),
            (2, 1, 1)
        );
        assert_eq!((s.in_use, s.reserved, s.peak), (1024, 1024, 1024));
        let c = pool.alloc(5000)?;
        assert_ne!(c.ptr(), pa);
        assert_eq!(pool.stats().peak, 1024 + 8192);
        drop((b, c));
        assert_eq!(pool.stats().in_use, 0);
        assert_eq!(pool.alloc(0)?.ptr(), 0);
        Ok(())
    }

    #[test]
    fn a_recording_keeps_its_blocks_until_released() -> Result<(), AllocError> {
        let (_, pool) = fake(1 << 30);
        let before = pool.alloc(1000)?;
        let cached = pool.alloc(1000)?;
        let cached_ptr = cached.ptr();
        drop(cached);
        let g = pool.begin_recording();
        // A block freed while capturing is kept for the capture, and reused by it.
        let during = pool.alloc(1000)?;
        assert_eq!(during.ptr(), cached_ptr);
        let before_ptr = before.ptr();
        drop(before);
        let again = pool.alloc(1000)?;
        assert_eq!(again.ptr(), before_ptr);
        let (during_ptr, again_ptr) = (during.ptr(), again.ptr());
        pool.end_recording();
        // Blocks the recording handed out stay reserved when freed after the capture.
        drop(during);
        let outside = pool.alloc(1000)?;
        assert!(![during_ptr, again_ptr, before_ptr].contains(&outside.ptr()));
        drop(outside);
        pool.release_recording(g);
        // Released: its blocks serve everyone again, and later frees go to the cache.
        drop(again);
        let mut seen = Vec::new();
        let blocks: Vec<Block> = (0..4).map(|_| pool.alloc(1000)).collect::<Result<_, _>>()?;
        seen.extend(blocks.iter().map(|b| b.ptr()));
        for p in [during_ptr, again_ptr] {
            assert!(seen.contains(&p), "{p:#x} not reused in {seen:x?}");
        }
        assert_eq!(pool.stats().driver_allocations, 4);
        Ok(())
    }

    #[test]
    fn out_of_memory_empties_the_cache_then_reports() -> Result<(), AllocError> {
        let (f, pool) = fake(4096);
        drop(pool.alloc(2048)?);
        // 4096 does not fit beside the cached 2048 block: the cache is emptied, then it fits
        // (the fake never gives bytes back, so this still fails and reports).
        let err = pool.alloc(4096).err();
        assert_eq!(f.frees.load(Ordering::SeqCst), 1);
        assert_eq!(err, Some(AllocError::OutOfMemory { free: 2048 }));
        assert_eq!(pool.stats().reserved, 0);
        assert_eq!(pool.alloc(usize::MAX).err(), Some(AllocError::TooLarge));
        Ok(())
    }
}
