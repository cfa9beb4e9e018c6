//! The six comparisons, once for every stage: the parser reads them, the checker and the
//! planner carry them, the tuple engine tests element indices with them, Soufflé's computed
//! rules test numbers and symbols, and the GPU's path kernels test pairs in C.

/// A comparison between two values, `a op b`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Compare {
    /// `==` (Soufflé's `=`)
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl Compare {
    /// Whether `a op b` holds, for any ordered values (element indices and numbers by value,
    /// symbols by text).
    pub fn holds<T: PartialOrd + ?Sized>(self, a: &T, b: &T) -> bool {
        match self {
            Compare::Eq => a == b,
            Compare::Ne => a != b,
            Compare::Lt => a < b,
            Compare::Le => a <= b,
            Compare::Gt => a > b,
            Compare::Ge => a >= b,
        }
    }

    /// The comparison with its operands swapped (`a < b` is `b > a`).
    pub fn flipped(self) -> Compare {
        match self {
            Compare::Lt => Compare::Gt,
            Compare::Le => Compare::Ge,
            Compare::Gt => Compare::Lt,
            Compare::Ge => Compare::Le,
            same => same,
        }
    }

    /// The operator as written in TensorLogic and in C.
    pub fn symbol(self) -> &'static str {
        match self {
            Compare::Eq => "==",
            Compare::Ne => "!=",
            Compare::Lt => "<",
            Compare::Le => "<=",
            Compare::Gt => ">",
            Compare::Ge => ">=",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons_hold_and_flip() {
        let all = [
            Compare::Eq,
            Compare::Ne,
            Compare::Lt,
            Compare::Le,
            Compare::Gt,
            Compare::Ge,
        ];
        for op in all {
            for (a, b) in [(1u32, 2u32), (2, 2), (3, 2)] {
                assert_eq!(op.holds(&a, &b), op.flipped().holds(&b, &a), "{op:?}");
            }
        }
        assert!(Compare::Lt.holds("ab", "b") && Compare::Ge.holds(&2.5, &2.5));
        assert_eq!(Compare::Le.symbol(), "<=");
    }
}
