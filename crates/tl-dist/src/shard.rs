//! How a batch is shared among the ranks.

use std::ops::Range;

/// The examples rank `rank` of `world` takes from a batch of `len`: a contiguous range, the
/// first `len % world` ranks one example longer than the others.
pub fn shard(len: usize, rank: usize, world: usize) -> Range<usize> {
    let world = world.max(1);
    let (base, extra) = (len / world, len % world);
    let start = rank * base + rank.min(extra);
    let size = base + usize::from(rank < extra);
    start.min(len)..(start + size).min(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_the_batch_in_order_and_differ_by_at_most_one() {
        for len in 0..40 {
            for world in 1..9 {
                let mut next = 0;
                let mut sizes = Vec::new();
                for rank in 0..world {
                    let r = shard(len, rank, world);
                    assert_eq!(r.start, next, "len {len} world {world} rank {rank}");
                    next = r.end;
                    sizes.push(r.len());
                }
                assert_eq!(next, len);
                let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
                assert!(hi - lo <= 1, "{sizes:?}");
                assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "{sizes:?}");
            }
        }
    }
}
