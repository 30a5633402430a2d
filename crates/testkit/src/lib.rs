//! Fixtures shared by teeheap's tests, so each is written once: seeded
//! pseudo-random data here; the small-platform builder is
//! `teeheap_platform::PlatformConfig::small`.

#![forbid(unsafe_code)]

/// Deterministic pseudo-random numbers (`fastrand`), seeded per test so a
/// failure replays.
///
/// ```
/// let (mut a, mut b) = (teeheap_testkit::Rng::new(7), teeheap_testkit::Rng::new(7));
/// assert_eq!(a.bytes(16), b.bytes(16));
/// assert!(a.below(10) < 10);
/// ```
#[derive(Debug)]
pub struct Rng(fastrand::Rng);

impl Rng {
    /// The generator of `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(fastrand::Rng::with_seed(seed))
    }

    /// Uniform in `0..n`; panics if `n` is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0.u64(..n)
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0; n];
        self.0.fill(&mut v);
        v
    }
}
