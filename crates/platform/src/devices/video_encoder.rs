//! The video encoder: reads a (protected) frame as [`Master::VideoEncoder`]
//! and writes an encrypted bitstream into (normal) memory, also as
//! [`Master::VideoEncoder`].
//!
//! The key is a device register that only the secure world programs
//! ([`VideoEncoder::program_key`]); it is never readable back. The raw
//! frame therefore leaves protected memory only as ciphertext.
//!
//! # Output format "TBE1" (little-endian)
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `"TBE1"` |
//! | 4 | 2 | width |
//! | 6 | 2 | height |
//! | 8 | 1 | format (TBS codes: 1 NV12, 2 P010, 3 XRGB8888) |
//! | 9 | 1 | payload kind: 0 = the raw frame bytes |
//! | 10 | 2 | header length, 48 |
//! | 12 | 4 | frame number |
//! | 16 | 8 | payload length `n` (= the frame's byte size) |
//! | 24 | 16 | IV: [`iv_for`] the frame number |
//! | 40 | 8 | reserved, 0 |
//! | 48 | n | payload, AES-128-CTR encrypted (128-bit big-endian counter, as CENC) |
//!
//! The IV is the frame number (big-endian) in its first 4 bytes and zeroes
//! after, so every frame uses its own counter space under one key; the
//! secure world must program a fresh key per recording. CTR gives no
//! integrity: a consumer that needs it must add a MAC.

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use teeheap_sync::Recover;

use aes::cipher::{KeyIvInit, StreamCipher};

use super::format::{Frame, PixelFormat};
use super::{DeviceError, ensure_len, read_sg_bursts, write_sg};
use crate::{Master, PhysRange, Platform};

const ME: Master = Master::VideoEncoder;

/// AES-128 in CTR mode with a 128-bit big-endian counter.
type Aes128Ctr = ctr::Ctr128BE<aes::Aes128>;

/// Magic of an encoder output.
pub const TBE_MAGIC: [u8; 4] = *b"TBE1";
const PAYLOAD_RAW: u8 = 0;

/// The IV of frame `frame_no`: its number big-endian, then zeroes.
pub fn iv_for(frame_no: u32) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[..4].copy_from_slice(&frame_no.to_be_bytes());
    iv
}

/// The clear header of an encoder output. See the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncodedHeader {
    /// Geometry of the encoded frame.
    pub frame: Frame,
    /// Its frame number.
    pub frame_no: u32,
    /// Length of the ciphertext after the header.
    pub payload_len: u64,
    /// The CTR IV of the payload.
    pub iv: [u8; 16],
}

impl EncodedHeader {
    /// Length of the header in bytes.
    pub const LEN: usize = 48;

    /// Parses the header at the start of `bytes`; `None` if it is short or
    /// not a well-formed TBE1 header.
    pub fn parse(bytes: &[u8]) -> Option<EncodedHeader> {
        let h: &[u8; Self::LEN] = bytes.get(..Self::LEN)?.try_into().ok()?;
        let u16_at = |o: usize| u16::from_le_bytes([h[o], h[o + 1]]);
        let ok = h[..4] == TBE_MAGIC && h[9] == PAYLOAD_RAW && usize::from(u16_at(10)) == Self::LEN;
        if !ok || h[40..].iter().any(|&b| b != 0) {
            return None;
        }
        let frame = Frame::new(u16_at(4).into(), u16_at(6).into(), PixelFormat::from_code(h[8])?)?;
        let payload_len = u64::from_le_bytes(h[16..24].try_into().ok()?);
        let frame_no = u32::from_le_bytes(h[12..16].try_into().ok()?);
        (payload_len == frame.byte_size()).then_some(EncodedHeader {
            frame,
            frame_no,
            payload_len,
            iv: h[24..40].try_into().ok()?,
        })
    }

    /// The header as bytes.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut h = [0u8; Self::LEN];
        h[..4].copy_from_slice(&TBE_MAGIC);
        // Dimensions are at most MAX_DIMENSION.
        h[4..6].copy_from_slice(&(self.frame.width() as u16).to_le_bytes());
        h[6..8].copy_from_slice(&(self.frame.height() as u16).to_le_bytes());
        h[8] = self.frame.format().code();
        h[9] = PAYLOAD_RAW;
        h[10..12].copy_from_slice(&(Self::LEN as u16).to_le_bytes());
        h[12..16].copy_from_slice(&self.frame_no.to_le_bytes());
        h[16..24].copy_from_slice(&self.payload_len.to_le_bytes());
        h[24..40].copy_from_slice(&self.iv);
        h
    }

    /// Total length of the output: header and payload.
    pub const fn output_len(&self) -> u64 {
        Self::LEN as u64 + self.payload_len
    }
}

/// What the encoder produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncodedInfo {
    /// The header it wrote.
    pub header: EncodedHeader,
    /// Bytes written into the output buffer (header and payload).
    pub bytes: u64,
}

/// The video encoder device. See the module documentation.
#[derive(Default)]
pub struct VideoEncoder {
    key: Mutex<Option<[u8; 16]>>,
    encoded: AtomicU64,
}

impl fmt::Debug for VideoEncoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VideoEncoder")
            .field("key", &if self.has_key() { "<programmed>" } else { "<none>" })
            .field("encoded", &self.frames_encoded())
            .finish()
    }
}

impl VideoEncoder {
    /// An encoder with no key: it refuses to encode until programmed.
    pub fn new() -> VideoEncoder {
        VideoEncoder::default()
    }

    /// Programs the AES-128 key the encoder encrypts with, replacing any
    /// previous one. Only the secure world calls this (on real hardware the
    /// key register is reachable from the secure world alone); the key can
    /// never be read back.
    pub fn program_key(&self, key: [u8; 16]) {
        *self.key.lock().recover() = Some(key);
    }

    /// Wipes the key; the encoder refuses to encode until programmed again.
    /// Only the secure world calls this.
    pub fn clear_key(&self) {
        let mut k = self.key.lock().recover();
        if let Some(key) = k.as_mut() {
            *key = [0; 16];
        }
        *k = None;
    }

    /// Whether a key is programmed.
    pub fn has_key(&self) -> bool {
        self.key.lock().recover().is_some()
    }

    /// Encodes frame `frame_no` of geometry `frame`, read from the start of
    /// `src`, into `dst` as a TBE1 output (see the module documentation).
    /// Every access goes through the firewall as [`Master::VideoEncoder`].
    ///
    /// # Errors
    /// [`DeviceError::NoKey`] if no key is programmed;
    /// [`DeviceError::BufferTooSmall`] if `src` is smaller than the frame or
    /// `dst` than the output; [`DeviceError::Access`] if the firewall
    /// refuses a read or write (the output may then be partly written).
    pub fn encode(
        &self,
        platform: &Platform,
        frame_no: u32,
        src: &[PhysRange],
        frame: Frame,
        dst: &[PhysRange],
    ) -> Result<EncodedInfo, DeviceError> {
        let key = self.key.lock().recover().ok_or(DeviceError::NoKey)?;
        let header = EncodedHeader { frame, frame_no, payload_len: frame.byte_size(), iv: iv_for(frame_no) };
        ensure_len(ME, src, frame.byte_size())?;
        ensure_len(ME, dst, header.output_len())?;
        let mut cipher = Aes128Ctr::new(&key.into(), &header.iv.into());
        write_sg(platform, ME, dst, 0, &header.to_bytes())?;
        let mut at = EncodedHeader::LEN as u64;
        read_sg_bursts(platform, ME, src, 0, frame.byte_size(), |burst| {
            cipher.apply_keystream(burst);
            write_sg(platform, ME, dst, at, burst)?;
            at += burst.len() as u64;
            Ok(())
        })?;
        self.encoded.fetch_add(1, Ordering::Relaxed);
        Ok(EncodedInfo { header, bytes: at })
    }

    /// How many frames were encoded successfully.
    pub fn frames_encoded(&self) -> u64 {
        self.encoded.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::super::camera::{Camera, capture_reference};
    use super::super::read_sg;
    use super::super::testutil::{carve, normal, platform};
    use super::*;
    use crate::{AccessKind, UseCase};

    const TEST_KEY: [u8; 16] = *b"teeheap-test-key";

    #[test]
    fn camera_to_encoder_decrypts_to_the_camera_frames() {
        let p = platform();
        let (cam, enc) = (Camera::new(), VideoEncoder::new());
        enc.program_key(TEST_KEY);
        let frame = Frame::new(640, 480, PixelFormat::Nv12).unwrap();
        // The raw frame sits in the recording carveout, in two pieces.
        let raw = [
            carve(&p, UseCase::SecureVideoRecord, 0x20_0000, 0x3_0000),
            carve(&p, UseCase::SecureVideoRecord, 0, frame.page_size().bytes() - 0x3_0000),
        ];
        let out_len = EncodedHeader::LEN as u64 + frame.byte_size();
        // The output goes to normal memory, also in two pieces.
        let out = [normal(0x80_0000, 0x1_0000), normal(0x20_0000, out_len - 0x1_0000)];
        for n in [0u32, 1, 77] {
            cam.capture(&p, n, &raw, frame).unwrap();
            let info = enc.encode(&p, n, &raw, frame, &out).unwrap();
            assert_eq!(info.bytes, out_len);
            // The normal world reads the output and decrypts it with the test key.
            let mut bytes = vec![0u8; out_len as usize];
            read_sg(&p, Master::NsCpu, &out, 0, &mut bytes).unwrap();
            let h = EncodedHeader::parse(&bytes).unwrap();
            assert_eq!((h.frame, h.frame_no, h.iv), (frame, n, iv_for(n)));
            assert_eq!(h, info.header);
            let payload = &mut bytes[EncodedHeader::LEN..];
            assert!(payload != capture_reference(n, frame).as_slice(), "ciphertext is not the frame");
            Aes128Ctr::new(&TEST_KEY.into(), &h.iv.into()).apply_keystream(payload);
            assert!(payload == capture_reference(n, frame).as_slice(), "frame {n}");
        }
        assert_eq!(enc.frames_encoded(), 3);
        assert_eq!(p.firewall().violation_count(), 0);
    }

    #[test]
    fn known_answer() {
        // NIST SP 800-38A F.5.1 (CTR-AES128.Encrypt), block 1.
        let key = [0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6, 0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf, 0x4f, 0x3c];
        let iv = [0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff];
        let mut block =
            [0x6b, 0xc1, 0xbe, 0xe2, 0x2e, 0x40, 0x9f, 0x96, 0xe9, 0x3d, 0x7e, 0x11, 0x73, 0x93, 0x17, 0x2a];
        Aes128Ctr::new(&key.into(), &iv.into()).apply_keystream(&mut block);
        assert_eq!(
            block,
            [0x87, 0x4d, 0x61, 0x91, 0xb6, 0x20, 0xe3, 0x26, 0x1b, 0xef, 0x68, 0x64, 0x99, 0x0d, 0xb6, 0xce]
        );
    }

    #[test]
    fn refusals_and_missing_key() {
        let p = platform();
        let enc = VideoEncoder::new();
        let frame = Frame::new(64, 32, PixelFormat::Nv12).unwrap();
        let raw = [carve(&p, UseCase::SecureVideoRecord, 0, 0x1000)];
        let out = [normal(0, 0x2000)];
        assert_eq!(enc.encode(&p, 0, &raw, frame, &out), Err(DeviceError::NoKey));
        enc.program_key(TEST_KEY);
        assert!(format!("{enc:?}").contains("<programmed>") && !format!("{enc:?}").contains("teeheap"));
        // The encoder may not read secure-video frames, nor write into protected memory.
        let sv = [carve(&p, UseCase::SecureVideo, 0, 0x1000)];
        let v = enc.encode(&p, 0, &sv, frame, &out).unwrap_err().violation().cloned().unwrap();
        assert_eq!((v.master, v.kind), (Master::VideoEncoder, AccessKind::Read));
        let tui = [carve(&p, UseCase::TrustedUi, 0, 0x2000)];
        let v = enc.encode(&p, 0, &raw, frame, &tui).unwrap_err().violation().cloned().unwrap();
        assert_eq!((v.master, v.kind), (Master::VideoEncoder, AccessKind::Write));
        assert_eq!(p.firewall().violation_count(), 2);
        assert!(matches!(enc.encode(&p, 0, &raw, frame, &[normal(0, 100)]), Err(DeviceError::BufferTooSmall { .. })));
        enc.clear_key();
        assert!(!enc.has_key());
        assert_eq!(enc.encode(&p, 0, &raw, frame, &out), Err(DeviceError::NoKey));
        assert_eq!(enc.frames_encoded(), 0);
    }

    #[test]
    fn header_round_trip() {
        let h = EncodedHeader {
            frame: Frame::UHD_P010,
            frame_no: 5,
            payload_len: Frame::UHD_P010.byte_size(),
            iv: iv_for(5),
        };
        assert_eq!(EncodedHeader::parse(&h.to_bytes()), Some(h));
        let mut bad = h.to_bytes();
        bad[16] ^= 1;
        assert_eq!(EncodedHeader::parse(&bad), None);
        assert_eq!(EncodedHeader::parse(&h.to_bytes()[..47]), None);
        assert_eq!(iv_for(0x0102_0304)[..5], [1, 2, 3, 4, 0]);
    }
}
