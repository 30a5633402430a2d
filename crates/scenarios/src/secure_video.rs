//! Secure video playback: encrypted samples are decrypted by the
//! content-decryption TA straight into a protected bitstream buffer, the
//! video decoder expands each into a protected frame buffer, the display
//! scans it out; the normal world only ever holds ciphertext.
//!
//! The player (a [`Client`]) does what a real one does:
//! 1. opens `/dev/dma_heap/protected,secure-video` and `/dev/tee0`, opens a
//!    session with the content-decryption TA;
//! 2. `SHM_ALLOC`s a shared buffer for the sample and its CENC sample info
//!    and maps it;
//! 3. allocates a protected bitstream buffer and frame buffers with
//!    `DMA_HEAP_IOCTL_ALLOC`, registers the bitstream buffer with
//!    `SHM_REGISTER_FD`, hands the buffers to the decoder (attachments) and
//!    to the display through its UAPI: `/dev/dri/card0` (vkms), PRIME
//!    import and `ADDFB2` of each frame buffer, a mode blob;
//! 4. per sample: writes it into the shm, invokes DECRYPT into the bitstream
//!    buffer, decodes, shows the frame by an atomic commit (the first one
//!    sets the mode), reads the display's CRC of the frame.
//!
//! The content side ([`package`]) makes each frame's TBS bitstream, keeps
//! the CRC of the frame it must decode to, and encrypts it as CENC `cenc`:
//! the 24-byte header clear, the body AES-128-CTR encrypted.

use std::fmt;

use aes::cipher::{KeyIvInit, StreamCipher};
use serde::Serialize;
use teeheap_kernel::Kernel;
use teeheap_kernel::backend::optee::OpteeBackend;
use teeheap_kernel::drm::kms::props::Prop;
use teeheap_kernel::drm::kms::{CONNECTOR_ID, CRTC_ID, MODES, PLANE_ID};
use teeheap_platform::devices::{Frame, PixelFormat, TbsHeader, VideoDecoder, encode_test_stream, render_reference};
use teeheap_platform::{Master, PAGE_SIZE, UseCase};
use teeheap_secure_world::config::{DEFAULT_CONTENT_KEY, DEFAULT_CONTENT_KEY_ID};
use teeheap_secure_world::ta::content_decrypt::{self, CMD_DECRYPT, encode_sample_info};
use teeheap_uapi::drm::{
    DRM_CLIENT_CAP_ATOMIC, DRM_FORMAT_NV12, DRM_FORMAT_XRGB8888, DRM_MODE_ATOMIC_ALLOW_MODESET, DrmModeModeinfo,
};
use zerocopy::IntoBytes;

use crate::client::{Client, DeviceMapping, Fd, memref_in, memref_out, value_in};
use crate::error::{ScenarioError, Step};
use crate::ns_cpu::{self, NsCpuAttempts};
use crate::{Check, Cleanup, write_checks};
use teeheap_secure_world::SecureWorld;

/// How the playback runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecureVideoConfig {
    /// Samples (frames) to play.
    pub samples: u32,
    /// Geometry of the video.
    pub frame: Frame,
    /// Frame buffers the decoder cycles through.
    pub frame_buffers: usize,
    /// Key id of the content key, as the license names it.
    pub key_id: u32,
    /// The content key the packager encrypts with (the secure world holds
    /// the same key under `key_id`).
    pub key: [u8; 16],
}

impl Default for SecureVideoConfig {
    /// 8 samples of 1080p NV12 with the default content key, two frame buffers.
    fn default() -> Self {
        SecureVideoConfig {
            samples: 8,
            frame: Frame::FHD_NV12,
            frame_buffers: 2,
            key_id: DEFAULT_CONTENT_KEY_ID,
            key: DEFAULT_CONTENT_KEY,
        }
    }
}

/// One encrypted sample as a packager delivers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncryptedSample {
    /// Its frame number.
    pub frame_no: u32,
    /// The initial counter block (an 8-byte CENC IV, padded with zeroes).
    pub iv: [u8; 16],
    /// `(clear, encrypted)` byte counts.
    pub subsamples: Vec<(u32, u32)>,
    /// The sample: clear and encrypted parts, in order.
    pub data: Vec<u8>,
    /// CRC32 of the frame the plaintext decodes to.
    pub reference_crc: u32,
}

/// The content side: frame `frame_no`'s test bitstream, encrypted as CENC
/// `cenc` with `key` (header clear, body encrypted), and the CRC of the
/// frame its plaintext decodes to.
pub fn package(frame_no: u32, frame: Frame, key: &[u8; 16]) -> EncryptedSample {
    let plain = encode_test_stream(frame_no, frame);
    let header = TbsHeader::parse(&plain).expect("a test stream parses");
    let reference_crc = crc32fast::hash(&render_reference(&header));
    let mut iv = [0u8; 16];
    iv[..8].copy_from_slice(&(0x7465_6568_0000_0000 | u64::from(frame_no)).to_be_bytes());
    let clear = TbsHeader::LEN.min(plain.len());
    let subsamples = vec![(clear as u32, (plain.len() - clear) as u32)];
    let mut data = plain;
    ctr::Ctr64BE::<aes::Aes128>::new(key.into(), (&iv).into()).apply_keystream(&mut data[clear..]);
    EncryptedSample { frame_no, iv, subsamples, data, reference_crc }
}

/// One played frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PlayedFrame {
    /// Frame number.
    pub frame_no: u32,
    /// Bytes of the encrypted sample.
    pub sample_bytes: u64,
    /// CRC32 the display computed while scanning the frame out.
    pub display_crc: u32,
    /// CRC32 of the frame the plaintext decodes to.
    pub reference_crc: u32,
}

impl PlayedFrame {
    /// Whether the display showed exactly the reference frame.
    pub fn matches(&self) -> bool {
        self.display_crc == self.reference_crc
    }
}

/// What the playback did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SecureVideoReport {
    /// Geometry, e.g. `1920x1080 NV12`.
    pub frame: String,
    /// The heap's pool as `teeheap ls` shows it.
    pub pool: String,
    /// Samples played.
    pub samples: u32,
    /// Bytes of ciphertext samples that went through normal memory.
    pub encrypted_bytes: u64,
    /// Frames the decoder decoded.
    pub frames_decoded: u64,
    /// Frames the display (`/dev/dri/card0`) scanned out.
    pub frames_shown: u64,
    /// Each frame.
    pub frames: Vec<PlayedFrame>,
    /// The deliberate normal-world reads of the bitstream and frame buffers.
    pub ns_cpu: NsCpuAttempts,
    /// What was left afterwards.
    pub after: Cleanup,
}

impl SecureVideoReport {
    /// Frames whose display CRC equals the reference.
    pub fn crcs_matching(&self) -> usize {
        self.frames.iter().filter(|f| f.matches()).count()
    }

    /// What was verified.
    pub fn checks(&self) -> Vec<Check> {
        let n = u64::from(self.samples);
        vec![
            Check::new(
                n > 0 && self.frames_decoded == n && self.frames_shown == n,
                format!("secure video: {}/{n} frames decoded, {}/{n} shown", self.frames_decoded, self.frames_shown),
            ),
            Check::new(
                self.frames.len() as u64 == n && self.crcs_matching() == self.frames.len(),
                format!(
                    "secure video: {}/{} display CRCs equal the plaintext reference",
                    self.crcs_matching(),
                    self.frames.len()
                ),
            ),
            Check::new(
                self.ns_cpu.all_refused_and_logged(),
                format!(
                    "secure video: {}/{} normal-world reads/mmaps of bitstream and frames refused, {} logged",
                    self.ns_cpu.refused(),
                    self.ns_cpu.attempts(),
                    self.ns_cpu.reads_logged
                ),
            ),
            self.after.check(),
        ]
    }
}

impl fmt::Display for SecureVideoReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "secure video playback ({}, pool: {})", UseCase::SecureVideo.heap_name(), self.pool)?;
        writeln!(
            f,
            "  {} encrypted samples ({} bytes, cenc AES-128-CTR) -> {} frames decoded, {} shown on /dev/dri/card0 by atomic commits ({})",
            self.samples, self.encrypted_bytes, self.frames_decoded, self.frames_shown, self.frame
        )?;
        let crcs: Vec<String> = self.frames.iter().map(|p| format!("{:08x}", p.display_crc)).collect();
        writeln!(f, "  display CRCs: {}", crcs.join(" "))?;
        write_checks(f, &self.checks())
    }
}

/// Plays `config.samples` samples. See the module documentation.
///
/// # Errors
/// [`ScenarioError`] if a step fails (an ioctl, DECRYPT, the decoder or the
/// display). Everything made so far is released either way.
pub fn run(
    kernel: &Kernel,
    backend: &OpteeBackend<SecureWorld>,
    config: &SecureVideoConfig,
) -> Result<SecureVideoReport, ScenarioError> {
    let mut report = play(kernel, config)?;
    report.after = Cleanup::measure(kernel, backend);
    Ok(report)
}

/// The connector's mode the frame fits (1920x1080, else 3840x2160).
fn display_mode((w, h): (u32, u32)) -> DrmModeModeinfo {
    *MODES.iter().find(|m| u32::from(m.hdisplay) >= w && u32::from(m.vdisplay) >= h).unwrap_or(&MODES[1])
}

fn describe(frame: Frame) -> String {
    format!("{}x{} {}", frame.width(), frame.height(), frame.format().name())
}

fn play(kernel: &Kernel, config: &SecureVideoConfig) -> Result<SecureVideoReport, ScenarioError> {
    let platform = kernel.platform();
    let heap_name = UseCase::SecureVideo.heap_name();
    let samples: Vec<EncryptedSample> = (0..config.samples).map(|n| package(n, config.frame, &config.key)).collect();
    let max_sample = samples.iter().map(|s| s.data.len() as u64).max().unwrap_or(1);
    // The sample info fits a page (an IV and a few subsample entries).
    let info_room = PAGE_SIZE;

    let mut c = Client::new(kernel);
    let heap = c.open_heap(heap_name)?;
    let tee = c.open_tee("tee0")?;
    let session = c.open_session(tee, *content_decrypt::UUID.as_bytes())?;
    let shm = c.shm_alloc(tee, info_room + max_sample)?;
    let shm_map = c.mmap_shm(&shm)?;

    let bits_fd = c.heap_alloc(heap, max_sample)?;
    let bits = c.shm_register_fd(tee, bits_fd)?;
    let bits_dec = c.attach(bits_fd, Master::VideoDecoder)?;
    let fbs = (0..config.frame_buffers.max(1))
        .map(|_| c.heap_alloc(heap, config.frame.page_size().bytes()))
        .collect::<Result<Vec<Fd>, _>>()?;
    let fb_dec = fbs.iter().map(|&fd| c.attach(fd, Master::VideoDecoder)).collect::<Result<Vec<DeviceMapping>, _>>()?;

    // The display, through its UAPI.
    let fourcc = match config.frame.format() {
        PixelFormat::Nv12 => DRM_FORMAT_NV12,
        PixelFormat::Xrgb8888 => DRM_FORMAT_XRGB8888,
        other => return Err(ScenarioError::Setup(format!("the display does not scan {}", other.name()))),
    };
    let card = c.open_card("dri/card0")?;
    c.drm_set_client_cap(card, DRM_CLIENT_CAP_ATOMIC, 1)?;
    let size = (config.frame.width(), config.frame.height());
    let fb_ids = fbs.iter().map(|&fd| c.add_framebuffer(card, fd, fourcc, size)).collect::<Result<Vec<u32>, _>>()?;
    let mode = display_mode(size);
    let mode_blob = c.create_blob(card, mode.as_bytes())?;
    let display = kernel.display().ok_or(ScenarioError::Setup("no display".into()))?;

    let decoder = VideoDecoder::new();
    let (mut frames, mut frames_shown) = (Vec::new(), 0);
    for (i, s) in samples.iter().enumerate() {
        let info = encode_sample_info(&s.iv, &s.subsamples);
        let len = s.data.len() as u64;
        shm_map.write(0, &info).step("write the sample info")?;
        shm_map.write(info_room, &s.data).step("write the sample")?;
        c.invoke(
            tee,
            session,
            CMD_DECRYPT,
            &[
                value_in(u64::from(config.key_id), 0, 0),
                memref_in(&shm, 0, info.len() as u64),
                memref_in(&shm, info_room, len),
                memref_out(&bits, 0, bits.size),
            ],
        )?
        .success("DECRYPT")?;
        let slot = i % fbs.len();
        decoder.decode(platform, bits_dec.sg(), len, fb_dec[slot].sg()).step("decode")?;
        let plane = |p: Prop, v: u64| (PLANE_ID, p.id(), v);
        let mut sets = vec![plane(Prop::FbId, u64::from(fb_ids[slot]))];
        if i == 0 {
            let (w, h) = (u64::from(size.0), u64::from(size.1));
            sets.extend([
                plane(Prop::CrtcId, u64::from(CRTC_ID)),
                plane(Prop::SrcW, w << 16),
                plane(Prop::SrcH, h << 16),
                plane(Prop::CrtcW, w),
                plane(Prop::CrtcH, h),
                (CRTC_ID, Prop::ModeId.id(), u64::from(mode_blob)),
                (CRTC_ID, Prop::Active.id(), 1),
                (CONNECTOR_ID, Prop::CrtcId.id(), u64::from(CRTC_ID)),
            ]);
        }
        c.atomic_commit(card, if i == 0 { DRM_MODE_ATOMIC_ALLOW_MODESET } else { 0 }, &sets)?;
        // The frame is on screen when the commit returns; its CRC is the
        // newest, if this very frame was scanned out.
        let display_crc = match display.crcs().last() {
            Some(c) if c.frame == display.frames() => c.crc,
            _ => return Err(ScenarioError::Setup("the display showed nothing".into())),
        };
        frames_shown += 1;
        frames.push(PlayedFrame {
            frame_no: s.frame_no,
            sample_bytes: len,
            display_crc,
            reference_crc: s.reference_crc,
        });
    }

    let mut targets = vec![bits_dec.buffer()];
    targets.extend(fb_dec.iter().map(DeviceMapping::buffer));
    let ns_cpu = ns_cpu::try_read(platform, &targets);
    let pool = kernel.dma_heaps().open(heap_name).map(|h| h.info().pool).unwrap_or_default();

    c.close_session(tee, session)?;
    drop((shm_map, bits_dec, fb_dec));
    drop(c);
    Ok(SecureVideoReport {
        frame: describe(config.frame),
        pool,
        samples: config.samples,
        encrypted_bytes: samples.iter().map(|s| s.data.len() as u64).sum(),
        frames_decoded: decoder.frames_decoded(),
        frames_shown,
        frames,
        ns_cpu,
        after: Cleanup::default(),
    })
}
