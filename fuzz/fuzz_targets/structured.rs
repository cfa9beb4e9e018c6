//! Bytes as the choices of the grammar-aware generator: programs that mostly parse and check,
//! so the planner and the engine are exercised.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = tl_fuzz::generate::program(data);
    let scratch = std::env::temp_dir().join("tl-fuzz-structured");
    let _ = std::fs::create_dir_all(&scratch);
    if let Err(finding) = tl_fuzz::pipeline::run(&text, &scratch) {
        panic!("{finding}\nprogram:\n{text}");
    }
});
