//! Framebuffers (`drm_framebuffer`): `ADDFB2`'s checks in the kernel's
//! order (`drm_internal_framebuffer_create`, `framebuffer_check`,
//! `drm_gem_fb_init_with_funcs`) and the formats the primary plane scans.
//!
//! A [`Fb`] holds its planes' buffers through display attachments, so the
//! memory lives while the framebuffer does — in the creating file's list,
//! in a plane's state, or both.

use std::sync::Arc;

use teeheap_platform::Master;
use teeheap_uapi::drm::*;

use crate::dma_buf::{Attachment, DmaBuf};
use crate::error::{Errno, Error, Result, einval};

/// Smallest and largest framebuffer and mode sizes (vkms: 10..8192).
pub const MIN_SIZE: u32 = 10;
/// See [`MIN_SIZE`].
pub const MAX_SIZE: u32 = 8192;

/// `DRM_MODE_FB_INTERLACED`.
const FB_INTERLACED: u32 = 1;

/// The pixel formats the primary plane takes, as `GETPLANE` lists them.
pub const FORMATS: [u32; 3] = [DRM_FORMAT_XRGB8888, DRM_FORMAT_ARGB8888, DRM_FORMAT_NV12];

/// What the checks need of a format (`drm_format_info`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FormatInfo {
    /// Bytes per pixel of each plane.
    pub cpp: &'static [u32],
    /// Horizontal and vertical subsampling of the planes after the first.
    pub sub: (u32, u32),
}

impl FormatInfo {
    /// The info of `fourcc`, for the formats this model knows.
    pub fn of(fourcc: u32) -> Option<FormatInfo> {
        match fourcc {
            DRM_FORMAT_XRGB8888 | DRM_FORMAT_ARGB8888 => Some(FormatInfo { cpp: &[4], sub: (1, 1) }),
            DRM_FORMAT_NV12 => Some(FormatInfo { cpp: &[1, 2], sub: (2, 2) }),
            _ => None,
        }
    }

    /// Width and height of plane `i` of a `w`x`h` frame.
    pub fn plane_size(&self, i: usize, w: u32, h: u32) -> (u32, u32) {
        if i == 0 { (w, h) } else { (w.div_ceil(self.sub.0), h.div_ceil(self.sub.1)) }
    }
}

/// One plane of a framebuffer.
#[derive(Debug)]
pub struct FbPlane {
    /// The buffer, attached for the display.
    pub attachment: Attachment,
    /// Byte offset of the plane in it.
    pub offset: u32,
    /// Bytes per row.
    pub pitch: u32,
}

/// A framebuffer. Its id is the mode-object id it was registered under.
#[derive(Debug)]
pub struct Fb {
    /// Mode-object id.
    pub id: u32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Fourcc.
    pub format: u32,
    /// The modifier (linear only).
    pub modifier: u64,
    /// Its planes.
    pub planes: Vec<FbPlane>,
}

impl Fb {
    /// Whether any plane's buffer is protected memory.
    pub fn is_protected(&self) -> bool {
        self.planes.iter().any(|p| p.attachment.buffer().is_protected())
    }
}

/// The checks of `ADDFB2` up to the buffer look-ups, in the kernel's order.
///
/// # Errors
/// `EINVAL` for bad flags, sizes, formats, pitches, handles or modifiers;
/// `ERANGE` when a plane's extent does not fit 32 bits.
pub fn check(r: &DrmModeFbCmd2) -> Result<FormatInfo> {
    if r.flags & !(FB_INTERLACED | DRM_MODE_FB_MODIFIERS) != 0 {
        return Err(einval("bad framebuffer flags"));
    }
    if !(MIN_SIZE..=MAX_SIZE).contains(&r.width) || !(MIN_SIZE..=MAX_SIZE).contains(&r.height) {
        return Err(einval("framebuffer size out of the mode config's range"));
    }
    let info = FormatInfo::of(r.pixel_format).ok_or(einval("unknown pixel format"))?;
    let modifiers = r.flags & DRM_MODE_FB_MODIFIERS != 0;
    for (i, &cpp) in info.cpp.iter().enumerate() {
        let (w, h) = info.plane_size(i, r.width, r.height);
        let min_pitch = u64::from(w) * u64::from(cpp);
        if r.handles[i] == 0 {
            return Err(einval("no buffer object handle for a plane"));
        }
        if min_pitch > u64::from(u32::MAX) {
            return Err(Error::new(Errno::ERANGE, "pitch overflows"));
        }
        if u64::from(h) * u64::from(r.pitches[i]) + u64::from(r.offsets[i]) > u64::from(u32::MAX) {
            return Err(Error::new(Errno::ERANGE, "plane extent overflows"));
        }
        if u64::from(r.pitches[i]) < min_pitch {
            return Err(einval("pitch below the plane's width"));
        }
        if r.modifier[i] != 0 && !modifiers {
            return Err(einval("modifier without DRM_MODE_FB_MODIFIERS"));
        }
        if modifiers && r.modifier[i] != r.modifier[0] {
            return Err(einval("planes with different modifiers"));
        }
    }
    for i in info.cpp.len()..4 {
        if r.modifier[i] != 0 {
            return Err(einval("modifier for a plane the format lacks"));
        }
        if modifiers && (r.handles[i] != 0 || r.pitches[i] != 0 || r.offsets[i] != 0) {
            return Err(einval("handle, pitch or offset for a plane the format lacks"));
        }
    }
    if r.modifier[0] != DRM_FORMAT_MOD_LINEAR {
        return Err(einval("unsupported modifier"));
    }
    Ok(info)
}

/// Builds the framebuffer `id` of `r` (checked by [`check`]) over the
/// buffers `lookup` finds for its handles, each big enough for its plane.
///
/// # Errors
/// `ENOENT` for an unknown handle; `EINVAL` for a buffer too small.
pub fn build(id: u32, r: &DrmModeFbCmd2, info: FormatInfo, lookup: &dyn Fn(u32) -> Result<Arc<DmaBuf>>) -> Result<Fb> {
    let mut planes = Vec::with_capacity(info.cpp.len());
    for (i, &cpp) in info.cpp.iter().enumerate() {
        let buf = lookup(r.handles[i]).map_err(|_| Error::new(Errno::ENOENT, "no GEM object for a plane's handle"))?;
        let (w, h) = info.plane_size(i, r.width, r.height);
        let min_size =
            u64::from(h - 1) * u64::from(r.pitches[i]) + u64::from(w) * u64::from(cpp) + u64::from(r.offsets[i]);
        if buf.size().bytes() < min_size {
            return Err(einval("buffer too small for its plane"));
        }
        let attachment = buf.attach(Master::Display)?;
        planes.push(FbPlane { attachment, offset: r.offsets[i], pitch: r.pitches[i] });
    }
    Ok(Fb { id, width: r.width, height: r.height, format: r.pixel_format, modifier: r.modifier[0], planes })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nv12(w: u32, h: u32) -> DrmModeFbCmd2 {
        DrmModeFbCmd2 {
            width: w,
            height: h,
            pixel_format: DRM_FORMAT_NV12,
            handles: [1, 1, 0, 0],
            pitches: [w, w, 0, 0],
            offsets: [0, w * h, 0, 0],
            ..Default::default()
        }
    }

    #[test]
    fn check_table() {
        let ok = nv12(1920, 1080);
        assert!(check(&ok).is_ok());
        type Change = fn(&mut DrmModeFbCmd2);
        let cases: [(Change, Errno); 8] = [
            (|r| r.flags = 4, Errno::EINVAL),
            (|r| r.width = 9, Errno::EINVAL),
            (|r| r.height = 8193, Errno::EINVAL),
            (|r| r.pixel_format = fourcc(b"YUYV"), Errno::EINVAL),
            (|r| r.handles[1] = 0, Errno::EINVAL),
            (|r| r.pitches[1] = 100, Errno::EINVAL),
            (|r| r.offsets[1] = u32::MAX - 10, Errno::ERANGE),
            (|r| r.modifier[0] = 1, Errno::EINVAL),
        ];
        for (i, (f, errno)) in cases.iter().enumerate() {
            let mut r = ok;
            f(&mut r);
            assert_eq!(check(&r).unwrap_err().errno(), *errno, "case {i}");
        }
        // Stale plane-3 fields are ignored without FB_MODIFIERS, refused with it.
        let mut r = ok;
        r.handles[3] = 7;
        assert!(check(&r).is_ok());
        r.flags = DRM_MODE_FB_MODIFIERS;
        assert_eq!(check(&r).unwrap_err().errno(), Errno::EINVAL);
    }
}
