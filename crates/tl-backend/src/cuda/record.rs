//! Recorded work: the kernels and products queued between `begin_recording` and
//! `end_recording`, captured from the backend's stream as a CUDA graph, so that a whole
//! training step replays with one launch instead of one per kernel.
//!
//! Memory: while capturing, the pool reserves for the recording every block it hands out or
//! sees freed (see [`Pool::begin_recording`]); a replay writes exactly those addresses, so
//! they return to the cache only when the recording is dropped, after the device is idle.

use super::alloc::Pool;
use cudarc::driver::{CudaContext, CudaGraph};
use std::sync::{Arc, Mutex};

/// A CUDA graph owned by one [`CudaRecording`]. The driver requires calls on one graph to be
/// serialised; the mutex around it does that, so moving it between threads is sound.
pub(crate) struct GraphCell(pub(crate) CudaGraph);

// SAFETY: the graph's handles are plain driver handles, valid from any thread of the process;
// every use goes through the `Mutex` in `CudaRecording`, which serialises them.
unsafe impl Send for GraphCell {}

/// A replayable recording of the CUDA backend, the inside of a [`crate::Recording`].
pub(crate) struct CudaRecording {
    pub(crate) graph: Mutex<GraphCell>,
    pub(crate) id: u64,
    pub(crate) pool: Arc<Pool>,
    pub(crate) ctx: Arc<CudaContext>,
}

impl Drop for CudaRecording {
    fn drop(&mut self) {
        // The memory may be handed out again only when no replay can still write it.
        let _ = self.ctx.synchronize();
        self.pool.release_recording(self.id);
    }
}
