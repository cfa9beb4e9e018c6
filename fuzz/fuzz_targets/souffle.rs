//! Bytes as the choices of the Soufflé generator: programs with arithmetic, aggregates and
//! negation, through the settling runs and then every phase.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = tl_fuzz::souffle::program(data);
    let scratch = std::env::temp_dir().join("tl-fuzz-souffle");
    let _ = std::fs::create_dir_all(&scratch);
    if let Err(finding) = tl_fuzz::pipeline::run_souffle(&text, &scratch) {
        panic!("{finding}\nprogram:\n{text}");
    }
});
