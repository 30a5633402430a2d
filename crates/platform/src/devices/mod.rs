//! The DMA devices of the platform: bus masters with behaviour.
//!
//! Each device is one file and acts only through [`Platform::read`] and
//! [`Platform::write`] under its own [`Master`], so the firewall decides every
//! access; a refused access stops the operation and comes back as
//! [`DeviceError::Access`] (the firewall has logged it). Buffers are given as
//! scatter lists (`&[PhysRange]`, the ranges of a dma-buf attachment's sg
//! table), so a frame may span several discontiguous ranges. Devices hold no
//! memory of their own between operations, only counters and (the encoder)
//! a key.
//!
//! Secure video playback on the default platform: the decoder expands a
//! test stream into the secure-video carveout, the display scans it out and
//! its CRC matches the reference, while the normal-world CPU is refused.
//!
//! ```
//! use teeheap_platform::devices::{self, Display, Frame, TbsHeader, VideoDecoder};
//! use teeheap_platform::{Master, Platform, UseCase};
//!
//! let p = Platform::embedded_default().unwrap();
//! let cv = p.carveout(UseCase::SecureVideo).unwrap().range;
//! let frame = Frame::FHD_NV12;
//! let bits = [cv.subrange(0, 0x1000).unwrap()];
//! let fb = [cv.subrange(0x10_0000, frame.page_size().bytes()).unwrap()];
//!
//! let stream = devices::encode_test_stream(7, frame);
//! // The secure world places the (decrypted) stream into protected memory.
//! devices::write_sg(&p, Master::SecureCpu, &bits, 0, &stream).unwrap();
//! let info = VideoDecoder::new().decode(&p, &bits, stream.len() as u64, &fb).unwrap();
//! assert_eq!(info.frame_no, 7);
//!
//! let display = Display::new();
//! let crc = display.scan_out(&p, &fb, frame).unwrap();
//! let reference = devices::render_reference(&TbsHeader::parse(&stream).unwrap());
//! assert_eq!(crc, crc32fast::hash(&reference));
//!
//! // The normal world cannot read the frame: refused and logged.
//! let err = devices::read_sg(&p, Master::NsCpu, &fb, 0, &mut [0u8; 64]).unwrap_err();
//! assert!(err.violation().is_some());
//! assert_eq!(p.firewall().violation_count(), 1);
//! ```

pub mod camera;
pub mod display;
pub mod format;
pub mod fwht;
pub mod fwht_codec;
pub mod tbs;
pub mod video_decoder;
pub mod video_encoder;

pub use camera::{Camera, capture_reference};
pub use display::{Display, ScanPlane};
pub use format::{Frame, PixelFormat};
pub use tbs::{TbsError, TbsHeader, decode_to_vec, encode_test_stream, render_reference};
pub use video_decoder::{FrameInfo, VideoDecoder};
pub use video_encoder::{EncodedHeader, EncodedInfo, VideoEncoder};

use zeroize::{Zeroize, Zeroizing};

use crate::{AccessError, Master, PhysRange, Platform, Violation};

/// Size of one device burst: devices move data through the firewall in
/// pieces of at most this many bytes (and never across an sg entry).
pub const BURST: usize = 64 << 10;

/// Why a device operation failed. Memory may have been partly written when
/// an access is refused midway (as with real DMA).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// The firewall refused an access (it is in the violation log), or the
    /// scatter list points outside DRAM.
    #[error("{device}: {source}")]
    Access {
        /// The device whose access failed.
        device: Master,
        /// What the platform said.
        source: AccessError,
    },
    /// A buffer's scatter list is shorter than the operation needs.
    #[error("{device}: buffer of {have} bytes is too small, {needed} needed")]
    BufferTooSmall {
        /// The device.
        device: Master,
        /// Bytes the operation needs.
        needed: u64,
        /// Bytes the scatter list covers.
        have: u64,
    },
    /// The input bitstream is malformed.
    #[error("{device}: bad bitstream: {source}")]
    Bitstream {
        /// The device.
        device: Master,
        /// What is wrong with it.
        source: TbsError,
    },
    /// A malformed FWHT frame (or one of another size than the format).
    #[error("{device}: bad FWHT frame: {source}")]
    Fwht {
        /// The device.
        device: Master,
        /// What is wrong with it.
        source: fwht::FwhtError,
    },
    /// The video encoder has no key: the secure world has not programmed it.
    #[error("video-encoder: no key programmed")]
    NoKey,
}

impl DeviceError {
    /// The firewall violation behind this error, if it is one.
    pub fn violation(&self) -> Option<&Violation> {
        match self {
            DeviceError::Access { source: AccessError::Denied(v), .. } => Some(v),
            _ => None,
        }
    }
}

/// Total number of bytes covered by the scatter list `sg`.
pub fn sg_len(sg: &[PhysRange]) -> u64 {
    sg.iter().map(PhysRange::len).sum()
}

/// Checks that `sg` covers at least `needed` bytes.
fn ensure_len(device: Master, sg: &[PhysRange], needed: u64) -> Result<(), DeviceError> {
    let have = sg_len(sg);
    if have < needed {
        return Err(DeviceError::BufferTooSmall { device, needed, have });
    }
    Ok(())
}

/// Calls `f(range)` for each piece of `[offset, offset + len)` of the buffer
/// described by `sg`, in order: each piece lies inside one sg entry and is at
/// most [`BURST`] bytes long.
fn for_each_piece(
    device: Master,
    sg: &[PhysRange],
    offset: u64,
    len: u64,
    mut f: impl FnMut(PhysRange) -> Result<(), DeviceError>,
) -> Result<(), DeviceError> {
    let needed = offset.saturating_add(len);
    ensure_len(device, sg, needed)?;
    let (mut skip, mut left) = (offset, len);
    for r in sg {
        if left == 0 {
            break;
        }
        if skip >= r.len() {
            skip -= r.len();
            continue;
        }
        let mut at = skip;
        skip = 0;
        while at < r.len() && left > 0 {
            let n = (r.len() - at).min(left).min(BURST as u64);
            // In range: `at + n <= r.len()` and `n > 0`.
            let piece = r.subrange(at, n).expect("piece lies inside its sg entry");
            f(piece)?;
            at += n;
            left -= n;
        }
    }
    Ok(())
}

/// `device` reads `buf.len()` bytes at byte `offset` of the buffer `sg`.
///
/// # Errors
/// [`DeviceError::BufferTooSmall`] if the range leaves the buffer,
/// [`DeviceError::Access`] if the firewall refuses a piece.
pub fn read_sg(
    platform: &Platform,
    device: Master,
    sg: &[PhysRange],
    offset: u64,
    buf: &mut [u8],
) -> Result<(), DeviceError> {
    let mut done = 0usize;
    for_each_piece(device, sg, offset, buf.len() as u64, |piece| {
        let n = piece.len() as usize;
        platform
            .read(device, piece.start(), &mut buf[done..done + n])
            .map_err(|source| DeviceError::Access { device, source })?;
        done += n;
        Ok(())
    })
}

/// `device` writes `data` at byte `offset` of the buffer `sg`.
///
/// # Errors
/// As [`read_sg`].
pub fn write_sg(
    platform: &Platform,
    device: Master,
    sg: &[PhysRange],
    offset: u64,
    data: &[u8],
) -> Result<(), DeviceError> {
    let mut done = 0usize;
    for_each_piece(device, sg, offset, data.len() as u64, |piece| {
        let n = piece.len() as usize;
        platform
            .write(device, piece.start(), &data[done..done + n])
            .map_err(|source| DeviceError::Access { device, source })?;
        done += n;
        Ok(())
    })
}

/// `device` streams `len` bytes from byte `offset` of `sg` through `f`, one
/// burst at a time (no copy of the whole buffer); `f` may modify the burst
/// in place (it is the device's own scratch memory).
///
/// # Errors
/// As [`read_sg`], or whatever `f` returns.
pub fn read_sg_bursts(
    platform: &Platform,
    device: Master,
    sg: &[PhysRange],
    offset: u64,
    len: u64,
    mut f: impl FnMut(&mut [u8]) -> Result<(), DeviceError>,
) -> Result<(), DeviceError> {
    // A device reads protected frames: its bursts are wiped when dropped.
    let mut burst = Zeroizing::new(vec![0u8; (len.min(BURST as u64)) as usize]);
    for_each_piece(device, sg, offset, len, |piece| {
        let chunk = &mut burst[..piece.len() as usize];
        platform.read(device, piece.start(), chunk).map_err(|source| DeviceError::Access { device, source })?;
        f(chunk)
    })
}

/// Streams bytes sequentially into a buffer as `device`, gathering them
/// into bursts of [`BURST`] bytes before each write.
struct SgWriter<'a> {
    platform: &'a Platform,
    device: Master,
    sg: &'a [PhysRange],
    /// Buffer offset of the first byte in `pending`.
    offset: u64,
    pending: Vec<u8>,
}

impl<'a> SgWriter<'a> {
    fn new(platform: &'a Platform, device: Master, sg: &'a [PhysRange], offset: u64) -> SgWriter<'a> {
        SgWriter { platform, device, sg, offset, pending: Vec::with_capacity(2 * BURST) }
    }

    fn push(&mut self, data: &[u8]) -> Result<(), DeviceError> {
        self.pending.extend_from_slice(data);
        if self.pending.len() >= BURST { self.flush() } else { Ok(()) }
    }

    fn flush(&mut self) -> Result<(), DeviceError> {
        write_sg(self.platform, self.device, self.sg, self.offset, &self.pending)?;
        self.offset += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    /// Writes what is left; returns the offset one past the last byte.
    fn finish(mut self) -> Result<u64, DeviceError> {
        self.flush()?;
        Ok(self.offset)
    }
}

impl Drop for SgWriter<'_> {
    /// The bursts are frames on their way into protected memory: wiped
    /// (capacity included, `clear` keeps the bytes).
    fn drop(&mut self) {
        self.pending.zeroize();
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    //! A small platform for device tests: 64 MiB of DRAM at 0x4000_0000 with
    //! one carveout per use case in the middle.

    use crate::{PhysAddr, PhysRange, Platform, PlatformConfig, UseCase};

    pub(crate) fn platform() -> Platform {
        Platform::new(
            PlatformConfig::small("devices", 64 << 20)
                .with_carveout("sv", UseCase::SecureVideo, 0x4100_0000, 16 << 20)
                .with_carveout("tui", UseCase::TrustedUi, 0x4200_0000, 8 << 20)
                .with_carveout("svr", UseCase::SecureVideoRecord, 0x4280_0000, 8 << 20),
        )
        .unwrap()
    }

    /// `len` bytes at `offset` into the carveout of `use_case`.
    pub(crate) fn carve(p: &Platform, use_case: UseCase, offset: u64, len: u64) -> PhysRange {
        p.carveout(use_case).unwrap().range.subrange(offset, len).unwrap()
    }

    /// `len` bytes of normal memory at `0x4000_0000 + offset`.
    pub(crate) fn normal(offset: u64, len: u64) -> PhysRange {
        PhysRange::new(PhysAddr(0x4000_0000 + offset), len).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::{normal, platform};
    use super::*;

    #[test]
    fn sg_helpers_cross_entries() {
        let p = platform();
        // Three entries, out of address order, one shorter than a burst.
        let sg = [normal(0x30_0000, 3 * BURST as u64 + 5), normal(0x10_0000, 7), normal(0x20_0000, BURST as u64)];
        let total = sg_len(&sg);
        let data: Vec<u8> = (0..total).map(|i| (i * 7 % 251) as u8).collect();
        write_sg(&p, Master::Camera, &sg, 0, &data).unwrap();
        // Read back at an offset that straddles all entry boundaries.
        let off = 3 * BURST as u64 + 1;
        let mut back = vec![0u8; (total - off - 2) as usize];
        read_sg(&p, Master::Display, &sg, off, &mut back).unwrap();
        assert_eq!(back, data[off as usize..(total - 2) as usize]);
        // The second entry holds exactly bytes 3*BURST+5 .. +7.
        let mut seven = [0u8; 7];
        p.read(Master::NsCpu, sg[1].start(), &mut seven).unwrap();
        assert_eq!(seven, data[3 * BURST + 5..3 * BURST + 12]);
        let mut streamed = Vec::new();
        read_sg_bursts(&p, Master::Display, &sg, 0, total, |c| {
            assert!(c.len() <= BURST);
            streamed.extend_from_slice(c);
            Ok(())
        })
        .unwrap();
        assert_eq!(streamed, data);
        let err = read_sg(&p, Master::Display, &sg, total - 1, &mut [0u8; 2]).unwrap_err();
        assert_eq!(err, DeviceError::BufferTooSmall { device: Master::Display, needed: total + 1, have: total });
        assert!(write_sg(&p, Master::Display, &sg, u64::MAX, b"x").is_err());
    }
}
