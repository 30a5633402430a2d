//! The video decoder: reads a TBS bitstream from a buffer and writes the
//! decoded frame into another, both as [`Master::VideoDecoder`].
//!
//! In secure video playback both buffers are protected (secure-video):
//! only the decoder and the secure world may touch them. The decoder keeps
//! nothing between frames but a counter.

use std::sync::atomic::{AtomicU64, Ordering};

use super::format::Frame;
use super::tbs::{Expander, TbsError, TbsHeader};
use super::{DeviceError, SgWriter, ensure_len, read_sg};
use crate::{Master, PhysRange, Platform};

const ME: Master = Master::VideoDecoder;

/// What the decoder produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameInfo {
    /// The frame number from the bitstream.
    pub frame_no: u32,
    /// The geometry of the decoded frame.
    pub frame: Frame,
    /// Bytes written into the frame buffer ([`Frame::byte_size`]).
    pub bytes: u64,
}

/// The video decoder device. See the module documentation.
#[derive(Debug, Default)]
pub struct VideoDecoder {
    decoded: AtomicU64,
}

impl VideoDecoder {
    /// A decoder that has decoded nothing yet.
    pub fn new() -> VideoDecoder {
        VideoDecoder::default()
    }

    /// Decodes the TBS stream in the first `len` bytes of `bitstream` into
    /// `frame` (from its first byte). The stream is read and the frame
    /// written through the firewall as [`Master::VideoDecoder`], one burst at
    /// a time.
    ///
    /// # Errors
    /// [`DeviceError::BufferTooSmall`] if `len` exceeds the bitstream buffer
    /// or the frame does not fit `frame`; [`DeviceError::Bitstream`] for a
    /// malformed stream (or `len` not its exact length);
    /// [`DeviceError::Access`] if the firewall refuses a read or a write
    /// (the frame may then be partly written).
    pub fn decode(
        &self,
        platform: &Platform,
        bitstream: &[PhysRange],
        len: u64,
        frame: &[PhysRange],
    ) -> Result<FrameInfo, DeviceError> {
        let bad = |source| DeviceError::Bitstream { device: ME, source };
        ensure_len(ME, bitstream, len)?;
        let mut head = [0u8; TbsHeader::LEN];
        let head_len = (TbsHeader::LEN as u64).min(len) as usize;
        read_sg(platform, ME, bitstream, 0, &mut head[..head_len])?;
        let header = TbsHeader::parse(&head[..head_len]).map_err(bad)?;
        let expected = header.stream_len();
        if len > expected as u64 {
            return Err(bad(TbsError::Trailing { expected, have: usize::try_from(len).unwrap_or(usize::MAX) }));
        }
        // At most 12 bytes a rectangle and 65535 rectangles: read it whole.
        // The bitstream comes from protected memory: wiped when dropped.
        let mut body = zeroize::Zeroizing::new(vec![0u8; len as usize - TbsHeader::LEN]);
        read_sg(platform, ME, bitstream, TbsHeader::LEN as u64, &mut body)?;
        let rects = header.parse_body(&body).map_err(bad)?;
        ensure_len(ME, frame, header.frame.byte_size())?;

        let expander = Expander::new(header, &rects);
        let mut out = SgWriter::new(platform, ME, frame, 0);
        header.frame.render_rows(|plane, y, comps| expander.row(plane, y, comps), |row| out.push(row))?;
        let bytes = out.finish()?;
        self.decoded.fetch_add(1, Ordering::Relaxed);
        tracing::trace!(frame_no = header.frame_no, bytes, "video-decoder: frame decoded");
        Ok(FrameInfo { frame_no: header.frame_no, frame: header.frame, bytes })
    }

    /// How many frames were decoded successfully.
    pub fn frames_decoded(&self) -> u64 {
        self.decoded.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::super::format::PixelFormat;
    use super::super::tbs::{encode_test_stream, render_reference};
    use super::super::testutil::{carve, normal, platform};
    use super::super::write_sg;
    use super::*;
    use crate::{AccessError, AccessKind, UseCase};

    /// Puts `stream` into the secure-video carveout through the secure world
    /// (as the content-decryption TA would), returns its sg list.
    fn load(p: &Platform, stream: &[u8]) -> Vec<PhysRange> {
        let sg = vec![carve(p, UseCase::SecureVideo, 0, 0x1000), carve(p, UseCase::SecureVideo, 0x3000, 0x2000)];
        write_sg(p, Master::SecureCpu, &sg, 0, stream).unwrap();
        sg
    }

    fn read_back(p: &Platform, sg: &[PhysRange], len: u64) -> Vec<u8> {
        let mut v = vec![0u8; len as usize];
        super::super::read_sg(p, Master::SecureCpu, sg, 0, &mut v).unwrap();
        v
    }

    #[test]
    fn decodes_into_protected_memory_across_ranges() {
        let p = platform();
        let dec = VideoDecoder::new();
        for frame in [Frame::FHD_NV12, Frame::new(640, 360, PixelFormat::P010).unwrap()] {
            let stream = encode_test_stream(42, frame);
            let bits = load(&p, &stream);
            // Two discontiguous ranges, the first not a multiple of a row or burst.
            let first = frame.page_size().bytes() / 2 + 0x123;
            let fb = [
                carve(&p, UseCase::SecureVideo, 0x10_0000, first),
                carve(&p, UseCase::SecureVideo, 0x80_0000, frame.page_size().bytes() - first),
            ];
            let info = dec.decode(&p, &bits, stream.len() as u64, &fb).unwrap();
            assert_eq!(info, FrameInfo { frame_no: 42, frame, bytes: frame.byte_size() });
            let header = TbsHeader::parse(&stream).unwrap();
            assert!(read_back(&p, &fb, frame.byte_size()) == render_reference(&header));
        }
        assert_eq!(dec.frames_decoded(), 2);
        assert_eq!(p.firewall().violation_count(), 0);
    }

    #[test]
    fn refused_without_rights() {
        let p = platform();
        let dec = VideoDecoder::new();
        let frame = Frame::new(64, 32, PixelFormat::Nv12).unwrap();
        let stream = encode_test_stream(1, frame);
        // A bitstream in the trusted-ui region: the decoder may not read it.
        let tui = [carve(&p, UseCase::TrustedUi, 0, 0x1000)];
        write_sg(&p, Master::SecureCpu, &tui, 0, &stream).unwrap();
        let fb = [carve(&p, UseCase::SecureVideo, 0, 0x1000)];
        let err = dec.decode(&p, &tui, stream.len() as u64, &fb).unwrap_err();
        let v = err.violation().expect("a firewall refusal");
        assert_eq!((v.master, v.kind, v.region.as_str()), (Master::VideoDecoder, AccessKind::Read, "carveout tui"));
        // Writing a frame into the recording carveout is refused as well.
        let bits = load(&p, &stream);
        let rec = [carve(&p, UseCase::SecureVideoRecord, 0, 0x1000)];
        let err = dec.decode(&p, &bits, stream.len() as u64, &rec).unwrap_err();
        assert!(matches!(err, DeviceError::Access { device: Master::VideoDecoder, source: AccessError::Denied(_) }));
        assert_eq!(p.firewall().violation_count(), 2);
        assert_eq!(p.firewall().violations()[1].kind, AccessKind::Write);
        assert_eq!(dec.frames_decoded(), 0);
    }

    #[test]
    fn bad_input() {
        let p = platform();
        let dec = VideoDecoder::new();
        let frame = Frame::new(64, 32, PixelFormat::Nv12).unwrap();
        let stream = encode_test_stream(1, frame);
        let bits = load(&p, &stream);
        let fb = [normal(0, 0x1000)];
        let len = stream.len() as u64;
        let e = dec.decode(&p, &bits, len - 1, &fb).unwrap_err();
        assert!(matches!(e, DeviceError::Bitstream { source: TbsError::Truncated { .. }, .. }), "{e}");
        let e = dec.decode(&p, &bits, len + 1, &fb).unwrap_err();
        assert!(matches!(e, DeviceError::Bitstream { source: TbsError::Trailing { .. }, .. }), "{e}");
        let e = dec.decode(&p, &bits, 0x10_0000, &fb).unwrap_err();
        assert!(matches!(e, DeviceError::BufferTooSmall { .. }), "{e}");
        let e = dec.decode(&p, &bits, len, &[normal(0, 100)]).unwrap_err();
        assert_eq!(e, DeviceError::BufferTooSmall { device: ME, needed: frame.byte_size(), have: 100 });
        let e = dec.decode(&p, &bits, 3, &fb).unwrap_err();
        assert!(matches!(e, DeviceError::Bitstream { source: TbsError::Truncated { .. }, .. }), "{e}");
    }

    /// Decode and scan-out cost: `cargo test --release -p teeheap-platform decode_speed -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing, meaningful in release only"]
    fn decode_speed() {
        let p = platform();
        let (dec, display) = (VideoDecoder::new(), super::super::Display::new());
        for frame in [Frame::FHD_NV12, Frame::FHD_P010] {
            let stream = encode_test_stream(5, frame);
            let bits = load(&p, &stream);
            let fb = [carve(&p, UseCase::SecureVideo, 0x10_0000, frame.page_size().bytes())];
            let n = 20;
            let t = std::time::Instant::now();
            for _ in 0..n {
                dec.decode(&p, &bits, stream.len() as u64, &fb).unwrap();
            }
            let decode = t.elapsed() / n;
            let t = std::time::Instant::now();
            for _ in 0..n {
                display.scan_out(&p, &fb, frame).unwrap();
            }
            let scan = t.elapsed() / n;
            println!(
                "{} {}x{}: stream {} B, decode {decode:?}, scan-out+CRC {scan:?}",
                frame.format().name(),
                frame.width(),
                frame.height(),
                stream.len()
            );
        }
    }
}
