//! The logic benchmark's workloads in Ascent, one whole process per measurement.
//!
//! Usage: ascent_peer <tc|sg> <seq|par> <edges.csv>
//!
//! Reads the edge CSV (one `a,b` edge of non-negative integer node ids per line, no header; `#`
//! lines are comments), runs the program (`seq`: `ascent!`, `par`: `ascent_par!` on rayon's global
//! pool, sized by RAYON_NUM_THREADS) and prints the number of tuples of the result relation on
//! stdout. Phase timings go to stderr.
//!
//!   tc: reach(x, y) <-- edge(x, y);  reach(x, z) <-- reach(x, y), edge(y, z);
//!   sg: sg(x, y) <-- edge(p, x), edge(p, y), if x != y;
//!       sg(x, y) <-- sg(a, b), edge(a, x), edge(b, y);
//!
//! The recursive SG body lists `sg` first (TL's program lists `Edge(a, x)` first): Ascent
//! evaluates a body left to right, iterating the first atom and looking the later ones up in
//! indices, so each round starts from the new `sg` tuples rather than from every edge.

use std::time::Instant;

use ascent::{ascent, ascent_par};

type Node = u32;

ascent! {
    struct TcSeq;
    relation edge(Node, Node);
    relation reach(Node, Node);
    reach(x, y) <-- edge(x, y);
    reach(x, z) <-- reach(x, y), edge(y, z);
}

ascent_par! {
    struct TcPar;
    relation edge(Node, Node);
    relation reach(Node, Node);
    reach(x, y) <-- edge(x, y);
    reach(x, z) <-- reach(x, y), edge(y, z);
}

ascent! {
    struct SgSeq;
    relation edge(Node, Node);
    relation sg(Node, Node);
    sg(x, y) <-- edge(p, x), edge(p, y), if x != y;
    sg(x, y) <-- sg(a, b), edge(a, x), edge(b, y);
}

ascent_par! {
    struct SgPar;
    relation edge(Node, Node);
    relation sg(Node, Node);
    sg(x, y) <-- edge(p, x), edge(p, y), if x != y;
    sg(x, y) <-- sg(a, b), edge(a, x), edge(b, y);
}

fn read_edges(path: &str) -> Vec<(Node, Node)> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| die(&format!("{path}: {e}")));
    let mut edges = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parse = |s: Option<&str>| -> Node {
            s.and_then(|s| s.trim().parse().ok()).unwrap_or_else(|| {
                die(&format!(
                    "{path}:{}: expected `a,b` with integer ids",
                    i + 1
                ))
            })
        };
        let mut cols = line.split(',');
        let (a, b) = (parse(cols.next()), parse(cols.next()));
        edges.push((a, b));
    }
    edges
}

fn die(msg: &str) -> ! {
    eprintln!("ascent_peer: {msg}");
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 3 {
        die("usage: ascent_peer <tc|sg> <seq|par> <edges.csv>");
    }
    let (workload, variant, path) = (args[0].as_str(), args[1].as_str(), args[2].as_str());
    let t0 = Instant::now();
    let edges = read_edges(path);
    let t_read = t0.elapsed();
    let t1 = Instant::now();
    let count = match (workload, variant) {
        ("tc", "seq") => {
            let mut p = TcSeq::default();
            p.edge = edges.into_iter().collect();
            p.run();
            p.reach.len()
        }
        ("tc", "par") => {
            let mut p = TcPar::default();
            p.edge = edges.into_iter().collect();
            p.run();
            p.reach.len()
        }
        ("sg", "seq") => {
            let mut p = SgSeq::default();
            p.edge = edges.into_iter().collect();
            p.run();
            p.sg.len()
        }
        ("sg", "par") => {
            let mut p = SgPar::default();
            p.edge = edges.into_iter().collect();
            p.run();
            p.sg.len()
        }
        _ => die(&format!(
            "unknown workload/variant {workload}/{variant} (tc|sg, seq|par)"
        )),
    };
    let t_run = t1.elapsed();
    let threads = if variant == "par" {
        rayon::current_num_threads()
    } else {
        1
    };
    eprintln!(
        "ascent_peer {workload} {variant}: threads {threads}, read {:.3} s, run {:.3} s",
        t_read.as_secs_f64(),
        t_run.as_secs_f64()
    );
    println!("{count}");
}
