//! How a pairwise contraction's labels divide up, the same for every backend: which labels are
//! summed out of one operand before the join, the extent of each label, the output's shape, and
//! the batch / row / column groups of the batched matrix product.

use crate::check::{check_labels, shape_err};
use crate::error::Result;

/// The validated labels of `out[out_labels] = Σ a[a_labels] · b[b_labels]`.
pub(crate) struct Pairwise {
    /// Extent of each output axis.
    pub out_shape: Vec<usize>,
    /// Labels only the first operand has and the output lacks (summed out first).
    pub a_drop: Vec<u32>,
    /// Labels only the second operand has and the output lacks.
    pub b_drop: Vec<u32>,
    extents: Vec<(u32, usize)>,
}

impl Pairwise {
    /// Checks the label lists (no repeats, one per axis, shared labels of equal extent, output
    /// labels present in an operand) and classifies them.
    pub fn new(
        a_shape: &[usize],
        a_labels: &[u32],
        b_shape: &[usize],
        b_labels: &[u32],
        out_labels: &[u32],
    ) -> Result<Self> {
        check_labels("first operand", a_labels, a_shape.len())?;
        check_labels("second operand", b_labels, b_shape.len())?;
        check_labels("output", out_labels, out_labels.len())?;
        let mut extents: Vec<(u32, usize)> = a_labels
            .iter()
            .copied()
            .zip(a_shape.iter().copied())
            .collect();
        for (&l, &e) in b_labels.iter().zip(b_shape) {
            match extents.iter().find(|(x, _)| *x == l) {
                Some(&(_, ea)) if ea != e => {
                    return Err(shape_err(
                        "contract",
                        format!(
                            "label {l} has extent {ea} in the first operand and {e} in the second"
                        ),
                    ));
                }
                Some(_) => {}
                None => extents.push((l, e)),
            }
        }
        let lookup = |l: u32| extents.iter().find(|(x, _)| *x == l).map(|&(_, e)| e);
        let out_shape = out_labels
            .iter()
            .map(|&l| {
                lookup(l).ok_or_else(|| {
                    shape_err(
                        "contract",
                        format!("output label {l} is in neither operand"),
                    )
                })
            })
            .collect::<Result<Vec<usize>>>()?;
        let only = |mine: &[u32], other: &[u32]| -> Vec<u32> {
            mine.iter()
                .copied()
                .filter(|l| !out_labels.contains(l) && !other.contains(l))
                .collect()
        };
        Ok(Pairwise {
            out_shape,
            a_drop: only(a_labels, b_labels),
            b_drop: only(b_labels, a_labels),
            extents,
        })
    }

    /// The extent of a label of either operand.
    pub fn extent(&self, l: u32) -> Option<usize> {
        self.extents.iter().find(|(x, _)| *x == l).map(|&(_, e)| e)
    }
}

/// The output labels in both operands (batch), only in the first (rows) and only in the second
/// (columns), each in output order; `la`/`lb` are the operands' labels after the drops.
pub(crate) fn groups(la: &[u32], lb: &[u32], out: &[u32]) -> (Vec<u32>, Vec<u32>, Vec<u32>) {
    let pick = |in_a: bool, in_b: bool| -> Vec<u32> {
        out.iter()
            .copied()
            .filter(|l| la.contains(l) == in_a && lb.contains(l) == in_b)
            .collect()
    };
    (pick(true, true), pick(true, false), pick(false, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_divide_into_drops_and_groups() {
        // b i j, b j k, x only in a, y only in b -> out b i k
        let pw = Pairwise::new(
            &[2, 3, 4, 5],
            &[0, 1, 2, 9],
            &[2, 4, 6, 7],
            &[0, 2, 3, 8],
            &[0, 1, 3],
        );
        let pw = match pw {
            Ok(p) => p,
            Err(e) => panic!("valid labels rejected: {e}"),
        };
        assert_eq!(pw.out_shape, vec![2, 3, 6]);
        assert_eq!((pw.a_drop.clone(), pw.b_drop.clone()), (vec![9], vec![8]));
        assert_eq!(
            groups(&[0, 1, 2], &[0, 2, 3], &[0, 1, 3]),
            (vec![0], vec![1], vec![3])
        );
        assert!(Pairwise::new(&[2], &[0], &[3], &[0], &[0]).is_err());
        assert!(Pairwise::new(&[2], &[0], &[2], &[1], &[5]).is_err());
    }
}
