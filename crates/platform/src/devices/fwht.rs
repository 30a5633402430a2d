//! FWHT: the Fast Walsh-Hadamard Transform codec of the V4L2 `vicodec`
//! driver, written from its description (a header, then per plane 8x8
//! macroblocks, each a Walsh-Hadamard transform of the pixels or of their
//! difference to the previous frame, quantised and run-length coded).
//!
//! A stream is a sequence of frames; each is a [`Header`] (44 bytes,
//! big-endian, starting with an 8-byte magic that the coded data cannot
//! contain) and the coded Y, Cb and Cr planes of a 4:2:0 frame. Each
//! macroblock starts with a 16-bit word: bit 15 set for a P (delta)
//! block, bits 1-12 a repeat count (the same block follows that many more
//! times), bit 0 always 0. Coefficients follow in sequency order as
//! 16-bit words: the top 12 bits a signed value, the low 4 bits `n`, the
//! value occurring `n + 1` times, or once and then zeros to the end of the
//! block for `n = 0xf`. A plane whose coding is not smaller than its raw
//! bytes is stored raw and flagged. The quantiser (a step of `8 * qp` on
//! every coefficient) and the P/I choice are this model's own, so streams
//! decode with this decoder; they are not promised to match `vicodec`'s
//! bits. Encoder and decoder keep the same reference (the encoder predicts
//! from its own reconstruction), so P frames never drift.
//!
//! ```
//! use teeheap_platform::devices::fwht::{Decoder, Encoder, RawFormat, RawFrame};
//!
//! let f = RawFrame::new(RawFormat::Nv12, 64, 48).unwrap();
//! let raw: Vec<u8> = (0..f.size()).map(|i| (i % 251) as u8).collect();
//! let mut enc = Encoder::new(f, 10);
//! let coded = enc.encode(&raw, 1, 1).unwrap();
//! let mut out = vec![0; f.size()];
//! let hdr = Decoder::default().decode(&coded, f, &mut out).unwrap();
//! assert_eq!((hdr.width, hdr.height), (64, 48));
//! ```

use thiserror::Error;

/// First magic word of a frame header.
pub const MAGIC1: u32 = 0x4f4f_4f4f;
/// Second magic word of a frame header.
pub const MAGIC2: u32 = 0xffff_ffff;
/// The format version written (`V4L2_FWHT_VERSION`).
pub const VERSION: u32 = 3;
/// Bytes of a frame header.
pub const HEADER_LEN: usize = 44;
/// Header flag: the Y plane is stored raw.
pub const FL_LUMA_IS_UNCOMPRESSED: u32 = 1 << 4;
/// Header flag: the Cb plane is stored raw.
pub const FL_CB_IS_UNCOMPRESSED: u32 = 1 << 5;
/// Header flag: the Cr plane is stored raw.
pub const FL_CR_IS_UNCOMPRESSED: u32 = 1 << 6;
/// Header flag: every block is intra coded (a key frame).
pub const FL_I_FRAME: u32 = 1 << 10;
/// Header field: components minus one, at bit 16.
pub const FL_COMPONENTS_NUM_OFFSET: u32 = 16;
/// Header field value: YUV pixel encoding.
pub const FL_PIXENC_YUV: u32 = 1 << 19;
/// Largest width or height.
pub const MAX_DIMENSION: u32 = 4096;
/// Smallest width or height.
pub const MIN_DIMENSION: u32 = 16;

const PFRAME_BIT: u16 = 1 << 15;
const MAX_REPEAT: u16 = 0xfff;
const RAW_FLAGS: [u32; 3] = [FL_LUMA_IS_UNCOMPRESSED, FL_CB_IS_UNCOMPRESSED, FL_CR_IS_UNCOMPRESSED];

/// Why a frame cannot be coded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FwhtError {
    /// Width or height out of range or odd.
    #[error("unsupported frame size {0}x{1}")]
    Size(u32, u32),
    /// A buffer is smaller than the frame needs.
    #[error("buffer of {have} bytes, {need} needed")]
    Short {
        /// Bytes given.
        have: usize,
        /// Bytes needed.
        need: usize,
    },
    /// No magic, a bad version, or a header that contradicts the data.
    #[error("bad FWHT header: {0}")]
    Header(&'static str),
    /// The coded data ends early or runs past a block.
    #[error("corrupt FWHT data: {0}")]
    Corrupt(&'static str),
}

/// Raw (uncompressed) 4:2:0 layouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RawFormat {
    /// Y plane, then interleaved Cb/Cr.
    Nv12,
    /// Y plane, then the Cb plane, then the Cr plane (`YU12`).
    Yuv420,
}

/// A raw frame geometry.
///
/// # Invariants
/// `width` and `height` are even and within [`MIN_DIMENSION`]..=[`MAX_DIMENSION`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RawFrame {
    format: RawFormat,
    width: u32,
    height: u32,
}

impl RawFrame {
    /// A geometry.
    ///
    /// # Errors
    /// [`FwhtError::Size`] for an odd or out-of-range size.
    pub fn new(format: RawFormat, width: u32, height: u32) -> Result<RawFrame, FwhtError> {
        let ok = |d: u32| (MIN_DIMENSION..=MAX_DIMENSION).contains(&d) && d % 2 == 0;
        if !ok(width) || !ok(height) {
            return Err(FwhtError::Size(width, height));
        }
        Ok(RawFrame { format, width, height })
    }

    /// Its layout.
    pub fn format(&self) -> RawFormat {
        self.format
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Bytes of one raw frame.
    pub fn size(&self) -> usize {
        let y = self.width as usize * self.height as usize;
        y + y / 2
    }

    /// Most bytes one coded frame can take (header and every plane raw).
    pub fn max_coded_size(&self) -> usize {
        HEADER_LEN + self.size()
    }

    /// (width, height) of plane `p` (0: Y, 1: Cb, 2: Cr).
    fn plane_dims(&self, p: usize) -> (usize, usize) {
        let (w, h) = (self.width as usize, self.height as usize);
        if p == 0 { (w, h) } else { (w / 2, h / 2) }
    }

    /// Splits a raw frame into planar Y, Cb, Cr.
    fn split_planes(self, raw: &[u8]) -> [Vec<u8>; 3] {
        let ysz = self.width as usize * self.height as usize;
        let csz = ysz / 4;
        let y = raw[..ysz].to_vec();
        match self.format {
            RawFormat::Yuv420 => [y, raw[ysz..ysz + csz].to_vec(), raw[ysz + csz..ysz + 2 * csz].to_vec()],
            RawFormat::Nv12 => {
                let uv = &raw[ysz..ysz + 2 * csz];
                [y, uv.iter().step_by(2).copied().collect(), uv.iter().skip(1).step_by(2).copied().collect()]
            }
        }
    }

    /// Joins planar Y, Cb, Cr into `out` in this layout.
    fn join_planes(self, planes: &[Vec<u8>; 3], out: &mut [u8]) {
        let ysz = planes[0].len();
        let csz = planes[1].len();
        out[..ysz].copy_from_slice(&planes[0]);
        match self.format {
            RawFormat::Yuv420 => {
                out[ysz..ysz + csz].copy_from_slice(&planes[1]);
                out[ysz + csz..ysz + 2 * csz].copy_from_slice(&planes[2]);
            }
            RawFormat::Nv12 => {
                for (i, (u, v)) in planes[1].iter().zip(&planes[2]).enumerate() {
                    out[ysz + 2 * i] = *u;
                    out[ysz + 2 * i + 1] = *v;
                }
            }
        }
    }
}

/// A frame header (all fields big-endian on the wire).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// Format version.
    pub version: u32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `FL_*` bits.
    pub flags: u32,
    /// V4L2 colorspace.
    pub colorspace: u32,
    /// V4L2 transfer function.
    pub xfer_func: u32,
    /// V4L2 Y'CbCr encoding.
    pub ycbcr_enc: u32,
    /// V4L2 quantization range.
    pub quantization: u32,
    /// Bytes of coded data after the header.
    pub size: u32,
}

impl Header {
    /// Reads a header at the start of `data`.
    ///
    /// # Errors
    /// [`FwhtError::Header`] without the magic or with another version;
    /// [`FwhtError::Short`] if `data` is shorter than a header.
    pub fn parse(data: &[u8]) -> Result<Header, FwhtError> {
        let w = |i: usize| u32::from_be_bytes([data[4 * i], data[4 * i + 1], data[4 * i + 2], data[4 * i + 3]]);
        if data.len() < HEADER_LEN {
            return Err(FwhtError::Short { have: data.len(), need: HEADER_LEN });
        }
        if w(0) != MAGIC1 || w(1) != MAGIC2 {
            return Err(FwhtError::Header("no magic"));
        }
        if w(2) != VERSION {
            return Err(FwhtError::Header("unsupported version"));
        }
        Ok(Header {
            version: w(2),
            width: w(3),
            height: w(4),
            flags: w(5),
            colorspace: w(6),
            xfer_func: w(7),
            ycbcr_enc: w(8),
            quantization: w(9),
            size: w(10),
        })
    }

    /// The header's 44 bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let words = [
            MAGIC1,
            MAGIC2,
            self.version,
            self.width,
            self.height,
            self.flags,
            self.colorspace,
            self.xfer_func,
            self.ycbcr_enc,
            self.quantization,
            self.size,
        ];
        let mut out = [0u8; HEADER_LEN];
        for (chunk, w) in out.chunks_exact_mut(4).zip(words) {
            chunk.copy_from_slice(&w.to_be_bytes());
        }
        out
    }

    /// Whether every block is intra coded.
    pub fn is_key_frame(&self) -> bool {
        self.flags & FL_I_FRAME != 0
    }
}

/// In-place 8-point Walsh-Hadamard butterflies (unnormalised; applying it
/// twice multiplies by 8), in sequency order of the outputs.
fn wht8(v: &mut [i32; 8]) {
    let mut h = 1;
    while h < 8 {
        for i in (0..8).step_by(2 * h) {
            for j in i..i + h {
                let (a, b) = (v[j], v[j + h]);
                v[j] = a + b;
                v[j + h] = a - b;
            }
        }
        h *= 2;
    }
}

/// 2-D transform of a block (rows, then columns).
fn wht8x8(b: &mut [i32; 64]) {
    for r in 0..8 {
        let mut row: [i32; 8] = b[r * 8..r * 8 + 8].try_into().expect("8 values");
        wht8(&mut row);
        b[r * 8..r * 8 + 8].copy_from_slice(&row);
    }
    for c in 0..8 {
        let mut col = [0; 8];
        for r in 0..8 {
            col[r] = b[r * 8 + c];
        }
        wht8(&mut col);
        for r in 0..8 {
            b[r * 8 + c] = col[r];
        }
    }
}

/// Quantises to the 12-bit coefficient range.
fn quantise(c: i32, step: i32) -> i16 {
    let q = if c >= 0 { (c + step / 2) / step } else { -((-c + step / 2) / step) };
    q.clamp(-2048, 2047) as i16
}

/// The pixels (or deltas) a block of quantised coefficients stands for.
fn reconstruct(coeffs: &[i16; 64], step: i32) -> [i32; 64] {
    let mut b = [0i32; 64];
    for (o, c) in b.iter_mut().zip(coeffs) {
        *o = i32::from(*c) * step;
    }
    wht8x8(&mut b);
    // Forward and inverse each scale by 8 per dimension: 64 in all.
    for v in &mut b {
        *v = if *v >= 0 { (*v + 32) / 64 } else { -((-*v + 32) / 64) };
    }
    b
}

/// Reads block (bx, by) of a plane, repeating the edge past its size.
fn read_block(plane: &[u8], w: usize, h: usize, bx: usize, by: usize) -> [i32; 64] {
    let mut b = [0; 64];
    for y in 0..8 {
        let sy = (by * 8 + y).min(h - 1);
        for x in 0..8 {
            let sx = (bx * 8 + x).min(w - 1);
            b[y * 8 + x] = i32::from(plane[sy * w + sx]);
        }
    }
    b
}

/// Writes the visible part of block (bx, by).
fn write_block(plane: &mut [u8], w: usize, h: usize, bx: usize, by: usize, px: &[i32; 64]) {
    for y in 0..8 {
        let dy = by * 8 + y;
        if dy >= h {
            break;
        }
        for x in 0..8 {
            let dx = bx * 8 + x;
            if dx < w {
                plane[dy * w + dx] = px[y * 8 + x].clamp(0, 255) as u8;
            }
        }
    }
}

/// Run-length codes one block's coefficients after its header word.
fn rlc_block(coeffs: &[i16; 64], out: &mut Vec<u16>) {
    let last = coeffs.iter().rposition(|&c| c != 0);
    let mut i = 0;
    loop {
        let v = coeffs[i];
        if last.is_none_or(|l| i >= l) {
            out.push(((v as u16) << 4) | 0xf);
            return;
        }
        let mut n = 1;
        while n < 15 && i + n < 64 && coeffs[i + n] == v && last.is_some_and(|l| i + n < l) {
            n += 1;
        }
        out.push(((v as u16) << 4) | (n as u16 - 1));
        i += n;
    }
}

/// Coded words of a block (header excluded) to coefficients.
fn unrlc_block(words: &[u16], pos: &mut usize) -> Result<[i16; 64], FwhtError> {
    let mut c = [0i16; 64];
    let mut i = 0;
    loop {
        let w = *words.get(*pos).ok_or(FwhtError::Corrupt("block ends early"))?;
        *pos += 1;
        let v = (w as i16) >> 4;
        let n = w & 0xf;
        if n == 0xf {
            *c.get_mut(i).ok_or(FwhtError::Corrupt("block overflows"))? = v;
            return Ok(c);
        }
        for _ in 0..=n {
            *c.get_mut(i).ok_or(FwhtError::Corrupt("block overflows"))? = v;
            i += 1;
        }
        if i == 64 {
            return Ok(c);
        }
    }
}

/// Codes one plane; returns its words and the reconstruction.
fn encode_plane(
    plane: &[u8],
    reference: Option<&[u8]>,
    (w, h): (usize, usize),
    (i_step, p_step): (i32, i32),
) -> (Vec<u16>, Vec<u8>, bool) {
    let mut out: Vec<u16> = Vec::new();
    let mut recon = vec![0u8; plane.len()];
    let mut all_intra = true;
    let mut prev: Option<(usize, u16, [i16; 64])> = None; // (header index, header, coeffs)
    for by in 0..h.div_ceil(8) {
        for bx in 0..w.div_ceil(8) {
            let px = read_block(plane, w, h, bx, by);
            let mut intra = px;
            intra.iter_mut().for_each(|v| *v -= 128);
            wht8x8(&mut intra);
            let mut coeffs = [0i16; 64];
            for (q, c) in coeffs.iter_mut().zip(&intra) {
                *q = quantise(*c, i_step);
            }
            let mut header = 0u16;
            let mut pred = [128i32; 64];
            let mut step = i_step;
            if let Some(r) = reference {
                let refb = read_block(r, w, h, bx, by);
                let mut delta = [0i32; 64];
                for ((d, p), q) in delta.iter_mut().zip(&px).zip(&refb) {
                    *d = p - q;
                }
                wht8x8(&mut delta);
                let mut pc = [0i16; 64];
                for (q, c) in pc.iter_mut().zip(&delta) {
                    *q = quantise(*c, p_step);
                }
                let cost = |c: &[i16; 64]| c.iter().filter(|v| **v != 0).count();
                if cost(&pc) < cost(&coeffs) {
                    coeffs = pc;
                    header = PFRAME_BIT;
                    pred = refb;
                    step = p_step;
                    all_intra = false;
                }
            }
            let rec = reconstruct(&coeffs, step);
            let mut pixels = [0i32; 64];
            for ((o, p), r) in pixels.iter_mut().zip(&pred).zip(&rec) {
                *o = p + r;
            }
            write_block(&mut recon, w, h, bx, by, &pixels);
            match &mut prev {
                Some((at, hdr, c)) if *hdr == header && *c == coeffs && (out[*at] >> 1) & MAX_REPEAT < MAX_REPEAT => {
                    out[*at] += 2;
                }
                _ => {
                    prev = Some((out.len(), header, coeffs));
                    out.push(header);
                    rlc_block(&coeffs, &mut out);
                }
            }
        }
    }
    (out, recon, all_intra)
}

/// Decodes one coded plane into `dst`, predicting from `reference`.
fn decode_plane(
    words: &[u16],
    pos: &mut usize,
    reference: Option<&[u8]>,
    dst: &mut [u8],
    (w, h): (usize, usize),
    (i_step, p_step): (i32, i32),
) -> Result<(), FwhtError> {
    let blocks = w.div_ceil(8) * h.div_ceil(8);
    let mut n = 0;
    while n < blocks {
        let header = *words.get(*pos).ok_or(FwhtError::Corrupt("plane ends early"))?;
        *pos += 1;
        let coeffs = unrlc_block(words, pos)?;
        let is_p = header & PFRAME_BIT != 0;
        let repeat = usize::from((header >> 1) & MAX_REPEAT);
        for _ in 0..=repeat {
            if n >= blocks {
                return Err(FwhtError::Corrupt("more blocks than the plane has"));
            }
            let (bx, by) = (n % w.div_ceil(8), n / w.div_ceil(8));
            let pred = match (is_p, reference) {
                (true, Some(r)) => read_block(r, w, h, bx, by),
                (true, None) => return Err(FwhtError::Corrupt("P block without a reference frame")),
                (false, _) => [128; 64],
            };
            let rec = reconstruct(&coeffs, if is_p { p_step } else { i_step });
            let mut px = [0i32; 64];
            for ((o, p), r) in px.iter_mut().zip(&pred).zip(&rec) {
                *o = p + r;
            }
            write_block(dst, w, h, bx, by, &px);
            n += 1;
        }
    }
    Ok(())
}

/// Steps of a quantisation parameter pair (1..=31 each, clamped).
fn steps(i_qp: u16, p_qp: u16) -> (i32, i32) {
    (8 * i32::from(i_qp.clamp(1, 31)), 8 * i32::from(p_qp.clamp(1, 31)))
}

/// The quantisation parameters travel in the header's spare `quantization`
/// high bits: i_qp at bits 16-23, p_qp at 24-31 (the low byte stays the
/// V4L2 quantization range).
fn pack_qp(i_qp: u16, p_qp: u16) -> u32 {
    (u32::from(i_qp.clamp(1, 31)) << 16) | (u32::from(p_qp.clamp(1, 31)) << 24)
}

fn unpack_qp(q: u32) -> (u16, u16) {
    (((q >> 16) & 0xff) as u16, ((q >> 24) & 0xff) as u16)
}

/// An encoder: a geometry, a group-of-pictures size and the reference
/// frame (its own reconstruction of the last frame).
#[derive(Debug)]
pub struct Encoder {
    frame: RawFrame,
    gop_size: u32,
    count: u32,
    reference: Option<[Vec<u8>; 3]>,
}

impl Encoder {
    /// An encoder whose every `gop_size`-th frame is a key frame (0 or 1:
    /// every frame).
    pub fn new(frame: RawFrame, gop_size: u32) -> Encoder {
        Encoder { frame, gop_size: gop_size.max(1), count: 0, reference: None }
    }

    /// Codes one frame with quantisation parameters `i_qp` and `p_qp`
    /// (1..=31, as vicodec's controls; larger is coarser).
    ///
    /// # Errors
    /// [`FwhtError::Short`] if `raw` is smaller than a frame.
    pub fn encode(&mut self, raw: &[u8], i_qp: u16, p_qp: u16) -> Result<Vec<u8>, FwhtError> {
        let f = self.frame;
        if raw.len() < f.size() {
            return Err(FwhtError::Short { have: raw.len(), need: f.size() });
        }
        let planes = f.split_planes(raw);
        let key = self.count % self.gop_size == 0;
        self.count = self.count.wrapping_add(1);
        let reference = if key { None } else { self.reference.take() };
        let steps = steps(i_qp, p_qp);
        let mut flags = FL_PIXENC_YUV | (2 << FL_COMPONENTS_NUM_OFFSET);
        let mut data = Vec::new();
        let mut recon: [Vec<u8>; 3] = Default::default();
        let mut all_intra = true;
        for p in 0..3 {
            let dims = f.plane_dims(p);
            let (words, rec, intra) = encode_plane(&planes[p], reference.as_ref().map(|r| &r[p][..]), dims, steps);
            all_intra &= intra;
            if words.len() * 2 >= planes[p].len() {
                flags |= RAW_FLAGS[p];
                data.extend_from_slice(&planes[p]);
                recon[p] = planes[p].clone();
            } else {
                data.extend(words.iter().flat_map(|w| w.to_be_bytes()));
                recon[p] = rec;
            }
        }
        if all_intra {
            flags |= FL_I_FRAME;
        }
        self.reference = Some(recon);
        let size = u32::try_from(data.len()).expect("a frame's data is below 4 GiB");
        let hdr = Header {
            version: VERSION,
            width: f.width,
            height: f.height,
            flags,
            quantization: pack_qp(i_qp, p_qp),
            size,
            ..Header::default()
        };
        let mut out = hdr.to_bytes().to_vec();
        out.extend_from_slice(&data);
        Ok(out)
    }
}

/// A decoder: keeps the last decoded frame as the reference of P blocks.
#[derive(Debug, Default)]
pub struct Decoder {
    reference: Option<(u32, u32, [Vec<u8>; 3])>,
}

impl Decoder {
    /// Forgets the reference frame (after a seek or a resolution change).
    pub fn reset(&mut self) {
        self.reference = None;
    }

    /// Decodes the frame at the start of `coded` into `out`, laid out as
    /// `frame` (whose size must be the header's). Returns the header.
    ///
    /// # Errors
    /// [`FwhtError::Header`] for a bad header or a size other than
    /// `frame`'s; [`FwhtError::Short`] if `coded` or `out` is too small;
    /// [`FwhtError::Corrupt`] for malformed data. `out` is unchanged then.
    pub fn decode(&mut self, coded: &[u8], frame: RawFrame, out: &mut [u8]) -> Result<Header, FwhtError> {
        let hdr = Header::parse(coded)?;
        if (hdr.width, hdr.height) != (frame.width, frame.height) {
            return Err(FwhtError::Header("frame size differs from the format"));
        }
        if out.len() < frame.size() {
            return Err(FwhtError::Short { have: out.len(), need: frame.size() });
        }
        let body = coded
            .get(HEADER_LEN..HEADER_LEN + hdr.size as usize)
            .ok_or(FwhtError::Short { have: coded.len(), need: HEADER_LEN + hdr.size as usize })?;
        let reference = match &self.reference {
            Some((w, h, r)) if (*w, *h) == (hdr.width, hdr.height) => Some(r),
            _ => None,
        };
        let (i_qp, p_qp) = unpack_qp(hdr.quantization);
        let steps = steps(i_qp, p_qp);
        let mut planes: [Vec<u8>; 3] = Default::default();
        let mut at = 0usize;
        for p in 0..3 {
            let (w, h) = frame.plane_dims(p);
            planes[p] = vec![0; w * h];
            if hdr.flags & RAW_FLAGS[p] != 0 {
                let src = body.get(at..at + w * h).ok_or(FwhtError::Corrupt("raw plane ends early"))?;
                planes[p].copy_from_slice(src);
                at += w * h;
            } else {
                let rest = body.get(at..).unwrap_or(&[]);
                let words: Vec<u16> = rest.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
                let mut pos = 0;
                decode_plane(&words, &mut pos, reference.map(|r| &r[p][..]), &mut planes[p], (w, h), steps)?;
                at += pos * 2;
            }
        }
        frame.join_planes(&planes, out);
        self.reference = Some((hdr.width, hdr.height, planes));
        Ok(hdr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A moving gradient with a sharp edge: frame `n` of a test sequence.
    fn frame(f: RawFrame, n: u32) -> Vec<u8> {
        let (w, h) = (f.width() as usize, f.height() as usize);
        let mut y = vec![0u8; w * h];
        for r in 0..h {
            for c in 0..w {
                let edge = if (c + n as usize * 3) % 40 < 20 { 60 } else { 0 };
                y[r * w + c] = ((r + c + n as usize) % 180) as u8 + edge;
            }
        }
        let chroma = |k: usize| (0..w * h / 4).map(|i| ((i * k + n as usize) % 200) as u8 + 20).collect::<Vec<_>>();
        let planes = [y, chroma(1), chroma(3)];
        let mut out = vec![0; f.size()];
        f.join_planes(&planes, &mut out);
        out
    }

    fn max_err(a: &[u8], b: &[u8]) -> u8 {
        a.iter().zip(b).map(|(x, y)| x.abs_diff(*y)).max().unwrap()
    }

    #[test]
    fn transform_twice_scales_by_64() {
        let mut b = [0i32; 64];
        for (i, v) in b.iter_mut().enumerate() {
            *v = (i as i32 * 37) % 255 - 128;
        }
        let orig = b;
        wht8x8(&mut b);
        wht8x8(&mut b);
        for (x, o) in b.iter().zip(&orig) {
            assert_eq!(*x, o * 64);
        }
    }

    #[test]
    fn rlc_round_trips_blocks() {
        let mut blocks = vec![[0i16; 64], [5i16; 64], [-2048i16; 64]];
        let mut b = [0i16; 64];
        b[0] = 2047;
        b[1] = -1;
        b[63] = 7;
        blocks.push(b);
        let mut c = [0i16; 64];
        c[20..40].fill(3);
        blocks.push(c);
        for blk in blocks {
            let mut words = Vec::new();
            rlc_block(&blk, &mut words);
            let mut pos = 0;
            assert_eq!(unrlc_block(&words, &mut pos).unwrap(), blk);
            assert_eq!(pos, words.len());
        }
    }

    #[test]
    fn header_round_trip_and_errors() {
        let h = Header { version: VERSION, width: 64, height: 32, flags: FL_I_FRAME, size: 9, ..Header::default() };
        let bytes = h.to_bytes();
        assert_eq!(&bytes[..8], &[0x4f, 0x4f, 0x4f, 0x4f, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(Header::parse(&bytes).unwrap(), h);
        assert!(matches!(Header::parse(&bytes[..40]), Err(FwhtError::Short { .. })));
        let mut bad = bytes;
        bad[0] = 0;
        assert_eq!(Header::parse(&bad), Err(FwhtError::Header("no magic")));
        let mut v2 = bytes;
        v2[11] = 2;
        assert_eq!(Header::parse(&v2), Err(FwhtError::Header("unsupported version")));
    }

    #[test]
    fn encode_decode_sequence_both_layouts() {
        for fmt in [RawFormat::Nv12, RawFormat::Yuv420] {
            let f = RawFrame::new(fmt, 72, 50).unwrap();
            let mut enc = Encoder::new(f, 4);
            let mut dec = Decoder::default();
            let mut out = vec![0; f.size()];
            for n in 0..8 {
                let raw = frame(f, n);
                let coded = enc.encode(&raw, 1, 1).unwrap();
                let hdr = dec.decode(&coded, f, &mut out).unwrap();
                assert_eq!(hdr.is_key_frame(), n % 4 == 0, "frame {n}");
                assert!(max_err(&raw, &out) <= 12, "frame {n} {fmt:?}: error {}", max_err(&raw, &out));
                assert!(coded.len() < f.max_coded_size());
            }
        }
    }

    #[test]
    fn decoding_is_deterministic_and_coarser_qp_is_smaller() {
        let f = RawFrame::new(RawFormat::Nv12, 64, 64).unwrap();
        let raw = frame(f, 3);
        let fine = Encoder::new(f, 1).encode(&raw, 1, 1).unwrap();
        let coarse = Encoder::new(f, 1).encode(&raw, 16, 16).unwrap();
        assert!(coarse.len() < fine.len());
        assert_eq!(fine, Encoder::new(f, 1).encode(&raw, 1, 1).unwrap());
        let (mut a, mut b) = (vec![0; f.size()], vec![0; f.size()]);
        Decoder::default().decode(&coarse, f, &mut a).unwrap();
        Decoder::default().decode(&coarse, f, &mut b).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn flat_frames_compress_by_repeats() {
        let f = RawFrame::new(RawFormat::Yuv420, 256, 128).unwrap();
        let raw = vec![90u8; f.size()];
        let coded = Encoder::new(f, 1).encode(&raw, 1, 1).unwrap();
        // One block per plane plus its repeat count.
        assert!(coded.len() < HEADER_LEN + 3 * 8, "{} bytes", coded.len());
        let mut out = vec![0; f.size()];
        Decoder::default().decode(&coded, f, &mut out).unwrap();
        assert_eq!(out, raw);
    }

    #[test]
    fn corrupt_and_mismatched_streams_are_refused() {
        let f = RawFrame::new(RawFormat::Nv12, 32, 32).unwrap();
        let coded = Encoder::new(f, 1).encode(&frame(f, 0), 1, 1).unwrap();
        let mut out = vec![7u8; f.size()];
        let other = RawFrame::new(RawFormat::Nv12, 32, 16).unwrap();
        assert!(matches!(Decoder::default().decode(&coded, other, &mut out), Err(FwhtError::Header(_))));
        assert!(matches!(
            Decoder::default().decode(&coded[..coded.len() - 2], f, &mut out),
            Err(FwhtError::Short { .. })
        ));
        assert!(out.iter().all(|b| *b == 7), "a refused frame leaves the output alone");
        // A P frame needs a reference.
        let mut enc = Encoder::new(f, 8);
        enc.encode(&frame(f, 0), 1, 1).unwrap();
        let p = enc.encode(&frame(f, 1), 1, 1).unwrap();
        assert!(!Header::parse(&p).unwrap().is_key_frame());
        assert_eq!(
            Decoder::default().decode(&p, f, &mut out),
            Err(FwhtError::Corrupt("P block without a reference frame"))
        );
        // Garbage after a valid header never panics.
        let mut junk = coded.clone();
        for (i, b) in junk[HEADER_LEN..].iter_mut().enumerate() {
            *b = (i * 7919 % 256) as u8;
        }
        let _ = Decoder::default().decode(&junk, f, &mut out);
        assert!(RawFrame::new(RawFormat::Nv12, 33, 32).is_err());
        assert!(RawFrame::new(RawFormat::Nv12, 8, 32).is_err());
    }
}
