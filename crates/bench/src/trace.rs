//! Allocation traces in pages of 4 KiB: secure video playback churn,
//! trusted-UI framebuffers among small buffers, random sizes, and the exact
//! hole reuse that defeats size classes.
//!
//! Each generator keeps the pages an ideal allocator would hold at or below
//! `fill × capacity` at every point, so any failed allocation in a replay is
//! the allocator's fragmentation, never a trace that does not fit. A trace
//! is a churn part followed by a teardown that frees everything still live;
//! [`Trace::churn_end`] marks the boundary where fragmentation is measured.

/// One operation of a trace. Ids are dense, `0..Trace::ids`, each
/// allocated once and freed at most once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Allocate `pages` contiguous pages and call the run `id`.
    Alloc {
        /// The run's name in later `Free`s.
        id: u32,
        /// Pages wanted.
        pages: u64,
    },
    /// Free run `id` (skipped in a replay where its allocation failed).
    Free {
        /// The run to free.
        id: u32,
    },
}

/// A generated trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// Short name for reports.
    pub name: &'static str,
    /// Pages of the pool the trace is replayed on.
    pub capacity: u64,
    /// The operations, churn then teardown.
    pub ops: Vec<Op>,
    /// Number of distinct ids.
    pub ids: usize,
    /// Index in `ops` where the teardown starts.
    pub churn_end: usize,
}

impl Trace {
    /// Number of allocations in the trace.
    #[must_use]
    pub fn allocs(&self) -> usize {
        self.ops.iter().filter(|op| matches!(op, Op::Alloc { .. })).count()
    }

    /// The most pages live at once with an allocator that never fails.
    #[must_use]
    pub fn peak_pages(&self) -> u64 {
        let mut sizes = vec![0; self.ids];
        let (mut live, mut peak) = (0u64, 0u64);
        for op in &self.ops {
            match *op {
                Op::Alloc { id, pages } => {
                    sizes[id as usize] = pages;
                    live += pages;
                    peak = peak.max(live);
                }
                Op::Free { id } => live -= sizes[id as usize],
            }
        }
        peak
    }
}

/// A small deterministic generator (xorshift64*), so traces are the same on
/// every machine.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a non-zero seed (0 is replaced).
    #[must_use]
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `[0, n)`; `n > 0`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `[lo, hi]`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// `true` with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// Records operations and the live pages of an ideal allocator.
struct Builder {
    ops: Vec<Op>,
    sizes: Vec<u64>,
    live: u64,
}

impl Builder {
    fn new() -> Builder {
        Builder { ops: Vec::new(), sizes: Vec::new(), live: 0 }
    }

    fn alloc(&mut self, pages: u64) -> u32 {
        let id = u32::try_from(self.sizes.len()).expect("fewer than 2^32 ids");
        self.sizes.push(pages);
        self.live += pages;
        self.ops.push(Op::Alloc { id, pages });
        id
    }

    fn free(&mut self, id: u32) {
        self.live -= self.sizes[id as usize];
        self.ops.push(Op::Free { id });
    }

    /// Frees what is still live and seals the trace.
    fn finish(mut self, name: &'static str, capacity: u64, live: impl IntoIterator<Item = u32>) -> Trace {
        let churn_end = self.ops.len();
        for id in live {
            self.free(id);
        }
        debug_assert_eq!(self.live, 0);
        Trace { name, capacity, ops: self.ops, ids: self.sizes.len(), churn_end }
    }
}

/// A decoded picture format: pages per frame and per bitstream buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoFormat {
    /// Name in reports.
    pub name: &'static str,
    /// Pages of one decoded frame.
    pub frame_pages: u64,
    /// Pages of one bitstream buffer.
    pub bitstream_pages: u64,
}

/// 4K NV12 (3840×2160×1.5 B), 4K P010 (×2 B) and 1080p NV12 (1920×1088×1.5
/// B) frames; 4 MiB bitstream buffers for 4K, 1 MiB for 1080p.
pub const VIDEO_FORMATS: [VideoFormat; 3] = [
    VideoFormat { name: "4K NV12", frame_pages: 3038, bitstream_pages: 1024 },
    VideoFormat { name: "4K P010", frame_pages: 6075, bitstream_pages: 1024 },
    VideoFormat { name: "1080p NV12", frame_pages: 765, bitstream_pages: 256 },
];

/// Bitstream buffers per stream.
pub const BITSTREAM_BUFFERS: u64 = 16;

struct Stream {
    /// Frames decoded so far.
    decoded: u64,
    /// Frames to decode before the stream stops.
    length: u64,
    /// References the DPB holds (4..=16).
    refs: u64,
    /// Most frames alive at once: refs plus 4..=7 frames of slack.
    max_frames: u64,
    /// Live frames: (decode index after which it is released, id).
    frames: Vec<(u64, u32)>,
    bitstream: Vec<u32>,
    /// Pages of one frame.
    frame_pages: u64,
}

/// Secure video playback churn over `capacity` pages: up to six streams at
/// once, each of a random format, starting and stopping (resolution
/// changes); each holds 16 bitstream buffers and a DPB of 4–16 reference
/// frames plus 4–7 frames of slack, allocating a frame per decoded picture
/// and freeing frames in display/reference order, not decode order
/// (non-reference B frames go after 1–2 pictures, references after up to
/// the DPB depth). Streams are admitted while their bitstream buffers fit,
/// so the pool runs at the fill budget; a stream whose next frame does not
/// fit releases its oldest frames first. `steps` steps in all.
#[must_use]
pub fn video_churn(capacity: u64, fill: f64, steps: u64, seed: u64) -> Trace {
    let budget = (capacity as f64 * fill) as u64;
    let mut rng = Rng::new(seed);
    let mut b = Builder::new();
    let mut streams: Vec<Stream> = Vec::new();
    for _ in 0..steps {
        if streams.len() < 6 && (streams.is_empty() || rng.chance(0.05)) {
            let f = VIDEO_FORMATS[rng.below(VIDEO_FORMATS.len() as u64) as usize];
            let (refs, slack) = (rng.range(4, 16), rng.range(4, 7));
            // Admit a stream if its bitstream buffers and a first frame fit now.
            if b.live + BITSTREAM_BUFFERS * f.bitstream_pages + f.frame_pages <= budget {
                let bitstream = (0..BITSTREAM_BUFFERS).map(|_| b.alloc(f.bitstream_pages)).collect();
                streams.push(Stream {
                    decoded: 0,
                    length: rng.range(60, 600),
                    refs,
                    max_frames: refs + slack,
                    frames: Vec::new(),
                    bitstream,
                    frame_pages: f.frame_pages,
                });
                continue;
            }
        }
        if streams.is_empty() {
            continue;
        }
        let i = rng.below(streams.len() as u64) as usize;
        let s = &mut streams[i];
        let n = s.decoded;
        // Output/unreference what is due, in release order.
        s.frames.sort_unstable();
        let due = s.frames.iter().take_while(|(at, _)| *at <= n).count();
        for (_, id) in s.frames.drain(..due) {
            b.free(id);
        }
        // A full DPB, or a full pool (the pipeline stalls until the display
        // returns a frame), releases the frame due first.
        while !s.frames.is_empty() && (s.frames.len() as u64 >= s.max_frames || b.live + s.frame_pages > budget) {
            let (_, id) = s.frames.remove(0);
            b.free(id);
        }
        if b.live + s.frame_pages > budget {
            continue;
        }
        let lifetime = if rng.chance(0.35) { rng.range(1, 2) } else { rng.range(s.refs / 2, s.max_frames) };
        let id = b.alloc(s.frame_pages);
        s.frames.push((n + lifetime, id));
        s.decoded += 1;
        if s.decoded >= s.length {
            let s = streams.swap_remove(i);
            for (_, id) in s.frames {
                b.free(id);
            }
            for id in s.bitstream {
                b.free(id);
            }
        }
        debug_assert!(b.live <= budget);
    }
    let live: Vec<u32> = streams.iter().flat_map(|s| s.frames.iter().map(|f| f.1).chain(s.bitstream.clone())).collect();
    b.finish("video churn", capacity, live)
}

/// Trusted-UI framebuffers: 720p, 1080p and 1440×3120 ARGB8888 (900, 2025,
/// 4388 pages), double or triple buffered, for up to two sessions that open
/// and close, among a steady churn of small buffers of 1–16 pages (glyphs,
/// input, PIN pad) that live 1–64 steps.
#[must_use]
pub fn trusted_ui(capacity: u64, fill: f64, steps: u64, seed: u64) -> Trace {
    const FB: [u64; 3] = [900, 2025, 4388];
    let budget = (capacity as f64 * fill) as u64;
    let mut rng = Rng::new(seed);
    let mut b = Builder::new();
    // (closes at step, framebuffer ids)
    let mut sessions: Vec<(u64, Vec<u32>)> = Vec::new();
    // (freed at step, id)
    let mut small: Vec<(u64, u32)> = Vec::new();
    for step in 0..steps {
        sessions.retain(|(close, fbs)| {
            let keep = *close > step;
            if !keep {
                fbs.iter().for_each(|&id| b.free(id));
            }
            keep
        });
        small.retain(|&(at, id)| {
            let keep = at > step;
            if !keep {
                b.free(id);
            }
            keep
        });
        if sessions.len() < 2 && rng.chance(0.01) {
            let (fb, n) = (FB[rng.below(3) as usize], rng.range(2, 3));
            // Make room by dropping the oldest small buffers, as a UI would.
            small.sort_unstable();
            while b.live + fb * n > budget && !small.is_empty() {
                b.free(small.remove(0).1);
            }
            if b.live + fb * n <= budget {
                let fbs = (0..n).map(|_| b.alloc(fb)).collect();
                sessions.push((step + rng.range(50, 300), fbs));
            }
        }
        for _ in 0..rng.range(1, 3) {
            let pages = if rng.chance(0.7) { rng.range(1, 2) } else { rng.range(3, 16) };
            if b.live + pages > budget {
                break;
            }
            let id = b.alloc(pages);
            small.push((step + rng.range(1, 64), id));
        }
        debug_assert!(b.live <= budget);
    }
    let live: Vec<u32> = sessions.into_iter().flat_map(|s| s.1).chain(small.into_iter().map(|s| s.1)).collect();
    b.finish("trusted UI", capacity, live)
}

/// Random sizes, log-uniform in `1..=max_pages`, freed in random order: the
/// pool fills up to the budget, then each step frees a random live run
/// (when the new one does not fit, or with probability ½ above 85 % of the
/// budget) or allocates.
#[must_use]
pub fn random_sizes(name: &'static str, capacity: u64, fill: f64, max_pages: u64, steps: u64, seed: u64) -> Trace {
    let budget = (capacity as f64 * fill) as u64;
    let mut rng = Rng::new(seed);
    let mut b = Builder::new();
    let mut live: Vec<u32> = Vec::new();
    for _ in 0..steps {
        let exp = rng.below(1 << 20) as f64 / f64::from(1 << 20) * (max_pages as f64).log2();
        let pages = (2f64.powf(exp) as u64).clamp(1, max_pages);
        // Fill up, then hover between 85 % and 100 % of the budget.
        let full = b.live + pages > budget || (b.live * 100 >= budget * 85 && rng.chance(0.5));
        if full && !live.is_empty() {
            let id = live.swap_remove(rng.below(live.len() as u64) as usize);
            b.free(id);
        } else if b.live + pages <= budget {
            live.push(b.alloc(pages));
        }
    }
    b.finish(name, capacity, live)
}

/// The hole a size class cannot reuse: `k` buffers of 3038 pages (a 4K NV12
/// frame), each followed by a 1-page buffer so that freeing it leaves a
/// hole of exactly 3038 pages, in a pool filled to 90 %. Then `rounds`
/// times: free every 3038-page buffer, allocate them again. An allocator
/// that reuses exact holes never fails; one that files a 3038-page hole
/// under a smaller class eats the 10 % tail and then fails.
#[must_use]
pub fn hole_reuse(k: u64, rounds: u64) -> Trace {
    const FRAME: u64 = 3038;
    let capacity = (k * (FRAME + 1)) * 10 / 9 + 1;
    let mut b = Builder::new();
    let mut frames = Vec::new();
    let mut pins = Vec::new();
    for _ in 0..k {
        frames.push(b.alloc(FRAME));
        pins.push(b.alloc(1));
    }
    for _ in 0..rounds {
        for id in std::mem::take(&mut frames) {
            b.free(id);
        }
        frames = (0..k).map(|_| b.alloc(FRAME)).collect();
    }
    b.finish("exact hole reuse", capacity, frames.into_iter().chain(pins))
}

/// Pages of a 1 GiB pool (a device reserving for two 4K streams).
pub const GIB_PAGES: u64 = 1 << 18;
/// Pages of a 128 MiB pool for the trusted UI.
pub const UI_PAGES: u64 = 1 << 15;
/// Fill an ideal allocator would reach at the traces' peak.
pub const FILL: f64 = 0.9;

/// The five traces of the allocator comparison (BENCHMARKS.md section 1).
#[must_use]
pub fn allocator_traces() -> Vec<Trace> {
    vec![
        video_churn(GIB_PAGES, FILL, 20_000, 1),
        trusted_ui(UI_PAGES, FILL, 20_000, 2),
        random_sizes("random sizes", GIB_PAGES, FILL, 4096, 40_000, 3),
        // Many small buffers: thousands of holes, where O(holes) peers slow down.
        random_sizes("random small sizes", GIB_PAGES / 4, FILL, 16, 40_000, 4),
        hole_reuse(40, 50),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(t: &Trace, fill: f64) {
        assert!(t.peak_pages() as f64 <= t.capacity as f64 * fill + 1.0, "{}: peak over budget", t.name);
        let mut state = vec![0u8; t.ids];
        for op in &t.ops {
            match *op {
                Op::Alloc { id, pages } => {
                    assert!(pages > 0);
                    assert_eq!(state[id as usize], 0, "{}: id {id} allocated twice", t.name);
                    state[id as usize] = 1;
                }
                Op::Free { id } => {
                    assert_eq!(state[id as usize], 1, "{}: id {id} freed while not live", t.name);
                    state[id as usize] = 2;
                }
            }
        }
        assert!(state.iter().all(|&s| s == 2), "{}: teardown frees everything", t.name);
        assert!(t.churn_end <= t.ops.len());
    }

    #[test]
    fn traces_are_well_formed_and_within_budget() {
        check(&video_churn(1 << 18, 0.9, 3_000, 1), 0.9);
        check(&trusted_ui(1 << 15, 0.9, 3_000, 2), 0.9);
        check(&random_sizes("r", 1 << 18, 0.9, 4096, 3_000, 3), 0.9);
        check(&hole_reuse(40, 2), 0.9);
    }

    #[test]
    fn video_uses_the_issue_sizes_and_reorders_frees() {
        let t = video_churn(1 << 18, 0.9, 5_000, 7);
        let sizes: std::collections::BTreeSet<u64> =
            t.ops.iter().filter_map(|op| if let Op::Alloc { pages, .. } = op { Some(*pages) } else { None }).collect();
        assert!(sizes.is_subset(&[256, 765, 1024, 3038, 6075].into()), "{sizes:?}");
        assert!(sizes.len() >= 4, "several formats over the trace: {sizes:?}");
        // Frees do not simply follow allocation order.
        let frees: Vec<u32> = t.ops[..t.churn_end]
            .iter()
            .filter_map(|op| if let Op::Free { id } = op { Some(*id) } else { None })
            .collect();
        assert!(frees.windows(2).any(|w| w[0] > w[1]));
    }

    #[test]
    fn deterministic() {
        assert_eq!(random_sizes("r", 1 << 12, 0.9, 64, 500, 5), random_sizes("r", 1 << 12, 0.9, 64, 500, 5));
        assert_ne!(random_sizes("r", 1 << 12, 0.9, 64, 500, 5), random_sizes("r", 1 << 12, 0.9, 64, 500, 6));
    }
}
