// philox: Philox4x32-10 and the keyed permutation derived from it, compiled before each
// resampling kernel (after the precision prelude and common.wgsl). CPU twin, bit for bit:
// src/rng/philox.rs (its binomials are drawn on the host only). WGSL has no 64-bit integers:
// a 64-bit product is vec2<u32>(lo, hi).

const PHILOX_M0: u32 = 0xD2511F53u;
const PHILOX_M1: u32 = 0xCD9E8D57u;
const PHILOX_W0: u32 = 0x9E3779B9u;
const PHILOX_W1: u32 = 0xBB67AE85u;
// Kept in sync with MAX_WALK in src/rng/philox.rs (FEISTEL_ROUNDS = 8 is written out in
// `permute`).
const MAX_WALK: u32 = 256u;

// The 64-bit product a · b as (lo, hi), from 16-bit halves.
fn mul_wide(a: u32, b: u32) -> vec2<u32> {
    let a0 = a & 0xffffu;
    let a1 = a >> 16u;
    let b0 = b & 0xffffu;
    let b1 = b >> 16u;
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    let mid = (p00 >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
    let lo = (p00 & 0xffffu) | (mid << 16u);
    let hi = p11 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u);
    return vec2<u32>(lo, hi);
}

fn philox_round(c: vec4<u32>, k: vec2<u32>) -> vec4<u32> {
    let p0 = mul_wide(PHILOX_M0, c.x);
    let p1 = mul_wide(PHILOX_M1, c.z);
    return vec4<u32>(p1.y ^ c.y ^ k.x, p1.x, p0.y ^ c.w ^ k.y, p0.x);
}

// Ten rounds written out: lavapipe counts every loop iteration against a per-invocation limit.
fn philox4x32_10(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
    let w = vec2<u32>(PHILOX_W0, PHILOX_W1);
    var c = philox_round(counter, key);
    c = philox_round(c, key + w);
    c = philox_round(c, key + 2u * w);
    c = philox_round(c, key + 3u * w);
    c = philox_round(c, key + 4u * w);
    c = philox_round(c, key + 5u * w);
    c = philox_round(c, key + 6u * w);
    c = philox_round(c, key + 7u * w);
    c = philox_round(c, key + 8u * w);
    return philox_round(c, key + 9u * w);
}

// The block of counter [item, resample, j, 0] (Stream::block).
fn philox_block(key: vec2<u32>, item: u32, resample: u32, j: u32) -> vec4<u32> {
    return philox4x32_10(vec4<u32>(item, resample, j, 0u), key);
}

// Permutation::apply: the image of x < n under the keyed Feistel permutation of `resample`
// (`half_bits` bits per half), cycle-walking back into 0..n.
fn permute(key: vec2<u32>, n: u32, half_bits: u32, resample: u32, start: u32) -> u32 {
    let mask = (1u << half_bits) - 1u;
    var x = start;
    for (var walk = 0u; walk < MAX_WALK; walk++) {
        // FEISTEL_ROUNDS = 8 rounds, written out: (L, R) → (R, L ⊕ F(R, round)).
        let r0 = x & mask;
        let r1 = (x >> half_bits) ^ (philox_block(key, r0, resample, 0u).x & mask);
        let r2 = r0 ^ (philox_block(key, r1, resample, 1u).x & mask);
        let r3 = r1 ^ (philox_block(key, r2, resample, 2u).x & mask);
        let r4 = r2 ^ (philox_block(key, r3, resample, 3u).x & mask);
        let r5 = r3 ^ (philox_block(key, r4, resample, 4u).x & mask);
        let r6 = r4 ^ (philox_block(key, r5, resample, 5u).x & mask);
        let r7 = r5 ^ (philox_block(key, r6, resample, 6u).x & mask);
        let r8 = r6 ^ (philox_block(key, r7, resample, 7u).x & mask);
        x = (r7 << half_bits) | r8;
        if (x < n) {
            break;
        }
    }
    return min(x, n - 1u);
}
