//! Prints the program the `structured` fuzz target makes of a file of bytes (a corpus entry or
//! a finding): `cargo run --release -p tl-fuzz --example show -- fuzz/artifacts/structured/X`.

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: show FILE");
        std::process::exit(2);
    };
    match std::fs::read(&path) {
        Ok(bytes) => print!("{}", tl_fuzz::generate::program(&bytes)),
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(1);
        }
    }
}
