//! Ctrl-C and `kill` (SIGINT, SIGTERM). While a program trains, the first one asks the
//! training loop to stop after its current step ([`tl_run::interrupt`]): it saves a checkpoint,
//! the log and the plot, and the run ends saying how to resume. A second one, or one that
//! arrives while nothing trains, ends the process at once with status 128 + the signal's
//! number, as a shell reports a process killed by it.

/// Installs the handlers (on Unix; elsewhere the system's defaults stay).
pub fn install() {
    #[cfg(unix)]
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // SAFETY: the handler only reads and writes atomics and calls `_exit`, all of which
        // are safe in a signal handler.
        let registered = unsafe {
            signal_hook::low_level::register(sig, move || {
                if !tl_run::interrupt::request_stop() {
                    signal_hook::low_level::exit(128 + sig);
                }
            })
        };
        // Without a handler the signal keeps its default action (ending the process), which
        // loses only the clean stop.
        let _ = registered;
    }
}

/// Where an interrupted run saves its checkpoint when `--checkpoint` names no folder:
/// `<program name>.checkpoint` in the current folder.
pub fn default_checkpoint(program: &std::path::Path) -> std::path::PathBuf {
    let stem = program
        .file_stem()
        .map_or_else(|| "run".into(), |s| s.to_string_lossy().into_owned());
    std::path::PathBuf::from(format!("{stem}.checkpoint"))
}
