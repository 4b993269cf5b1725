//! Counter-based random numbers for the resampling stage: Philox4x32-10 and its integer-only
//! derived draws (binomials, drawn on the host; keyed permutations, identical on the CPU and in
//! WGSL, shaders/philox.wgsl). A seed fully determines every draw on either backend.

mod philox;

pub use philox::{
    BinomialParams, EXACT_TRIALS, FEISTEL_ROUNDS, MAX_TRIALS, MAX_WALK, Permutation, Purpose,
    Stream, binomial, philox4x32_10,
};
