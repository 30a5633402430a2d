//! The test bitstream format ("TBS") that the video decoder expands.
//!
//! A TBS stream describes one frame compactly: a 24-byte header, then
//! rectangles painted over a procedural pattern that depends only on the
//! header. Streams are plain byte vectors; [`render_reference`] gives the
//! bytes a test stream decodes to without going through the bitstream at
//! all, so tests and the demo can check decoded frames (and display CRCs)
//! against it.
//!
//! # TBS1 stream (little-endian)
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `"TBS1"` |
//! | 4 | 2 | width |
//! | 6 | 2 | height |
//! | 8 | 1 | format: 1 NV12, 2 P010, 3 XRGB8888 |
//! | 9 | 1 | pattern: 1 = colour bars with a moving ramp |
//! | 10 | 2 | rectangle count `n` |
//! | 12 | 4 | frame number |
//! | 16 | 4 | CRC32 of the body |
//! | 20 | 4 | reserved, 0 |
//! | 24 | 12 n | body: `n` rectangles `x, y, w, h: u16; c0, c1, c2, 0: u8` |
//!
//! The decoder renders the pattern, then paints the rectangles in order (a
//! later one covers an earlier one). Colours are `Y, U, V` for YUV formats
//! and `R, G, B` for XRGB8888; for YUV formats every coordinate is even. A
//! 1080p test stream is about 2.5 KiB.

use super::format::{Frame, PixelFormat, p010_sample};

/// A malformed TBS stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TbsError {
    /// Shorter than its header says.
    #[error("stream of {have} bytes is truncated, {needed} needed")]
    Truncated {
        /// Bytes the header announces.
        needed: usize,
        /// Bytes there are.
        have: usize,
    },
    /// Longer than its header says.
    #[error("stream of {have} bytes has trailing bytes, {expected} expected")]
    Trailing {
        /// Bytes the header announces.
        expected: usize,
        /// Bytes there are.
        have: usize,
    },
    /// Not `"TBS1"`.
    #[error("bad magic {0:02x?}")]
    BadMagic([u8; 4]),
    /// Dimensions or format are invalid.
    #[error("bad geometry {width}x{height} format {format}")]
    BadGeometry {
        /// Width field.
        width: u16,
        /// Height field.
        height: u16,
        /// Format code.
        format: u8,
    },
    /// Unknown pattern or non-zero reserved field.
    #[error("unsupported header field {0}")]
    Unsupported(&'static str),
    /// The body does not match its CRC.
    #[error("body CRC mismatch")]
    Corrupt,
    /// A rectangle leaves the frame, is empty, or is odd in a 4:2:0 format.
    #[error("rectangle {0} is invalid")]
    BadRect(usize),
}

/// The header of a TBS stream. See the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TbsHeader {
    /// The geometry of the frame the stream decodes to.
    pub frame: Frame,
    /// The frame number (drives the pattern and the test overlays).
    pub frame_no: u32,
    rect_count: u16,
    body_crc: u32,
}

/// Magic of a TBS stream.
pub const TBS_MAGIC: [u8; 4] = *b"TBS1";
const PATTERN_BARS: u8 = 1;
const RECT_LEN: usize = 12;

impl TbsHeader {
    /// Length of the header in bytes.
    pub const LEN: usize = 24;

    /// Parses the first [`Self::LEN`] bytes of `stream`.
    ///
    /// # Errors
    /// [`TbsError::Truncated`], [`TbsError::BadMagic`],
    /// [`TbsError::BadGeometry`] or [`TbsError::Unsupported`].
    pub fn parse(stream: &[u8]) -> Result<TbsHeader, TbsError> {
        let h: &[u8; Self::LEN] = stream
            .get(..Self::LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(TbsError::Truncated { needed: Self::LEN, have: stream.len() })?;
        let u16_at = |o: usize| u16::from_le_bytes([h[o], h[o + 1]]);
        let u32_at = |o: usize| u32::from_le_bytes([h[o], h[o + 1], h[o + 2], h[o + 3]]);
        let magic = [h[0], h[1], h[2], h[3]];
        if magic != TBS_MAGIC {
            return Err(TbsError::BadMagic(magic));
        }
        let (width, height, format) = (u16_at(4), u16_at(6), h[8]);
        let frame = PixelFormat::from_code(format)
            .and_then(|f| Frame::new(width.into(), height.into(), f))
            .ok_or(TbsError::BadGeometry { width, height, format })?;
        if h[9] != PATTERN_BARS {
            return Err(TbsError::Unsupported("pattern"));
        }
        if u32_at(20) != 0 {
            return Err(TbsError::Unsupported("reserved"));
        }
        Ok(TbsHeader { frame, frame_no: u32_at(12), rect_count: u16_at(10), body_crc: u32_at(16) })
    }

    /// Length in bytes of the whole stream (header and body).
    pub const fn stream_len(&self) -> usize {
        Self::LEN + RECT_LEN * self.rect_count as usize
    }

    /// Checks and parses the body (the stream's bytes after the header).
    pub(crate) fn parse_body(&self, body: &[u8]) -> Result<Vec<Rect>, TbsError> {
        let expected = self.stream_len() - Self::LEN;
        if body.len() < expected {
            return Err(TbsError::Truncated { needed: self.stream_len(), have: Self::LEN + body.len() });
        }
        if body.len() > expected {
            return Err(TbsError::Trailing { expected: self.stream_len(), have: Self::LEN + body.len() });
        }
        if crc32fast::hash(body) != self.body_crc {
            return Err(TbsError::Corrupt);
        }
        body.chunks_exact(RECT_LEN)
            .enumerate()
            .map(|(i, b)| {
                let u = |o: usize| u32::from(u16::from_le_bytes([b[o], b[o + 1]]));
                let r = Rect { x: u(0), y: u(2), w: u(4), h: u(6), c: [b[8], b[9], b[10]] };
                if b[11] == 0 && r.fits(&self.frame) { Ok(r) } else { Err(TbsError::BadRect(i)) }
            })
            .collect()
    }
}

/// A rectangle painted over the pattern, in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rect {
    x: u32,
    y: u32,
    w: u32,
    h: u32,
    /// Y, U, V or R, G, B.
    c: [u8; 3],
}

impl Rect {
    fn fits(&self, frame: &Frame) -> bool {
        let even = !frame.format().is_yuv420() || (self.x | self.y | self.w | self.h) % 2 == 0;
        even && self.w > 0 && self.h > 0 && self.x + self.w <= frame.width() && self.y + self.h <= frame.height()
    }

    /// Its rows and component columns in `plane` of `frame`.
    fn span(&self, frame: &Frame, plane: usize) -> (std::ops::Range<u32>, std::ops::Range<usize>) {
        let (x, w) = (self.x as usize, self.w as usize);
        match (frame.format(), plane) {
            (PixelFormat::Xrgb8888, _) => (self.y..self.y + self.h, 4 * x..4 * (x + w)),
            (_, 0) => (self.y..self.y + self.h, x..x + w),
            _ => (self.y / 2..(self.y + self.h) / 2, x..x + w),
        }
    }

    /// The component value at column `i` of `plane`.
    fn comp(&self, format: PixelFormat, plane: usize, i: usize) -> u8 {
        match (format, plane) {
            (PixelFormat::Xrgb8888, _) => [self.c[2], self.c[1], self.c[0], 0][i % 4],
            (_, 0) => self.c[0],
            _ => self.c[1 + i % 2],
        }
    }
}

/// Colour bars, 75% (white, yellow, cyan, green, magenta, red, blue, black)
/// as Y, U, V and as R, G, B.
const BARS_YUV: [[u8; 3]; 8] = [
    [180, 128, 128],
    [162, 44, 142],
    [131, 156, 44],
    [112, 72, 58],
    [84, 184, 198],
    [65, 100, 212],
    [35, 212, 114],
    [16, 128, 128],
];
const BARS_RGB: [[u8; 3]; 8] =
    [[191, 191, 191], [191, 191, 0], [0, 191, 191], [0, 191, 0], [191, 0, 191], [191, 0, 0], [0, 0, 191], [0, 0, 0]];

/// Expands a parsed stream row by row: the decoder's inner loop.
pub(crate) struct Expander<'a> {
    header: TbsHeader,
    rects: &'a [Rect],
}

impl<'a> Expander<'a> {
    pub(crate) fn new(header: TbsHeader, rects: &'a [Rect]) -> Expander<'a> {
        Expander { header, rects }
    }

    /// Fills `out` with the components of row `y` of `plane`.
    pub(crate) fn row(&self, plane: usize, y: u32, out: &mut [u8]) {
        let frame = self.header.frame;
        let f = self.header.frame_no;
        let w = frame.width() as usize;
        // The pattern, one bar at a time: bar b covers x with b*w <= 8x < (b+1)*w.
        for b in 0..8 {
            let (x0, x1) = ((b * w).div_ceil(8), ((b + 1) * w).div_ceil(8));
            match (frame.format(), plane) {
                (PixelFormat::Xrgb8888, _) => {
                    let [r, g, bl] = BARS_RGB[b];
                    for x in x0..x1 {
                        let ramp = ramp(x, y, f);
                        out[4 * x..4 * x + 4].copy_from_slice(&[
                            bl.wrapping_add(ramp),
                            g.wrapping_add(ramp),
                            r.wrapping_add(ramp),
                            0,
                        ]);
                    }
                }
                (_, 0) => {
                    for (x, v) in (x0..x1).zip(&mut out[x0..x1]) {
                        *v = BARS_YUV[b][0].wrapping_add(ramp(x, y, f));
                    }
                }
                _ => {
                    // Chroma pair cx sits over luma x = 2 cx: pairs with x0 <= 2cx < x1.
                    let d = chroma_ramp(y, f);
                    let (u, v) = (BARS_YUV[b][1].wrapping_add(d), BARS_YUV[b][2].wrapping_sub(d));
                    for cx in x0.div_ceil(2)..x1.div_ceil(2) {
                        out[2 * cx] = u;
                        out[2 * cx + 1] = v;
                    }
                }
            }
        }
        for r in self.rects {
            let (rows, cols) = r.span(&frame, plane);
            if rows.contains(&y) {
                for i in cols {
                    out[i] = r.comp(frame.format(), plane, i);
                }
            }
        }
    }
}

fn ramp(x: usize, y: u32, f: u32) -> u8 {
    ((x as u32).wrapping_add(y).wrapping_add(f.wrapping_mul(2)) & 31) as u8
}

fn chroma_ramp(y: u32, f: u32) -> u8 {
    (y.wrapping_add(f) & 7) as u8
}

/// SplitMix64: the deterministic generator behind the test overlays.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u32) -> u32 {
        (self.next() % u64::from(n.max(1))) as u32
    }
}

/// Segments (a..g) lit for each decimal digit.
const SEVEN_SEGMENT: [u8; 10] = [0x3f, 0x06, 0x5b, 0x4f, 0x66, 0x6d, 0x7d, 0x07, 0x7f, 0x6f];

/// The rectangles of the test stream for frame `frame_no`: random tiles, a
/// box moving across the frame, and the frame number in seven-segment
/// digits at the top left.
fn test_overlays(frame_no: u32, frame: &Frame) -> Vec<Rect> {
    let (fw, fh) = (frame.width(), frame.height());
    let yuv = frame.format().is_yuv420();
    let mut out = Vec::new();
    // Clips to the frame and, for 4:2:0, shrinks to even coordinates.
    let mut push = |x: u32, y: u32, w: u32, h: u32, c: [u8; 3]| {
        let (x, y) = (x.min(fw), y.min(fh));
        let (mut w, mut h) = (w.min(fw - x), h.min(fh - y));
        let (mut x, mut y) = (x, y);
        if yuv {
            (x, y, w, h) = (x & !1, y & !1, w & !1, h & !1);
        }
        let r = Rect { x, y, w, h, c };
        if r.fits(frame) {
            out.push(r);
        }
    };
    let white = if frame.format().is_yuv420() { [235, 128, 128] } else { [255, 255, 255] };
    let black = if frame.format().is_yuv420() { [16, 128, 128] } else { [0, 0, 0] };
    let mut rng = SplitMix((u64::from(frame_no) << 32) ^ (u64::from(fw) << 16) ^ u64::from(fh));
    for _ in 0..160 {
        let (x, y) = (rng.below(fw), rng.below(fh));
        let (w, h) = (8 + 2 * rng.below(60), 8 + 2 * rng.below(40));
        let c = rng.next().to_le_bytes();
        push(x, y, w, h, [c[0], c[1], c[2]]);
    }
    let (bw, bh) = ((fw / 8).max(2), (fh / 8).max(2));
    let span = fw.saturating_sub(bw) + 1;
    push(frame_no.wrapping_mul(16) % span, fh / 2 - bh / 2, bw, bh, white);
    // Frame number, 8 digits: segment thickness t, digit cell 5t x 9t.
    let t = (fh / 60).max(2);
    push(0, 0, 8 * 5 * t + t, 9 * t + 2 * t, black);
    let mut n = frame_no;
    for d in (0..8).rev() {
        let digit = (n % 10) as usize;
        n /= 10;
        let (ox, oy) = (t + d * 5 * t, t);
        let segs = [
            (ox + t, oy, 2 * t, t),         // a
            (ox + 3 * t, oy + t, t, 3 * t), // b
            (ox + 3 * t, oy + 5 * t, t, 3 * t),
            (ox + t, oy + 8 * t, 2 * t, t), // d
            (ox, oy + 5 * t, t, 3 * t),
            (ox, oy + t, t, 3 * t),         // f
            (ox + t, oy + 4 * t, 2 * t, t), // g
        ];
        for (i, &(x, y, w, h)) in segs.iter().enumerate() {
            if SEVEN_SEGMENT[digit] & (1 << i) != 0 {
                push(x, y, w, h, white);
            }
        }
    }
    out
}

/// The TBS stream of test frame `frame_no` with geometry `frame`: what a
/// test "encoder" would emit. Decoding it gives [`render_reference`] of its
/// header exactly.
pub fn encode_test_stream(frame_no: u32, frame: Frame) -> Vec<u8> {
    let rects = test_overlays(frame_no, &frame);
    let mut body = Vec::with_capacity(RECT_LEN * rects.len());
    for r in &rects {
        for v in [r.x, r.y, r.w, r.h] {
            // Coordinates are at most MAX_DIMENSION.
            body.extend_from_slice(&(v as u16).to_le_bytes());
        }
        body.extend_from_slice(&[r.c[0], r.c[1], r.c[2], 0]);
    }
    let mut s = Vec::with_capacity(TbsHeader::LEN + body.len());
    s.extend_from_slice(&TBS_MAGIC);
    s.extend_from_slice(&(frame.width() as u16).to_le_bytes());
    s.extend_from_slice(&(frame.height() as u16).to_le_bytes());
    s.extend_from_slice(&[frame.format().code(), PATTERN_BARS]);
    s.extend_from_slice(&(rects.len() as u16).to_le_bytes());
    s.extend_from_slice(&frame_no.to_le_bytes());
    s.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    s.extend_from_slice(&0u32.to_le_bytes());
    s.extend_from_slice(&body);
    s
}

/// Decodes a whole TBS stream held in memory (the video decoder does the
/// same through the firewall).
///
/// # Errors
/// Any [`TbsError`] of a malformed stream.
pub fn decode_to_vec(stream: &[u8]) -> Result<(TbsHeader, Vec<u8>), TbsError> {
    let header = TbsHeader::parse(stream)?;
    let rects = header.parse_body(&stream[TbsHeader::LEN..])?;
    let ex = Expander::new(header, &rects);
    let mut out = Vec::with_capacity(header.frame.byte_size() as usize);
    header
        .frame
        .render_rows(
            |plane, y, comps| ex.row(plane, y, comps),
            |row| {
                out.extend_from_slice(row);
                Ok::<(), ()>(())
            },
        )
        .unwrap_or(());
    Ok((header, out))
}

/// The plaintext bytes of the test frame a stream with `header` (as made by
/// [`encode_test_stream`]) decodes to, computed pixel by pixel from the
/// pattern and the overlays without a bitstream: the reference display
/// CRCs are checked against.
pub fn render_reference(header: &TbsHeader) -> Vec<u8> {
    let frame = header.frame;
    let f = header.frame_no;
    let rects = test_overlays(f, &frame);
    let w = frame.width() as usize;
    let mut out = Vec::with_capacity(frame.byte_size() as usize);
    for (plane, (rows, n)) in frame.planes().enumerate() {
        for y in 0..rows {
            // Topmost first: the last rectangle painted wins.
            let hits: Vec<&Rect> = rects.iter().rev().filter(|r| r.span(&frame, plane).0.contains(&y)).collect();
            for i in 0..n {
                let painted = hits.iter().find(|r| r.span(&frame, plane).1.contains(&i));
                let v = match (painted, frame.format(), plane) {
                    (Some(r), fmt, _) => r.comp(fmt, plane, i),
                    (None, PixelFormat::Xrgb8888, _) => {
                        let x = i / 4;
                        let [r, g, b] = BARS_RGB[x * 8 / w];
                        [b, g, r][..].get(i % 4).map_or(0, |c| c.wrapping_add(ramp(x, y, f)))
                    }
                    (None, _, 0) => BARS_YUV[i * 8 / w][0].wrapping_add(ramp(i, y, f)),
                    (None, _, _) => {
                        let yuv = BARS_YUV[(i & !1) * 8 / w];
                        if i % 2 == 0 {
                            yuv[1].wrapping_add(chroma_ramp(y, f))
                        } else {
                            yuv[2].wrapping_sub(chroma_ramp(y, f))
                        }
                    }
                };
                if frame.format() == PixelFormat::P010 {
                    out.extend_from_slice(&p010_sample(v).to_le_bytes());
                } else {
                    out.push(v);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_matches_reference() {
        let frames = [
            Frame::FHD_NV12,
            Frame::new(640, 360, PixelFormat::P010).unwrap(),
            Frame::new(321, 99, PixelFormat::Xrgb8888).unwrap(),
            Frame::new(2, 2, PixelFormat::Nv12).unwrap(),
        ];
        for frame in frames {
            let numbers: &[u32] =
                if frame.byte_size() > 1 << 20 { &[1, 12_345_678] } else { &[0, 1, 12_345_678, u32::MAX] };
            for &frame_no in numbers {
                let s = encode_test_stream(frame_no, frame);
                let (h, bytes) = decode_to_vec(&s).unwrap();
                assert_eq!((h.frame, h.frame_no, h.stream_len()), (frame, frame_no, s.len()));
                assert_eq!(bytes.len() as u64, frame.byte_size());
                assert!(bytes == render_reference(&h), "{frame:?} #{frame_no}");
            }
        }
        // Frames differ from one another, and a 1080p stream is a few KiB.
        let a = decode_to_vec(&encode_test_stream(1, Frame::FHD_NV12)).unwrap().1;
        let b = decode_to_vec(&encode_test_stream(2, Frame::FHD_NV12)).unwrap().1;
        assert_ne!(crc32fast::hash(&a), crc32fast::hash(&b));
        let len = encode_test_stream(1, Frame::FHD_NV12).len();
        assert!((1024..8192).contains(&len), "{len}");
    }

    #[test]
    fn p010_samples_are_msb_aligned() {
        let s = encode_test_stream(3, Frame::new(16, 2, PixelFormat::P010).unwrap());
        let bytes = decode_to_vec(&s).unwrap().1;
        assert!(bytes.chunks_exact(2).all(|s| s[0] & 0x3f == 0));
    }

    #[test]
    fn malformed_streams_are_rejected() {
        let good = encode_test_stream(7, Frame::new(64, 32, PixelFormat::Nv12).unwrap());
        let with = |i: usize, v: u8| {
            let mut s = good.clone();
            s[i] = v;
            s
        };
        let body_start = TbsHeader::LEN;
        type Check = fn(&TbsError) -> bool;
        let cases: Vec<(Vec<u8>, Check)> = vec![
            (good[..10].to_vec(), |e| matches!(e, TbsError::Truncated { .. })),
            (good[..good.len() - 1].to_vec(), |e| matches!(e, TbsError::Truncated { .. })),
            ([&good[..], &[0]].concat(), |e| matches!(e, TbsError::Trailing { .. })),
            (with(0, b'X'), |e| matches!(e, TbsError::BadMagic(_))),
            (with(8, 9), |e| matches!(e, TbsError::BadGeometry { .. })),
            (with(4, 65), |e| matches!(e, TbsError::BadGeometry { .. })),
            (with(9, 2), |e| matches!(e, TbsError::Unsupported(_))),
            (with(20, 1), |e| matches!(e, TbsError::Unsupported(_))),
            (with(body_start, good[body_start] ^ 1), |e| matches!(e, TbsError::Corrupt)),
        ];
        for (i, (s, ok)) in cases.into_iter().enumerate() {
            let e = decode_to_vec(&s).unwrap_err();
            assert!(ok(&e), "case {i}: {e}");
        }
        // A rectangle leaving the frame, with a CRC that matches.
        let mut s = good.clone();
        s[body_start..body_start + 2].copy_from_slice(&1000u16.to_le_bytes());
        let crc = crc32fast::hash(&s[body_start..]);
        s[16..20].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(decode_to_vec(&s).unwrap_err(), TbsError::BadRect(0));
    }
}
