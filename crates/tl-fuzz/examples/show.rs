//! Prints the program the `structured` fuzz target makes of a file of bytes (a corpus entry or
//! a finding): `cargo run --release -p tl-fuzz --example show -- fuzz/artifacts/structured/X`;
//! with `--souffle` first, the Soufflé program the `souffle` target makes.

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let souffle = args.first().is_some_and(|a| a == "--souffle");
    if souffle {
        args.remove(0);
    }
    let Some(path) = args.first().cloned() else {
        eprintln!("usage: show [--souffle] FILE");
        std::process::exit(2);
    };
    match std::fs::read(&path) {
        Ok(bytes) if souffle => print!("{}", tl_fuzz::souffle::program(&bytes)),
        Ok(bytes) => print!("{}", tl_fuzz::generate::program(&bytes)),
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(1);
        }
    }
}
