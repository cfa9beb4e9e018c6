use super::*;
use crate::Calls;

#[test]
fn open_never_panics() {
    match CudaBackend::open() {
        Ok(be) => assert!(be.name().starts_with("cuda:0")),
        Err(why) => assert!(!why.to_string().is_empty()),
    }
}

#[test]
fn memory_report_line() {
    let s = MemoryStats {
        in_use: 3 << 20,
        peak: 5 << 20,
        reserved: 6 << 20,
        allocations: 200,
        cache_hits: 150,
        driver_allocations: 50,
    };
    assert_eq!(
        format_memory_stats(&s),
        "in use 3.0 MiB, peak 5.0 MiB, reserved 6.0 MiB, allocations 200, cache hits 150 \
             (75.0% hit rate), driver allocations 50"
    );
    let empty = MemoryStats {
        in_use: 0,
        peak: 0,
        reserved: 0,
        allocations: 0,
        cache_hits: 0,
        driver_allocations: 0,
    };
    assert!(format_memory_stats(&empty).contains("(0.0% hit rate)"));
}

#[test]
fn cache_dir_follows_the_environment() {
    if std::env::var_os("TL_PTX_CACHE").is_none() {
        if let Some(d) = ptx_cache_dir() {
            assert!(d.ends_with("tensorlogic/ptx"));
        }
    }
}
