//! The inputs of the kernels that are not an [`ActionProblem`](crate::backend::problem::ActionProblem)
//! or a graph: what every backend reads, so neither twin owns it.

use crate::rng::{Permutation, Stream};

/// The items of the explanatory-power test, as the kernel reads them: `values` permuted over the
/// states and, with `y_i = (V[π a_i] − V[π b_i]) / σ_i`, two sums per resample, `Σ x̃_i y_i` and
/// `Σ y_i²`.
#[derive(Debug, Clone)]
pub struct ResampleJob {
    /// The two compact states of each pair.
    pub ends: Vec<[u32; 2]>,
    /// `x̃_i`.
    pub standardized: Vec<f64>,
    /// `1 / σ_i`.
    pub inv_sigma: Vec<f64>,
    /// The potential of each compact state.
    pub values: Vec<f64>,
}

impl ResampleJob {
    /// Items of the kernel (pairs).
    pub fn items(&self) -> usize {
        self.ends.len()
    }

    /// The two sums of resample `r`.
    pub fn statistic(&self, stream: &Stream, r: u32) -> [f64; 2] {
        // The permuted values of every state once (the kernel's first pass).
        let perm = Permutation::new(self.values.len() as u32);
        let permuted: Vec<f64> = (0..perm.n)
            .map(|x| self.values[perm.apply(stream, r, x) as usize])
            .collect();
        let (mut sxy, mut syy) = (0.0, 0.0);
        for (i, &[a, b]) in self.ends.iter().enumerate() {
            let y = (permuted[a as usize] - permuted[b as usize]) * self.inv_sigma[i];
            sxy += self.standardized[i] * y;
            syy += y * y;
        }
        [sxy, syy]
    }

    /// Scale of each sum (the sum of the absolute values of its terms, bounded by
    /// Cauchy–Schwarz) for `statistic`'s value `s`: `√(Σx̃² · Σy²)` and `Σy²`; what the CPU–GPU
    /// tolerance is relative to.
    pub fn scale(&self, s: [f64; 2]) -> [f64; 2] {
        let sxx: f64 = self.standardized.iter().map(|x| x * x).sum();
        [(sxx * s[1]).sqrt(), s[1]]
    }
}

/// A job on `items` pairs over `items / 3 + 2` states, with values from a fixed Philox stream:
/// the input of the CPU–GPU agreement tests and the benchmarks.
pub fn synthetic_job(items: u32) -> ResampleJob {
    let s = Stream::new(5, crate::rng::Purpose::Split);
    let unit = |i: u32, j: u32| f64::from(s.block(i, j, 0)[0]) / 4_294_967_296.0;
    let states = items / 3 + 2;
    ResampleJob {
        ends: (0..items)
            .map(|i| [i % states, (i * 7 + 1) % states])
            .collect(),
        standardized: (0..items).map(|i| 2.0 * unit(i, 5) - 0.5).collect(),
        inv_sigma: (0..items).map(|i| 0.5 + unit(i, 6)).collect(),
        values: (0..states).map(|f| 3.0 * unit(f, 7) - 1.5).collect(),
    }
}
