//! The display controller: scans out framebuffers as [`Master::Display`]
//! and exposes the CRC32 of each scanned frame.
//!
//! Real display controllers compute such CRCs in hardware so that tests can
//! check what reached the screen without reading protected memory; here it
//! is the CRC32 (IEEE, as `crc32fast`) of the frame's bytes in memory order.
//! The display keeps the last [`CRC_HISTORY`] CRCs and a count of frames
//! shown; a refused scan-out shows nothing and records nothing.

use std::collections::VecDeque;
use std::sync::Mutex;
use teeheap_sync::Recover;

use super::format::Frame;
use super::{DeviceError, read_sg_bursts};
use crate::{Master, PhysRange, Platform};

/// How many CRCs the display remembers.
pub const CRC_HISTORY: usize = 256;

#[derive(Debug, Default)]
struct State {
    crcs: VecDeque<u32>,
    shown: u64,
}

/// One plane of a frame to scan out: `rows` rows of `row_bytes` visible
/// bytes, `pitch` bytes apart, from byte `offset` of the buffer `sg`.
#[derive(Clone, Copy, Debug)]
pub struct ScanPlane<'a> {
    /// The buffer's scatter list.
    pub sg: &'a [PhysRange],
    /// Byte offset of the first row.
    pub offset: u64,
    /// Bytes from one row to the next.
    pub pitch: u64,
    /// Visible bytes of a row.
    pub row_bytes: u64,
    /// Number of rows.
    pub rows: u64,
}

/// The display controller. See the module documentation.
#[derive(Debug, Default)]
pub struct Display {
    state: Mutex<State>,
}

impl Display {
    /// A display that has shown nothing yet.
    pub fn new() -> Display {
        Display::default()
    }

    /// Scans out the frame of geometry `frame` held at the start of `fb`,
    /// reading it through the firewall as [`Master::Display`], and returns
    /// the CRC32 of its bytes (also appended to [`Self::crc_history`]).
    ///
    /// # Errors
    /// [`DeviceError::BufferTooSmall`] if `fb` is smaller than the frame;
    /// [`DeviceError::Access`] if the firewall refuses a read.
    pub fn scan_out(&self, platform: &Platform, fb: &[PhysRange], frame: Frame) -> Result<u32, DeviceError> {
        let mut hasher = crc32fast::Hasher::new();
        read_sg_bursts(platform, Master::Display, fb, 0, frame.byte_size(), |burst| {
            hasher.update(burst);
            Ok(())
        })?;
        let crc = hasher.finalize();
        self.record(crc);
        Ok(crc)
    }

    /// Scans out a frame given plane by plane (a framebuffer's planes, each
    /// in its own buffer at its own offset and pitch), reading each row of
    /// each plane through the firewall as [`Master::Display`], and returns
    /// the CRC32 of the rows' visible bytes in plane order (the bytes of a
    /// tightly packed frame), also appended to [`Self::crc_history`].
    ///
    /// # Errors
    /// [`DeviceError::BufferTooSmall`] if a row lies past its buffer;
    /// [`DeviceError::Access`] if the firewall refuses a read (nothing is
    /// recorded then).
    pub fn scan_out_planes(&self, platform: &Platform, planes: &[ScanPlane<'_>]) -> Result<u32, DeviceError> {
        let mut hasher = crc32fast::Hasher::new();
        for p in planes {
            if p.pitch == p.row_bytes {
                let len = p.row_bytes.saturating_mul(p.rows);
                read_sg_bursts(platform, Master::Display, p.sg, p.offset, len, |burst| {
                    hasher.update(burst);
                    Ok(())
                })?;
                continue;
            }
            for row in 0..p.rows {
                let at = p.offset.saturating_add(row.saturating_mul(p.pitch));
                read_sg_bursts(platform, Master::Display, p.sg, at, p.row_bytes, |burst| {
                    hasher.update(burst);
                    Ok(())
                })?;
            }
        }
        let crc = hasher.finalize();
        self.record(crc);
        Ok(crc)
    }

    fn record(&self, crc: u32) {
        let mut s = self.state.lock().recover();
        if s.crcs.len() == CRC_HISTORY {
            s.crcs.pop_front();
        }
        s.crcs.push_back(crc);
        s.shown += 1;
        tracing::trace!(crc = format_args!("{crc:08x}"), shown = s.shown, "display: frame scanned out");
    }

    /// The CRCs of the last frames shown (at most [`CRC_HISTORY`]), oldest
    /// first.
    pub fn crc_history(&self) -> Vec<u32> {
        self.state.lock().recover().crcs.iter().copied().collect()
    }

    /// The CRC of the last frame shown.
    pub fn last_crc(&self) -> Option<u32> {
        self.state.lock().recover().crcs.back().copied()
    }

    /// How many frames were scanned out successfully since creation.
    pub fn frames_shown(&self) -> u64 {
        self.state.lock().recover().shown
    }
}

#[cfg(test)]
mod tests {
    use super::super::format::PixelFormat;
    use super::super::tbs::{TbsHeader, encode_test_stream, render_reference};
    use super::super::testutil::{carve, platform};
    use super::super::{VideoDecoder, write_sg};
    use super::*;
    use crate::{AccessKind, UseCase};

    #[test]
    fn playback_crcs_equal_the_reference() {
        let p = platform();
        let (dec, display) = (VideoDecoder::new(), Display::new());
        let frame = Frame::FHD_NV12;
        let bits = [carve(&p, UseCase::SecureVideo, 0, 0x2000)];
        // Two framebuffers, the second in two pieces.
        let fbs = [
            vec![carve(&p, UseCase::SecureVideo, 0x10_0000, frame.page_size().bytes())],
            vec![
                carve(&p, UseCase::SecureVideo, 0x60_0000, 0x1000),
                carve(&p, UseCase::SecureVideo, 0xa0_0000, frame.page_size().bytes() - 0x1000),
            ],
        ];
        let mut expected = Vec::new();
        for n in 0..4u32 {
            let stream = encode_test_stream(n, frame);
            write_sg(&p, Master::SecureCpu, &bits, 0, &stream).unwrap();
            let fb = &fbs[n as usize % 2];
            dec.decode(&p, &bits, stream.len() as u64, fb).unwrap();
            let crc = display.scan_out(&p, fb, frame).unwrap();
            expected.push(crc32fast::hash(&render_reference(&TbsHeader::parse(&stream).unwrap())));
            assert_eq!(crc, expected[n as usize], "frame {n}");
        }
        assert_eq!(display.crc_history(), expected);
        assert_eq!(display.frames_shown(), 4);
        assert_eq!(p.firewall().violation_count(), 0);
    }

    #[test]
    fn trusted_ui_framebuffer_and_refusal() {
        let p = platform();
        let display = Display::new();
        let frame = Frame::new(320, 240, PixelFormat::Xrgb8888).unwrap();
        let fb = [carve(&p, UseCase::TrustedUi, 0, frame.page_size().bytes())];
        let pixels: Vec<u8> = (0..frame.byte_size()).map(|i| (i % 253) as u8).collect();
        write_sg(&p, Master::SecureCpu, &fb, 0, &pixels).unwrap();
        assert_eq!(display.scan_out(&p, &fb, frame).unwrap(), crc32fast::hash(&pixels));
        // The display may not read the recording carveout: refused, logged, not shown.
        let rec = [carve(&p, UseCase::SecureVideoRecord, 0, frame.page_size().bytes())];
        let err = display.scan_out(&p, &rec, frame).unwrap_err();
        let v = err.violation().unwrap();
        assert_eq!((v.master, v.kind), (Master::Display, AccessKind::Read));
        assert_eq!(p.firewall().violations(), std::slice::from_ref(v));
        assert_eq!(display.frames_shown(), 1);
        assert_eq!(display.last_crc(), Some(crc32fast::hash(&pixels)));
        // Too small a buffer is not an access at all.
        let small = [carve(&p, UseCase::TrustedUi, 0, 0x1000)];
        assert!(matches!(display.scan_out(&p, &small, frame), Err(DeviceError::BufferTooSmall { .. })));
    }

    #[test]
    fn planes_with_a_pitch_crc_their_visible_bytes() {
        let p = platform();
        let display = Display::new();
        // A 4x2 NV12 frame: Y rows of 4 bytes at pitch 8, UV row at offset 64.
        let fb = [carve(&p, UseCase::TrustedUi, 0, 0x1000)];
        let mut mem = vec![0xeeu8; 128];
        mem[0..4].copy_from_slice(b"abcd");
        mem[8..12].copy_from_slice(b"efgh");
        mem[64..68].copy_from_slice(b"ijkl");
        write_sg(&p, Master::SecureCpu, &fb, 0, &mem).unwrap();
        let planes = [
            ScanPlane { sg: &fb, offset: 0, pitch: 8, row_bytes: 4, rows: 2 },
            ScanPlane { sg: &fb, offset: 64, pitch: 4, row_bytes: 4, rows: 1 },
        ];
        assert_eq!(display.scan_out_planes(&p, &planes).unwrap(), crc32fast::hash(b"abcdefghijkl"));
        assert_eq!(display.frames_shown(), 1);
        let rec = [carve(&p, UseCase::SecureVideoRecord, 0, 0x1000)];
        let err = display.scan_out_planes(&p, &[ScanPlane { sg: &rec, offset: 0, pitch: 4, row_bytes: 4, rows: 1 }]);
        assert!(err.unwrap_err().violation().is_some());
        assert_eq!(display.frames_shown(), 1, "a refused frame is not shown");
    }

    #[test]
    fn history_is_bounded() {
        let p = platform();
        let display = Display::new();
        let frame = Frame::new(2, 2, PixelFormat::Nv12).unwrap();
        let fb = [carve(&p, UseCase::SecureVideo, 0, 0x1000)];
        for _ in 0..CRC_HISTORY + 3 {
            display.scan_out(&p, &fb, frame).unwrap();
        }
        assert_eq!(display.crc_history().len(), CRC_HISTORY);
        assert_eq!(display.frames_shown(), CRC_HISTORY as u64 + 3);
    }
}
