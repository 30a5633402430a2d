//! Frame formats: how a frame of a given geometry is laid out in memory.
//!
//! A [`Frame`] is a geometry (width, height, [`PixelFormat`]), validated
//! once on construction, that says how many bytes a frame takes. Frames are
//! plain values; the devices and the test streams render into them row by
//! row.
//!
//! # Frame layouts
//! - NV12: a Y plane of `width * height` bytes, then an interleaved UV
//!   plane of `width * height / 2` bytes (4:2:0, U first).
//! - P010: the NV12 layout with 16-bit little-endian samples whose value
//!   sits in the high 10 bits (an 8-bit value `v` becomes
//!   `((v << 2) | (v >> 6)) << 6`).
//! - XRGB8888: one plane of 32-bit pixels, bytes `B, G, R, X` (X = 0).

use crate::addr::Len;

/// Largest width or height of a frame.
pub const MAX_DIMENSION: u32 = 16384;

/// How pixels are laid out in memory. See the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    /// 8-bit 4:2:0, Y plane then interleaved UV plane.
    Nv12,
    /// 10-bit 4:2:0 in 16-bit samples, layout as NV12.
    P010,
    /// 32-bit RGB, bytes B, G, R, X: UI framebuffers.
    Xrgb8888,
}

impl PixelFormat {
    /// Every format.
    pub const ALL: [PixelFormat; 3] = [PixelFormat::Nv12, PixelFormat::P010, PixelFormat::Xrgb8888];

    /// The format's code in a TBS header.
    pub const fn code(self) -> u8 {
        match self {
            PixelFormat::Nv12 => 1,
            PixelFormat::P010 => 2,
            PixelFormat::Xrgb8888 => 3,
        }
    }

    /// The format with TBS code `code`.
    pub const fn from_code(code: u8) -> Option<PixelFormat> {
        match code {
            1 => Some(PixelFormat::Nv12),
            2 => Some(PixelFormat::P010),
            3 => Some(PixelFormat::Xrgb8888),
            _ => None,
        }
    }

    /// The DRM-style name (`NV12`, `P010`, `XRGB8888`).
    pub const fn name(self) -> &'static str {
        match self {
            PixelFormat::Nv12 => "NV12",
            PixelFormat::P010 => "P010",
            PixelFormat::Xrgb8888 => "XRGB8888",
        }
    }

    /// Whether this is a 4:2:0 YUV format (even dimensions required).
    pub const fn is_yuv420(self) -> bool {
        matches!(self, PixelFormat::Nv12 | PixelFormat::P010)
    }
}

/// The geometry of a frame: width, height and format.
///
/// # Invariants
/// `0 < width, height <= MAX_DIMENSION`, both even for YUV formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Frame {
    width: u32,
    height: u32,
    format: PixelFormat,
}

impl Frame {
    /// 4K UHD (3840x2160) NV12.
    pub const UHD_NV12: Frame = Frame { width: 3840, height: 2160, format: PixelFormat::Nv12 };
    /// 4K UHD (3840x2160) P010 (10-bit).
    pub const UHD_P010: Frame = Frame { width: 3840, height: 2160, format: PixelFormat::P010 };
    /// 1080p (1920x1080) NV12.
    pub const FHD_NV12: Frame = Frame { width: 1920, height: 1080, format: PixelFormat::Nv12 };
    /// 1080p (1920x1080) P010 (10-bit).
    pub const FHD_P010: Frame = Frame { width: 1920, height: 1080, format: PixelFormat::P010 };
    /// 1080p (1920x1080) XRGB8888: a UI framebuffer.
    pub const FHD_XRGB8888: Frame = Frame { width: 1920, height: 1080, format: PixelFormat::Xrgb8888 };

    /// A `width` x `height` frame of `format`, or `None` if a dimension is 0,
    /// above [`MAX_DIMENSION`], or odd for a 4:2:0 format.
    pub const fn new(width: u32, height: u32, format: PixelFormat) -> Option<Frame> {
        let ok = width > 0
            && height > 0
            && width <= MAX_DIMENSION
            && height <= MAX_DIMENSION
            && (!format.is_yuv420() || (width % 2 == 0 && height % 2 == 0));
        if ok { Some(Frame { width, height, format }) } else { None }
    }

    /// Width in pixels.
    pub const fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub const fn height(&self) -> u32 {
        self.height
    }

    /// Pixel format.
    pub const fn format(&self) -> PixelFormat {
        self.format
    }

    /// Bytes one frame takes in memory.
    pub const fn byte_size(&self) -> u64 {
        let pixels = self.width as u64 * self.height as u64;
        match self.format {
            PixelFormat::Nv12 => pixels * 3 / 2,
            PixelFormat::P010 => pixels * 3,
            PixelFormat::Xrgb8888 => pixels * 4,
        }
    }

    /// [`Self::byte_size`] rounded up to whole pages: what a heap allocation
    /// for the frame must be.
    pub fn page_size(&self) -> Len {
        // Non-zero and at most 16384^2 * 4 bytes: never fails.
        Len::page_align(self.byte_size()).expect("frame sizes are small and non-zero")
    }

    /// The planes as (rows, components per row). A component is one 8-bit
    /// value before packing: Y; U or V; or one of B, G, R, X.
    pub(crate) fn planes(&self) -> impl Iterator<Item = (u32, usize)> {
        let (w, h) = (self.width as usize, self.height);
        let planes = match self.format {
            PixelFormat::Nv12 | PixelFormat::P010 => [(h, w), (h / 2, w)],
            PixelFormat::Xrgb8888 => [(h, 4 * w), (0, 0)],
        };
        planes.into_iter().filter(|&(rows, _)| rows > 0)
    }

    /// Renders the frame row by row: `row(plane, y, comps)` fills one row of
    /// components, which are packed to the format's bytes and handed to
    /// `sink` in order (each call is one packed row).
    pub(crate) fn render_rows<E>(
        &self,
        mut row: impl FnMut(usize, u32, &mut [u8]),
        mut sink: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let max_comps = self.planes().map(|(_, c)| c).max().unwrap_or(0);
        // Rows of frames bound for protected memory: wiped when dropped.
        let mut comps = zeroize::Zeroizing::new(vec![0u8; max_comps]);
        let mut packed =
            zeroize::Zeroizing::new(vec![0u8; if self.format == PixelFormat::P010 { 2 * max_comps } else { 0 }]);
        for (plane, (rows, n)) in self.planes().enumerate() {
            for y in 0..rows {
                let comps = &mut comps[..n];
                row(plane, y, comps);
                if self.format == PixelFormat::P010 {
                    let packed = &mut packed[..2 * n];
                    for (out, &v) in packed.chunks_exact_mut(2).zip(comps.iter()) {
                        out.copy_from_slice(&p010_sample(v).to_le_bytes());
                    }
                    sink(packed)?;
                } else {
                    sink(comps)?;
                }
            }
        }
        Ok(())
    }
}

/// The 16-bit P010 sample for the 8-bit value `v` (10 bits, MSB aligned).
pub(crate) const fn p010_sample(v: u8) -> u16 {
    let v10 = ((v as u16) << 2) | ((v as u16) >> 6);
    v10 << 6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(Frame::FHD_NV12.byte_size(), 3_110_400);
        assert_eq!(Frame::UHD_NV12.byte_size(), 12_441_600);
        assert_eq!(Frame::UHD_P010.byte_size(), 24_883_200);
        assert_eq!(Frame::FHD_XRGB8888.byte_size(), 8_294_400);
        assert_eq!(Frame::FHD_NV12.page_size().bytes(), 3_112_960);
        assert_eq!(Frame::UHD_P010.page_size().pages(), 6075);
        assert_eq!(Frame::new(3840, 2160, PixelFormat::Nv12), Some(Frame::UHD_NV12));
        for (w, h, f) in [(0, 2, PixelFormat::Nv12), (3, 2, PixelFormat::P010), (16386, 2, PixelFormat::Xrgb8888)] {
            assert_eq!(Frame::new(w, h, f), None, "{w}x{h} {f:?}");
        }
        assert!(Frame::new(3, 3, PixelFormat::Xrgb8888).is_some());
        for f in PixelFormat::ALL {
            assert_eq!(PixelFormat::from_code(f.code()), Some(f));
        }
    }

    #[test]
    fn p010_samples_are_msb_aligned() {
        assert_eq!(p010_sample(0), 0);
        assert_eq!(p010_sample(255), 0xffc0);
        assert_eq!(p010_sample(128), 0x8080);
    }
}
