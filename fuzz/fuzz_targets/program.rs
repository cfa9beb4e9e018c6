//! Any bytes as program text (lossily decoded), through parse, check, plan and run.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let scratch = std::env::temp_dir().join("tl-fuzz-program");
    let _ = std::fs::create_dir_all(&scratch);
    if let Err(finding) = tl_fuzz::pipeline::run(&text, &scratch) {
        panic!("{finding}\nprogram:\n{text}");
    }
});
