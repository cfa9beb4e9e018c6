//! The launcher of a multi-GPU run: one worker process per GPU, each told its rank and device,
//! watched until all finish or one fails (the others are then stopped, and the failure is
//! reported with the tail of that worker's standard error).

use crate::reducer::ReduceError;
use crate::relay::{read_frames, Coordinator, Event, Frame};
use crate::worker::Transport;
use std::io::Read;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tl_backend::cuda::nccl;
use tl_syntax::Diagnostic;

/// A scratch folder removed when dropped: the launcher's socket and library link.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The last bytes a worker wrote to standard error, and the thread collecting them.
type StderrTail = (Arc<Mutex<Vec<u8>>>, std::thread::JoinHandle<()>);

/// A started worker and the tail of its standard error (ranks other than 0).
struct Running {
    child: Child,
    stderr: Option<StderrTail>,
    exited: bool,
}

/// Standard error kept per worker for the report when it fails.
const STDERR_TAIL: usize = 16 << 10;

fn launch_error(message: String, help: &str) -> Box<Diagnostic> {
    Box::new(Diagnostic::spanless("TL0406", message).with_help(help.to_string()))
}

/// The device each rank sees: entry `rank` of `$CUDA_VISIBLE_DEVICES` when set, else `rank`.
fn device_for(rank: usize) -> String {
    match std::env::var("CUDA_VISIBLE_DEVICES") {
        Ok(list) if !list.trim().is_empty() => list
            .split(',')
            .nth(rank)
            .map_or_else(|| rank.to_string(), |d| d.trim().to_string()),
        _ => rank.to_string(),
    }
}

/// Starts `world` workers with this process's arguments plus their rank, watches them until
/// all finish, and stops them all when one fails. Prints nothing itself on success.
pub fn launch(
    world: usize,
    transport: Transport,
    timeout: Duration,
) -> Result<(), Box<Diagnostic>> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!("tl-workers-{}-{stamp}", std::process::id()));
    let scratch_err = |e: std::io::Error| {
        launch_error(
            format!("cannot prepare the workers' folder {}: {e}", dir.display()),
            "check that the temporary folder ($TMPDIR) is writable",
        )
    };
    std::fs::create_dir_all(&dir).map_err(scratch_err)?;
    let scratch = Scratch(dir.clone());
    let mut library_path = std::env::var_os("LD_LIBRARY_PATH").unwrap_or_default();
    if transport == Transport::Nccl {
        let lib = nccl::find_library().map_err(|e| {
            Box::new(
                Diagnostic::spanless("TL0405", format!("`--gpus {world}`: {e}")).with_help(
                    "install NCCL (PyTorch's wheels bundle it as nvidia/nccl/lib/libnccl.so.2), \
                     or point TL_NCCL_LIBRARY at libnccl.so.2"
                        .to_string(),
                ),
            )
        })?;
        std::os::unix::fs::symlink(&lib, dir.join("libnccl.so")).map_err(scratch_err)?;
        let mut paths = vec![dir.clone()];
        paths.extend(std::env::split_paths(&library_path));
        library_path = std::env::join_paths(paths).map_err(|e| {
            launch_error(
                format!("cannot extend LD_LIBRARY_PATH: {e}"),
                "shorten LD_LIBRARY_PATH",
            )
        })?;
        eprintln!(
            "tl: data-parallel training on {world} GPUs (one worker each), NCCL from {}",
            lib.display()
        );
    } else {
        eprintln!("tl: data-parallel training on {world} CPU workers");
    }
    let socket = dir.join("coordinator.sock");
    let listener = UnixListener::bind(&socket).map_err(scratch_err)?;
    listener.set_nonblocking(true).map_err(scratch_err)?;
    let exe = std::env::current_exe().map_err(|e| {
        launch_error(
            format!("cannot find the tl executable: {e}"),
            "run tl from its install folder",
        )
    })?;
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let mut workers: Vec<Running> = Vec::with_capacity(world);
    for rank in 0..world {
        let mut cmd = Command::new(&exe);
        cmd.args(&args)
            .args(["--rank", &rank.to_string(), "--world", &world.to_string()])
            .arg("--coordinator")
            .arg(&socket)
            .args([
                "--transport",
                if transport == Transport::Nccl {
                    "nccl"
                } else {
                    "relay"
                },
            ])
            .env("NCCL_NVLS_ENABLE", "0")
            .env("LD_LIBRARY_PATH", &library_path)
            .stdin(Stdio::null());
        if transport == Transport::Nccl {
            cmd.env("CUDA_VISIBLE_DEVICES", device_for(rank));
        }
        if rank != 0 {
            cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        }
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                stop(&mut workers);
                return Err(launch_error(
                    format!("cannot start worker {rank}: {e}"),
                    "check the process limits of this machine",
                ));
            }
        };
        let stderr = child.stderr.take().map(|mut pipe| {
            let tail = Arc::new(Mutex::new(Vec::new()));
            let keep = tail.clone();
            let reader = std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let mut t = keep.lock().unwrap_or_else(|e| e.into_inner());
                    t.extend_from_slice(&buf[..n]);
                    let excess = t.len().saturating_sub(STDERR_TAIL);
                    t.drain(..excess);
                }
            });
            (tail, reader)
        });
        workers.push(Running {
            child,
            stderr,
            exited: false,
        });
    }
    let result = watch(&listener, &mut workers, world, timeout);
    drop(listener);
    drop(scratch);
    result
}

/// Kills every worker still running and waits for it.
fn stop(workers: &mut [Running]) {
    for w in workers.iter_mut().filter(|w| !w.exited) {
        let _ = w.child.kill();
        let _ = w.child.wait();
        w.exited = true;
    }
}

/// A worker's exit, if it has exited: `Ok(())` for success, else a description.
fn exited(w: &mut Running) -> Option<Result<(), String>> {
    if w.exited {
        return None;
    }
    match w.child.try_wait() {
        Ok(Some(status)) => {
            w.exited = true;
            Some(if status.success() {
                Ok(())
            } else {
                Err(match status.code() {
                    Some(c) => format!("exited with status {c}"),
                    None => "was killed by a signal".to_string(),
                })
            })
        }
        Ok(None) => None,
        Err(e) => {
            w.exited = true;
            Some(Err(format!("could not be watched: {e}")))
        }
    }
}

/// Stops all workers and reports rank `rank`'s failure, with its standard error.
fn failed(workers: &mut [Running], world: usize, rank: usize, what: String) -> Box<Diagnostic> {
    stop(workers);
    if let Some((tail, reader)) = workers.get_mut(rank).and_then(|w| w.stderr.take()) {
        let _ = reader.join();
        let text =
            String::from_utf8_lossy(&tail.lock().unwrap_or_else(|e| e.into_inner())).into_owned();
        for line in text.lines() {
            eprintln!("[rank {rank}] {line}");
        }
    }
    launch_error(
        format!("rank {rank} of {world} {what}; every rank was stopped"),
        "its own error is shown above; `--checkpoint DIR` saves the training so that \
         `--resume DIR` continues it",
    )
}

/// Accepts the workers' connections, relays and sums for them, and waits for them to finish.
fn watch(
    listener: &UnixListener,
    workers: &mut [Running],
    world: usize,
    timeout: Duration,
) -> Result<(), Box<Diagnostic>> {
    let mut streams: Vec<Option<UnixStream>> = (0..world).map(|_| None).collect();
    let mut done = vec![false; world];
    let began = Instant::now();
    loop {
        // Exits first, then connections: a worker connects before it can exit, so one that
        // exited before this drain of the queue is found in it.
        for rank in 0..world {
            match exited(&mut workers[rank]) {
                Some(Err(what)) => return Err(failed(workers, world, rank, what)),
                Some(Ok(())) => done[rank] = true,
                None => {}
            }
        }
        loop {
            match listener.accept() {
                Ok((mut s, _)) => {
                    let _ = s.set_nonblocking(false);
                    let _ = s.set_read_timeout(Some(timeout));
                    if let Ok(Frame::Hello(r)) = Frame::read(&mut s) {
                        if let Some(slot) = streams.get_mut(r as usize) {
                            let _ = s.set_read_timeout(None);
                            *slot = Some(s);
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    return Err(failed(
                        workers,
                        world,
                        0,
                        format!("could not connect ({e})"),
                    ))
                }
            }
        }
        if let Some(rank) = (0..world).find(|&r| done[r] && streams[r].is_none()) {
            let what = "finished without joining the run".to_string();
            return Err(failed(workers, world, rank, what));
        }
        if streams.iter().all(Option::is_some) {
            break;
        }
        if began.elapsed() > timeout {
            let rank = streams.iter().position(Option::is_none).unwrap_or(0);
            let what = format!("did not start within {} s", timeout.as_secs());
            return Err(failed(workers, world, rank, what));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let (tx, rx) = std::sync::mpsc::channel::<Event>();
    let mut writers = Vec::with_capacity(world);
    for (rank, s) in streams.into_iter().flatten().enumerate() {
        let reader = s
            .try_clone()
            .map_err(|e| failed(workers, world, rank, format!("lost its connection ({e})")))?;
        let tx = tx.clone();
        std::thread::spawn(move || read_frames(rank, reader, tx));
        writers.push(s);
    }
    drop(tx);
    let mut coordinator = Coordinator::new(writers, timeout);
    loop {
        if let Err(e) = coordinator.pump(&rx, Duration::from_millis(20)) {
            let (rank, what) = match &e {
                ReduceError::Lost { rank, detail } => (*rank, format!("stopped ({detail})")),
                ReduceError::Timeout { rank, .. }
                | ReduceError::Mismatch { rank, .. }
                | ReduceError::Transport { rank, .. }
                | ReduceError::Backend { rank, .. } => (*rank, format!("failed: {e}")),
            };
            // A rank that exited with an error (seen before the others are stopped) is the
            // better culprit than one whose connection closed.
            std::thread::sleep(Duration::from_millis(50));
            for r in 0..world {
                if let Some(Err(why)) = exited(&mut workers[r]) {
                    coordinator.shutdown();
                    return Err(failed(workers, world, r, why));
                }
            }
            coordinator.shutdown();
            return Err(failed(workers, world, rank, what));
        }
        for rank in 0..world {
            match exited(&mut workers[rank]) {
                Some(Ok(())) => done[rank] = true,
                Some(Err(what)) => {
                    coordinator.shutdown();
                    return Err(failed(workers, world, rank, what));
                }
                None => {}
            }
        }
        if done.iter().all(|&d| d) {
            return Ok(());
        }
    }
}
