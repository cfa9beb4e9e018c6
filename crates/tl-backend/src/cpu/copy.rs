//! Gathering strided views into fresh row-major buffers: plain strided row copies, and a
//! tiled path for transposed views, where walking the output row by row would touch a new
//! cache line of the source for every element.

use crate::tensor::Layout;
use rayon::prelude::*;

/// Element counts above which copies run in parallel.
const PAR_COPY: usize = 1 << 16;
/// Output rows per band of a transposing copy: each visit to a source page reads this many
/// contiguous elements, so page walks (costly in a VM) are amortised.
const TILE: usize = 128;
/// Output columns per tile: 64 source pages and `TILE` output pages in flight stay within
/// the TLB, and the `TILE × TILE_J` buffer within L1.
const TILE_J: usize = 64;

/// Merges axes that step through memory as one (and drops extent-1 axes), so copies run
/// long inner loops. Returns (shape, strides), never empty.
pub(crate) fn coalesce(shape: &[usize], strides: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let mut sh: Vec<usize> = Vec::with_capacity(shape.len());
    let mut st: Vec<usize> = Vec::with_capacity(shape.len());
    for (&n, &s) in shape.iter().zip(strides) {
        if n == 1 {
            continue;
        }
        match (sh.last_mut(), st.last_mut()) {
            (Some(pn), Some(ps)) if *ps == s * n => {
                *pn *= n;
                *ps = s;
            }
            _ => {
                sh.push(n);
                st.push(s);
            }
        }
    }
    if sh.is_empty() {
        sh.push(1);
        st.push(1);
    }
    (sh, st)
}

/// Copies the elements a layout addresses (row-major order) out of `src`, converting each
/// with `f`. The layout must have passed [`check_layout`].
pub(crate) fn strided_collect<S: Copy + Sync, T: Copy + Send + Default>(
    src: &[S],
    layout: &Layout,
    f: impl Fn(S) -> T + Sync,
) -> Vec<T> {
    let numel = layout.numel();
    let mut out = vec![T::default(); numel];
    if numel == 0 {
        return out;
    }
    let (shape, strides) = coalesce(&layout.shape, &layout.strides);
    let rank = shape.len();
    if rank >= 2 && strides[rank - 1] != 1 && strides[rank - 2] == 1 {
        transpose_collect(src, layout.offset, &shape, &strides, &mut out, &f);
        return out;
    }
    let inner = shape[rank - 1];
    let inner_stride = strides[rank - 1];
    let rows_per_chunk = (PAR_COPY / inner).max(1);
    let fill = |(ci, chunk): (usize, &mut [T])| {
        // Multi-index of the first row of this chunk over the outer axes.
        let mut idx = vec![0usize; rank];
        let mut row = ci * rows_per_chunk;
        for a in (0..rank - 1).rev() {
            idx[a] = row % shape[a];
            row /= shape[a];
        }
        let mut base: usize = layout.offset
            + idx[..rank - 1]
                .iter()
                .zip(&strides)
                .map(|(i, s)| i * s)
                .sum::<usize>();
        for out_row in chunk.chunks_mut(inner) {
            if inner_stride == 1 {
                for (o, &x) in out_row.iter_mut().zip(&src[base..base + inner]) {
                    *o = f(x);
                }
            } else {
                for (j, o) in out_row.iter_mut().enumerate() {
                    *o = f(src[base + j * inner_stride]);
                }
            }
            // Advance the outer multi-index by one row.
            let mut a = rank - 1;
            while a > 0 {
                a -= 1;
                idx[a] += 1;
                base += strides[a];
                if idx[a] < shape[a] {
                    break;
                }
                base -= strides[a] * shape[a];
                idx[a] = 0;
            }
        }
    };
    if numel >= PAR_COPY && numel / inner > 1 {
        out.par_chunks_mut(rows_per_chunk * inner)
            .enumerate()
            .for_each(fill);
    } else {
        out.chunks_mut(rows_per_chunk * inner)
            .enumerate()
            .for_each(fill);
    }
    out
}

/// The copy for layouts whose last two (coalesced) axes are transposed: the second-to-last
/// steps by 1 in the source, the last by a larger stride. Copies `TILE × TILE` tiles so both
/// the reads and the writes stay within a few cache lines at a time.
fn transpose_collect<S: Copy + Sync, T: Copy + Send + Default>(
    src: &[S],
    offset: usize,
    shape: &[usize],
    strides: &[usize],
    out: &mut [T],
    f: &(impl Fn(S) -> T + Sync),
) {
    let rank = shape.len();
    let (n0, n1, s1) = (shape[rank - 2], shape[rank - 1], strides[rank - 1]);
    // One task per band of TILE output rows within one slab (outer index).
    let band = |(bi, chunk): (usize, &mut [T])| {
        let bands_per_slab = n0.div_ceil(TILE);
        let (slab, b) = (bi / bands_per_slab, bi % bands_per_slab);
        let mut base = offset;
        let mut rem = slab;
        for a in (0..rank - 2).rev() {
            base += (rem % shape[a]) * strides[a];
            rem /= shape[a];
        }
        let i0 = b * TILE;
        let rows = chunk.len() / n1;
        // Each source run (a column of the tile) and each output row segment is read or
        // written once in full; writing straight to the strided output rows instead would
        // revisit lines 4 KiB apart, which collide in the same L1 set.
        let mut tile = [[T::default(); TILE_J]; TILE];
        for j0 in (0..n1).step_by(TILE_J) {
            let jn = TILE_J.min(n1 - j0);
            for (jj, c) in (j0..j0 + jn).enumerate() {
                let col = base + c * s1 + i0;
                for (t, &x) in tile.iter_mut().zip(&src[col..col + rows]) {
                    t[jj] = f(x);
                }
            }
            for (i, t) in tile.iter().enumerate().take(rows) {
                chunk[i * n1 + j0..i * n1 + j0 + jn].copy_from_slice(&t[..jn]);
            }
        }
    };
    // Split the output into bands that never cross a slab boundary.
    let slabs: Vec<&mut [T]> = out.chunks_mut(n0 * n1).collect();
    let bands = slabs.into_iter().flat_map(|s| s.chunks_mut(TILE * n1));
    if out_len(shape) >= PAR_COPY {
        bands.enumerate().par_bridge().for_each(band);
    } else {
        bands.enumerate().for_each(band);
    }
}

/// The element count of a shape.
fn out_len(shape: &[usize]) -> usize {
    shape.iter().product()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::fixtures::{ravel, unravel, Rng};

    /// Every permutation of a few shapes (small, and large enough for the parallel paths)
    /// copies to the same elements as a naive index walk.
    #[test]
    fn permuted_copies_match_naive() {
        let mut rng = Rng::new(41);
        for shape in [&[3usize, 37, 65, 5][..], &[300, 257], &[2, 129, 300]] {
            let n: usize = shape.iter().product();
            let data: Vec<u32> = (0..n as u32).collect();
            for _ in 0..6 {
                let perm = rng.perm(shape.len());
                let view = Layout::contiguous(shape).permuted(&perm);
                let got = strided_collect(&data, &view, |x| x);
                for (i, &g) in got.iter().enumerate() {
                    let idx = unravel(i, &view.shape);
                    let mut src = vec![0; shape.len()];
                    for (k, &p) in perm.iter().enumerate() {
                        src[p] = idx[k];
                    }
                    assert_eq!(g, data[ravel(&src, shape)], "{shape:?} {perm:?} at {i}");
                }
            }
        }
    }
}
