//! The camera: writes captured frames into a buffer as [`Master::Camera`].
//!
//! The sensor sees a synthetic, deterministic scene (a sky with a moving
//! sun over the ground, plus sensor noise), so that frame `n` is always the
//! same bytes: [`capture_reference`] gives them without any device. The
//! camera only writes; it keeps nothing between frames but a counter.

use std::sync::atomic::{AtomicU64, Ordering};

use super::format::{Frame, PixelFormat};
use super::{DeviceError, SgWriter, ensure_len};
use crate::{Master, PhysRange, Platform};

/// The camera device. See the module documentation.
#[derive(Debug, Default)]
pub struct Camera {
    captured: AtomicU64,
}

impl Camera {
    /// A camera that has captured nothing yet.
    pub fn new() -> Camera {
        Camera::default()
    }

    /// Captures frame `frame_no` of geometry `frame` into the start of
    /// `dst`, writing through the firewall as [`Master::Camera`]. Returns the
    /// bytes written ([`Frame::byte_size`]).
    ///
    /// # Errors
    /// [`DeviceError::BufferTooSmall`] if `dst` is smaller than the frame;
    /// [`DeviceError::Access`] if the firewall refuses a write (the buffer
    /// may then be partly written).
    pub fn capture(
        &self,
        platform: &Platform,
        frame_no: u32,
        dst: &[PhysRange],
        frame: Frame,
    ) -> Result<u64, DeviceError> {
        ensure_len(Master::Camera, dst, frame.byte_size())?;
        let mut out = SgWriter::new(platform, Master::Camera, dst, 0);
        frame.render_rows(|plane, y, comps| scene_row(&frame, frame_no, plane, y, comps), |row| out.push(row))?;
        let bytes = out.finish()?;
        self.captured.fetch_add(1, Ordering::Relaxed);
        Ok(bytes)
    }

    /// How many frames were captured successfully.
    pub fn frames_captured(&self) -> u64 {
        self.captured.load(Ordering::Relaxed)
    }
}

/// The bytes of frame `frame_no` of the camera's scene at geometry `frame`:
/// exactly what [`Camera::capture`] writes.
pub fn capture_reference(frame_no: u32, frame: Frame) -> Vec<u8> {
    let mut out = Vec::with_capacity(frame.byte_size() as usize);
    frame
        .render_rows(
            |plane, y, comps| scene_row(&frame, frame_no, plane, y, comps),
            |row| {
                out.extend_from_slice(row);
                Ok::<(), ()>(())
            },
        )
        .unwrap_or(());
    out
}

/// A cheap hash of a pixel position and frame: the sensor noise.
fn noise(x: u32, y: u32, f: u32) -> u8 {
    let mut h = x.wrapping_mul(0x9e37_79b1) ^ y.wrapping_mul(0x85eb_ca6b) ^ f.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 15;
    h = h.wrapping_mul(0x2c1b_3c6d);
    (h >> 24) as u8 & 7
}

/// What the sensor sees at luma position (x, y): 0 sky, 1 ground, 2 sun.
fn region(frame: &Frame, f: u32, x: u32, y: u32) -> u8 {
    let (w, h) = (i64::from(frame.width()), i64::from(frame.height()));
    let (cx, cy, r) = (i64::from(f.wrapping_mul(24)) % w, h / 4, (h / 12).max(1));
    let (dx, dy) = (i64::from(x) - cx, i64::from(y) - cy);
    if dx * dx + dy * dy <= r * r {
        2
    } else if i64::from(y) >= h * 2 / 3 {
        1
    } else {
        0
    }
}

/// Fills one row of components of the scene (see `Frame::render_rows`).
fn scene_row(frame: &Frame, f: u32, plane: usize, y: u32, out: &mut [u8]) {
    let h = frame.height().max(1);
    match (frame.format(), plane) {
        (PixelFormat::Xrgb8888, _) => {
            for (x, px) in (0u32..).zip(out.chunks_exact_mut(4)) {
                let n = noise(x, y, f);
                let [r, g, b] = match region(frame, f, x, y) {
                    0 => [90, 150, (200 + 50 * y / h) as u8],
                    1 => [60, 140, 50],
                    _ => [255, 230, 120],
                };
                px.copy_from_slice(&[b.saturating_sub(n), g.saturating_sub(n), r.saturating_sub(n), 0]);
            }
        }
        (_, 0) => {
            for (x, v) in (0u32..).zip(out.iter_mut()) {
                let base = match region(frame, f, x, y) {
                    0 => (60 + 100 * y / h) as u8,
                    1 => 90,
                    _ => 235,
                };
                *v = base.saturating_sub(noise(x, y, f));
            }
        }
        _ => {
            for (cx, uv) in (0u32..).zip(out.chunks_exact_mut(2)) {
                let [u, v] = match region(frame, f, 2 * cx, 2 * y) {
                    0 => [160, 110],
                    1 => [90, 100],
                    _ => [100, 150],
                };
                uv.copy_from_slice(&[u, v]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::read_sg;
    use super::super::testutil::{carve, normal, platform};
    use super::*;
    use crate::{AccessKind, UseCase};

    #[test]
    fn captures_into_the_recording_carveout() {
        let p = platform();
        let cam = Camera::new();
        let frame = Frame::new(640, 480, PixelFormat::Nv12).unwrap();
        let half = frame.page_size().bytes() / 2 + 0x800;
        let dst = [
            carve(&p, UseCase::SecureVideoRecord, 0x40_0000, half),
            carve(&p, UseCase::SecureVideoRecord, 0, frame.page_size().bytes() - half),
        ];
        assert_eq!(cam.capture(&p, 9, &dst, frame).unwrap(), frame.byte_size());
        let mut back = vec![0u8; frame.byte_size() as usize];
        read_sg(&p, Master::SecureCpu, &dst, 0, &mut back).unwrap();
        assert!(back == capture_reference(9, frame));
        assert_eq!(cam.frames_captured(), 1);
        // The normal-world CPU cannot look at the capture.
        assert!(read_sg(&p, Master::NsCpu, &dst, 0, &mut back[..16]).unwrap_err().violation().is_some());
    }

    #[test]
    fn scene_is_deterministic_and_moves() {
        for frame in [Frame::FHD_NV12, Frame::new(64, 48, PixelFormat::P010).unwrap(), Frame::FHD_XRGB8888] {
            let a = capture_reference(1, frame);
            assert_eq!(a.len() as u64, frame.byte_size());
            assert!(a == capture_reference(1, frame));
            assert!(a != capture_reference(2, frame));
        }
    }

    #[test]
    fn refused_in_secure_video_memory() {
        let p = platform();
        let cam = Camera::new();
        let frame = Frame::new(64, 32, PixelFormat::Nv12).unwrap();
        // A normal buffer is fine; the secure-video carveout is not the camera's.
        cam.capture(&p, 0, &[normal(0, 0x1000)], frame).unwrap();
        let sv = [carve(&p, UseCase::SecureVideo, 0, 0x1000)];
        let err = cam.capture(&p, 0, &sv, frame).unwrap_err();
        let v = err.violation().unwrap();
        assert_eq!((v.master, v.kind, v.region.as_str()), (Master::Camera, AccessKind::Write, "carveout sv"));
        assert_eq!(p.firewall().violation_count(), 1);
        assert_eq!(cam.frames_captured(), 1);
    }
}
