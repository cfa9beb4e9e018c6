//! The channel between `tl run --gpus N`'s launcher and its workers: a Unix socket per worker,
//! carrying length-prefixed frames.
//!
//! Over NCCL the channel only hands rank 0's communicator id to the other ranks and lets a
//! worker notice that the launcher is gone. Between CPU workers (`--device cpu --gpus N`) it
//! also carries the gradients: each rank sends its bucket, the launcher adds the buckets in rank
//! order (so every rank receives the same bits) and sends the sum back. Every wait has a
//! timeout, and a closed connection names the rank that closed it.

use crate::host_reducer::HostExchange;
use crate::reducer::ReduceError;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

/// One message between the launcher and a worker.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// A worker's first message: its rank.
    Hello(u32),
    /// NCCL's communicator id, from rank 0 to the launcher and on to the other ranks.
    NcclId(Box<[u8; 128]>),
    /// A worker's bucket of gradients, to be summed over the ranks.
    Reduce(Vec<f64>),
    /// The sum of a bucket over all ranks, to every worker.
    Sum(Vec<f64>),
}

/// Largest frame accepted (a corrupt length would otherwise allocate without bound).
const MAX_FRAME: u64 = 1 << 36;

impl Frame {
    fn tag(&self) -> u8 {
        match self {
            Frame::Hello(_) => 1,
            Frame::NcclId(_) => 2,
            Frame::Reduce(_) => 3,
            Frame::Sum(_) => 4,
        }
    }

    /// Writes the frame: a tag byte, the payload length (u64, little-endian), the payload.
    pub fn write(&self, w: &mut impl Write) -> std::io::Result<()> {
        let payload: Vec<u8> = match self {
            Frame::Hello(r) => r.to_le_bytes().to_vec(),
            Frame::NcclId(id) => id.to_vec(),
            Frame::Reduce(v) | Frame::Sum(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        };
        let mut head = vec![self.tag()];
        head.extend((payload.len() as u64).to_le_bytes());
        w.write_all(&head)?;
        w.write_all(&payload)?;
        w.flush()
    }

    /// Reads one frame; an error of kind `UnexpectedEof` when the peer closed the connection.
    pub fn read(r: &mut impl Read) -> std::io::Result<Frame> {
        let mut head = [0u8; 9];
        r.read_exact(&mut head)?;
        let len = u64::from_le_bytes(head[1..].try_into().unwrap_or([0; 8]));
        if len > MAX_FRAME {
            return Err(bad(format!("a frame of {len} bytes is too large")));
        }
        let mut payload = vec![0u8; len as usize];
        r.read_exact(&mut payload)?;
        match head[0] {
            1 if payload.len() == 4 => Ok(Frame::Hello(u32::from_le_bytes(
                payload.try_into().unwrap_or([0; 4]),
            ))),
            2 if payload.len() == 128 => {
                let mut id = Box::new([0u8; 128]);
                id.copy_from_slice(&payload);
                Ok(Frame::NcclId(id))
            }
            3 | 4 if payload.len().is_multiple_of(8) => {
                let v = payload
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                    .collect();
                Ok(if head[0] == 3 {
                    Frame::Reduce(v)
                } else {
                    Frame::Sum(v)
                })
            }
            t => Err(bad(format!(
                "a frame with tag {t} and {len} bytes is not part of the protocol"
            ))),
        }
    }
}

fn bad(detail: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, detail)
}

/// Whether an I/O error is a read timeout.
fn timed_out(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// A worker's end of the channel, summing buckets through the launcher (CPU workers).
pub struct RelayExchange {
    stream: UnixStream,
    rank: usize,
    world: usize,
    timeout: Duration,
}

impl RelayExchange {
    /// Wraps a connected stream; each sum waits at most `timeout` for the other ranks.
    pub fn new(stream: UnixStream, rank: usize, world: usize, timeout: Duration) -> Self {
        RelayExchange {
            stream,
            rank,
            world,
            timeout,
        }
    }
}

impl HostExchange for RelayExchange {
    fn rank(&self) -> usize {
        self.rank
    }
    fn world(&self) -> usize {
        self.world
    }
    fn sum(&mut self, data: Vec<f64>) -> Result<Vec<f64>, ReduceError> {
        let rank = self.rank;
        let lost = |e: std::io::Error| ReduceError::Transport {
            rank,
            detail: format!("the launcher's connection failed ({e}); another rank has stopped"),
        };
        Frame::Reduce(data).write(&mut self.stream).map_err(lost)?;
        // The launcher knows which rank is missing, so it must give up first: a worker waits
        // longer than the launcher's timeout before reporting a timeout of its own.
        let patience = self.timeout + self.timeout / 2 + Duration::from_secs(1);
        self.stream.set_read_timeout(Some(patience)).map_err(lost)?;
        match Frame::read(&mut self.stream) {
            Ok(Frame::Sum(v)) => Ok(v),
            Ok(other) => Err(ReduceError::Mismatch {
                rank,
                detail: format!("expected a sum from the launcher, got {other:?}"),
            }),
            Err(e) if timed_out(&e) => Err(ReduceError::Timeout {
                rank,
                what: "the other ranks at a gradient exchange".into(),
                seconds: patience.as_secs(),
            }),
            Err(e) => Err(lost(e)),
        }
    }
}

/// What the launcher's reader threads report.
#[derive(Debug)]
pub enum Event {
    /// A frame arrived from a rank.
    Frame(usize, Frame),
    /// A rank's connection closed or failed.
    Closed(usize, String),
}

/// Reads frames from one rank's connection until it closes, reporting each to `tx`.
pub fn read_frames(rank: usize, mut stream: UnixStream, tx: Sender<Event>) {
    loop {
        match Frame::read(&mut stream) {
            Ok(f) => {
                if tx.send(Event::Frame(rank, f)).is_err() {
                    return;
                }
            }
            Err(e) => {
                let why = if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    "its connection closed".to_string()
                } else {
                    format!("its connection failed: {e}")
                };
                let _ = tx.send(Event::Closed(rank, why));
                return;
            }
        }
    }
}

/// The launcher's side of the exchanges: relays NCCL's id and sums CPU workers' buckets.
pub struct Coordinator {
    writers: Vec<UnixStream>,
    pending: Vec<std::collections::VecDeque<Vec<f64>>>,
    closed: Vec<Option<String>>,
    /// When the oldest unanswered bucket arrived (a sum waits for every rank).
    waiting_since: Option<Instant>,
    timeout: Duration,
    /// Buckets summed so far.
    pub rounds: u64,
}

impl Coordinator {
    /// A coordinator writing to one stream per rank (index = rank).
    pub fn new(writers: Vec<UnixStream>, timeout: Duration) -> Self {
        let n = writers.len();
        Coordinator {
            writers,
            pending: vec![Default::default(); n],
            closed: vec![None; n],
            waiting_since: None,
            timeout,
            rounds: 0,
        }
    }

    /// Handles one event from the reader threads.
    pub fn handle(&mut self, event: Event) -> Result<(), ReduceError> {
        match event {
            Event::Frame(0, Frame::NcclId(id)) => {
                for w in self.writers.iter_mut().skip(1) {
                    // A rank that cannot be reached fails on its own and is reported then.
                    let _ = Frame::NcclId(id.clone()).write(w);
                }
                Ok(())
            }
            Event::Frame(rank, Frame::Reduce(v)) => {
                if let Some((gone, why)) = self.first_closed() {
                    return Err(ReduceError::Lost {
                        rank: gone,
                        detail: why,
                    });
                }
                self.pending[rank].push_back(v);
                self.waiting_since.get_or_insert_with(Instant::now);
                self.try_sum()
            }
            Event::Frame(rank, other) => Err(ReduceError::Mismatch {
                rank,
                detail: format!("unexpected message {other:?}"),
            }),
            Event::Closed(rank, why) => {
                self.closed[rank] = Some(why.clone());
                if self.pending.iter().any(|q| !q.is_empty()) {
                    return Err(ReduceError::Lost { rank, detail: why });
                }
                Ok(())
            }
        }
    }

    /// The first rank whose connection has closed, and how.
    fn first_closed(&self) -> Option<(usize, String)> {
        self.closed
            .iter()
            .enumerate()
            .find_map(|(r, c)| c.clone().map(|why| (r, why)))
    }

    /// Sums the oldest bucket of every rank once all have sent one, in rank order.
    fn try_sum(&mut self) -> Result<(), ReduceError> {
        while self.pending.iter().all(|q| !q.is_empty()) {
            let parts: Vec<Vec<f64>> = self
                .pending
                .iter_mut()
                .filter_map(|q| q.pop_front())
                .collect();
            let n = parts[0].len();
            if let Some(r) = parts.iter().position(|p| p.len() != n) {
                return Err(ReduceError::Mismatch {
                    rank: r,
                    detail: format!(
                        "rank 0 sent a bucket of {n} numbers, rank {r} one of {}",
                        parts[r].len()
                    ),
                });
            }
            let mut sum = parts[0].clone();
            for p in &parts[1..] {
                sum.iter_mut().zip(p).for_each(|(a, b)| *a += b);
            }
            for (rank, w) in self.writers.iter_mut().enumerate() {
                Frame::Sum(sum.clone())
                    .write(w)
                    .map_err(|e| ReduceError::Lost {
                        rank,
                        detail: format!("cannot send it the sum: {e}"),
                    })?;
            }
            self.rounds += 1;
            self.waiting_since = self
                .pending
                .iter()
                .any(|q| !q.is_empty())
                .then(Instant::now);
        }
        Ok(())
    }

    /// An error when a bucket has waited longer than the timeout for some ranks, naming the
    /// first of them.
    pub fn check_timeout(&self) -> Result<(), ReduceError> {
        match self.waiting_since {
            Some(t) if t.elapsed() > self.timeout => {
                let missing = self.pending.iter().position(|q| q.is_empty()).unwrap_or(0);
                Err(ReduceError::Timeout {
                    rank: missing,
                    what: format!(
                        "gradient exchange {} (the other ranks were waiting for it)",
                        self.rounds + 1
                    ),
                    seconds: self.timeout.as_secs(),
                })
            }
            _ => Ok(()),
        }
    }

    /// Closes every connection (also for the reader threads' copies), so that workers waiting
    /// for a sum stop at once.
    pub fn shutdown(&self) {
        for w in &self.writers {
            let _ = w.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Drains events for up to `wait`, handling each.
    pub fn pump(&mut self, rx: &Receiver<Event>, wait: Duration) -> Result<(), ReduceError> {
        match rx.recv_timeout(wait) {
            Ok(e) => {
                self.handle(e)?;
                while let Ok(e) = rx.try_recv() {
                    self.handle(e)?;
                }
            }
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {}
        }
        self.check_timeout()
    }
}

#[cfg(test)]
mod tests;
