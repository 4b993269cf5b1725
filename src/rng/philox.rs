//! Philox4x32-10 (Salmon et al., SC'11; Random123) and the draws derived from it. The blocks and
//! the keyed permutation are bit for bit the same as shaders/philox.wgsl; the binomials are drawn
//! on the host only (random halves, bootstrap).
//!
//! Philox is counter-based: a block of four u32 is a pure function of a 128-bit counter and a
//! 64-bit key, so draw `(item, resample, j)` is the same whichever thread, invocation or backend
//! computes it, and in whatever order. Every derived draw below uses only integer arithmetic
//! (u32 and u64; the shader emulates u64 products with pairs of u32), so the GPU reproduces the
//! CPU's draws exactly, not within a tolerance.

/// Philox multipliers and Weyl key increments (Random123's `PHILOX_M4x32_*`, `PHILOX_W32_*`).
const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// The 64-bit product `a · b` as `(hi, lo)`.
fn mulhilo(a: u32, b: u32) -> (u32, u32) {
    let p = u64::from(a) * u64::from(b);
    ((p >> 32) as u32, p as u32)
}

/// Philox4x32 with 10 rounds: the block of counter `ctr` under `key`.
pub fn philox4x32_10(mut ctr: [u32; 4], mut key: [u32; 2]) -> [u32; 4] {
    for round in 0..10 {
        if round > 0 {
            key = [key[0].wrapping_add(W0), key[1].wrapping_add(W1)];
        }
        let (hi0, lo0) = mulhilo(M0, ctr[0]);
        let (hi1, lo1) = mulhilo(M1, ctr[2]);
        ctr = [hi1 ^ ctr[1] ^ key[0], lo1, hi0 ^ ctr[3] ^ key[1], lo0];
    }
    ctr
}

/// What a stream is drawn for; mixed into the key so that the tests of one seed use
/// independent streams. Kept in sync with nothing on the GPU: the host passes the key. Values 1
/// and 2 belonged to the retired sign-flip and parametric tests; the others keep their numbers,
/// so a seed draws what it drew before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Purpose {
    Permutation = 3,
    Bootstrap = 4,
    /// The random half of the records (held-out check, cross-fitted explanatory power).
    Split = 5,
    /// The folds of `--l2 auto`'s cross-validation.
    Fold = 6,
    /// The probe vectors of the posterior variances' estimator.
    Probe = 7,
    /// The verdict's resampled splits: the seed of one stream per (pair, resample).
    Verdict = 8,
}

/// A Philox stream: the key `(seed, purpose)`; counters are chosen by each draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stream {
    pub key: [u32; 2],
}

impl Stream {
    /// Key `[seed_lo, seed_hi ⊕ purpose · W0]`: distinct purposes of one seed get distinct keys.
    pub fn new(seed: u64, purpose: Purpose) -> Self {
        let tag = (purpose as u32).wrapping_mul(W0);
        Stream {
            key: [seed as u32, (seed >> 32) as u32 ^ tag],
        }
    }

    /// The block of counter `[item, resample, j, 0]`.
    pub fn block(&self, item: u32, resample: u32, j: u32) -> [u32; 4] {
        self.block_in_lane(item, resample, j, 0)
    }

    /// The block of counter `[item, resample, j, lane]` (lanes above 0: host-only draws).
    fn block_in_lane(&self, item: u32, resample: u32, j: u32, lane: u32) -> [u32; 4] {
        philox4x32_10([item, resample, j, lane], self.key)
    }

    /// The `k`-th u32 of the draws of `(item, resample)`: word `k % 4` of block `k / 4`.
    pub fn word(&self, item: u32, resample: u32, k: u32) -> u32 {
        self.block(item, resample, k / 4)[(k % 4) as usize]
    }
}

/// Counts up to this many trials are drawn exactly, one Bernoulli comparison per trial; larger
/// ones by the normal approximation of [`BinomialParams`].
pub const EXACT_TRIALS: u32 = 64;
/// Largest number of trials of one binomial draw (`mean · 2³²` must fit a u64).
pub const MAX_TRIALS: u64 = 1 << 31;

/// A binomial `Bin(m, p)` prepared for an integer-only draw.
///
/// - `m ≤ EXACT_TRIALS`: the number of the `m` words `u_k` of the draw below `threshold =
///   ⌊p · 2³²⌋` — exact up to the quantisation of `p` to 2⁻³².
/// - larger `m`: `round(m p + sd · Z)` clamped to `[0, m]`, with `Z` the Irwin–Hall sum of
///   twelve 16-bit uniforms minus 6 (mean 0, variance 1, |Z| ≤ 6), in 32.32 fixed point:
///   `mean_fix = round(m p · 2³²)`, `sd_fix = round(sd · 2¹⁶)`, `Z · 2¹⁶` an integer. Its error
///   is that of the normal approximation (skewness `(1−2p)/sd`), which `m > 64` and the
///   statistic's sum over many pairs keep small.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BinomialParams {
    pub trials: u32,
    pub threshold: u32,
    pub mean_lo: u32,
    pub mean_hi: u32,
    pub sd_fix: u32,
}

impl BinomialParams {
    /// `Bin(m, p)` for `m ≤ MAX_TRIALS`, `0 ≤ p ≤ 1`.
    pub fn new(m: u64, p: f64) -> Self {
        assert!(m <= MAX_TRIALS, "binomial trials {m} above {MAX_TRIALS}");
        let p = p.clamp(0.0, 1.0);
        let scale = 4_294_967_296.0;
        let threshold = (p * scale).floor().min(u32::MAX as f64) as u32;
        let mean = (m as f64 * p * scale).round() as u64;
        let sd = (m as f64 * p * (1.0 - p)).sqrt();
        BinomialParams {
            trials: m as u32,
            threshold,
            mean_lo: mean as u32,
            mean_hi: (mean >> 32) as u32,
            sd_fix: (sd * 65_536.0).round().min(u32::MAX as f64) as u32,
        }
    }

    /// The draw of `(item, resample)` from `stream`.
    pub fn draw(&self, stream: &Stream, item: u32, resample: u32) -> u32 {
        self.draw_in_lane(stream, item, resample, 0)
    }

    fn draw_in_lane(&self, stream: &Stream, item: u32, resample: u32, lane: u32) -> u32 {
        let m = self.trials;
        let block = |j| stream.block_in_lane(item, resample, j, lane);
        if m <= EXACT_TRIALS {
            let mut successes = 0;
            for j in 0..m.div_ceil(4) {
                let block = block(j);
                for (k, &u) in block.iter().enumerate() {
                    if 4 * j + (k as u32) < m && u < self.threshold {
                        successes += 1;
                    }
                }
            }
            return successes;
        }
        let mut sum: u32 = 0;
        for j in 0..3 {
            sum += block(j).iter().map(|u| u >> 16).sum::<u32>();
        }
        let z = i64::from(sum) - 6 * 65_536;
        let mean = (u64::from(self.mean_hi) << 32) | u64::from(self.mean_lo);
        let product = u64::from(self.sd_fix) * z.unsigned_abs();
        let half = 1u64 << 31;
        let total = if z >= 0 {
            mean + half + product
        } else {
            (mean + half).saturating_sub(product)
        };
        ((total >> 32) as u32).min(m)
    }
}

/// A draw of `Bin(n, p)` for any `n` (host only): pieces of at most [`MAX_TRIALS`] trials, piece
/// `k` from lane `k` (the last counter word) of `(item, resample)`.
pub fn binomial(stream: &Stream, n: u64, p: f64, item: u32, resample: u32) -> u64 {
    let mut drawn = 0;
    let (mut left, mut lane) = (n, 0);
    while left > 0 {
        let trials = left.min(MAX_TRIALS);
        let piece = BinomialParams::new(trials, p);
        drawn += u64::from(piece.draw_in_lane(stream, item, resample, lane));
        left -= trials;
        lane += 1;
    }
    drawn
}

/// A keyed pseudo-random permutation of `0..n` (a balanced Feistel network of
/// [`FEISTEL_ROUNDS`] rounds on `2h` bits, `4^h ≥ n`, round function the first word of a Philox
/// block, cycle-walking back into `0..n`). Each image costs O(1) and needs no shuffled array, so
/// every GPU invocation can permute its own items. Four rounds with a pseudo-random round
/// function are indistinguishable from a uniformly random permutation when the halves are wide
/// (Luby & Rackoff 1988), but not on tiny domains: with four rounds the position of one element
/// among 8 was measurably non-uniform (χ² = 39, 7 df); eight rounds pass the tests below.
#[derive(Debug, Clone, Copy)]
pub struct Permutation {
    pub n: u32,
    pub half_bits: u32,
}

/// Cap on cycle-walking steps (each step leaves `0..n` with probability < 3/4, so the cap is
/// reached with probability < 10⁻³¹); kept in sync with `MAX_WALK` in shaders/philox.wgsl.
pub const MAX_WALK: u32 = 256;
/// Feistel rounds; shaders/philox.wgsl writes this many out in `permute`.
pub const FEISTEL_ROUNDS: u32 = 8;

impl Permutation {
    pub fn new(n: u32) -> Self {
        let mut half_bits = 1;
        while half_bits < 16 && (1u64 << (2 * half_bits)) < u64::from(n) {
            half_bits += 1;
        }
        Permutation { n, half_bits }
    }

    /// The image of `x < n` under the permutation of resample `resample`.
    pub fn apply(&self, stream: &Stream, resample: u32, mut x: u32) -> u32 {
        let h = self.half_bits;
        let mask = (1u32 << h) - 1;
        for _ in 0..MAX_WALK {
            let (mut left, mut right) = (x >> h, x & mask);
            for round in 0..FEISTEL_ROUNDS {
                let f = stream.block(right, resample, round)[0] & mask;
                (left, right) = (right, left ^ f);
            }
            x = (left << h) | right;
            if x < self.n {
                break;
            }
        }
        x.min(self.n - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random123 tests/kat_vectors, the three `philox4x32 10` lines (counter, key, result).
    #[test]
    fn random123_known_answers() {
        let cases = [
            (
                [0; 4],
                [0; 2],
                [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8],
            ),
            (
                [u32::MAX; 4],
                [u32::MAX; 2],
                [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd],
            ),
            (
                [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
                [0xa4093822, 0x299f31d0],
                [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
            ),
        ];
        for (ctr, key, expected) in cases {
            assert_eq!(philox4x32_10(ctr, key), expected);
        }
    }

    #[test]
    fn purposes_keep_their_numbers_and_have_distinct_keys() {
        // Retiring purposes 1 and 2 left the others' values, so seeds draw what they drew.
        assert_eq!(
            [Purpose::Permutation, Purpose::Bootstrap, Purpose::Split].map(|p| p as u32),
            [3, 4, 5]
        );
        let keys: Vec<_> = [Purpose::Permutation, Purpose::Bootstrap, Purpose::Split]
            .iter()
            .map(|&p| Stream::new(7, p).key)
            .collect();
        for i in 0..keys.len() {
            for j in 0..i {
                assert_ne!(keys[i], keys[j]);
            }
        }
    }

    #[test]
    fn binomial_draws_have_the_binomial_mean_and_variance() {
        let stream = Stream::new(3, Purpose::Bootstrap);
        for (m, p) in [
            (10u64, 0.3),
            (64, 0.9),
            (65, 0.5),
            (5000, 0.02),
            (1 << 30, 0.7),
        ] {
            let b = BinomialParams::new(m, p);
            let draws: Vec<f64> = (0..20_000)
                .map(|r| f64::from(b.draw(&stream, 11, r)))
                .collect();
            let n = draws.len() as f64;
            let mean = draws.iter().sum::<f64>() / n;
            let var = draws.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (n - 1.0);
            let (mu, sigma2) = (m as f64 * p, m as f64 * p * (1.0 - p));
            // 5 standard errors of the mean and of the variance (≈ σ²·√(2/n)).
            assert!(
                (mean - mu).abs() < 5.0 * (sigma2 / n).sqrt(),
                "m {m} p {p}: {mean}"
            );
            assert!(
                (var / sigma2 - 1.0).abs() < 5.0 * (2.0 / n).sqrt(),
                "m {m} p {p}: {var}"
            );
            assert!(draws.iter().all(|&d| d <= m as f64));
        }
    }

    #[test]
    fn permutations_are_bijections_and_vary_with_the_resample() {
        let stream = Stream::new(5, Purpose::Permutation);
        for n in [1u32, 2, 3, 17, 1000, 4097] {
            let perm = Permutation::new(n);
            let image: Vec<u32> = (0..n).map(|x| perm.apply(&stream, 9, x)).collect();
            let mut sorted = image.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..n).collect::<Vec<_>>(), "n = {n}");
            if n >= 17 {
                let other: Vec<u32> = (0..n).map(|x| perm.apply(&stream, 10, x)).collect();
                assert_ne!(image, other);
            }
        }
        // Images of the first and last elements over 8000 resamples are uniform (χ² below its
        // 1e-4 quantile: 29.9 for 7 df, 23.5 for 4, 100.7 for 49).
        for (n, limit) in [(5u32, 23.5), (8, 29.9), (50, 100.7)] {
            let perm = Permutation::new(n);
            for x in [0, n - 1] {
                let mut hits = vec![0f64; n as usize];
                for r in 0..8000 {
                    hits[perm.apply(&stream, r, x) as usize] += 1.0;
                }
                let expected = 8000.0 / f64::from(n);
                let chi2: f64 = hits.iter().map(|h| (h - expected).powi(2) / expected).sum();
                assert!(chi2 < limit, "n {n}, element {x}: {hits:?}");
            }
        }
    }
}
