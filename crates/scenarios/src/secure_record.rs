//! Secure video recording: the camera writes frames into protected buffers
//! that only the camera may write and only the video encoder may read; the
//! encoder, with a key the secure world programmed into it, writes the
//! encrypted recording into an ordinary `system` heap buffer. The raw frames
//! never become readable by the normal world; the recording is ciphertext.
//!
//! The program allocates a ring of frame buffers from
//! `/dev/dma_heap/protected,secure-video-record` (on the default platform a
//! dynamic pool) and the output from `/dev/dma_heap/system`, attaches the
//! camera and the encoder, records, and reads the recording through its own
//! `mmap` of the output buffer. Whoever holds the record key can check it
//! with [`decrypt_recording`].

use std::fmt;

use aes::cipher::{KeyIvInit, StreamCipher};
use serde::Serialize;
use teeheap_kernel::Kernel;
use teeheap_kernel::backend::optee::OpteeBackend;
use teeheap_kernel::dma_buf::SgTable;
use teeheap_platform::devices::{Camera, EncodedHeader, Frame, VideoEncoder, capture_reference};
use teeheap_platform::{Master, UseCase};
use teeheap_secure_world::config::DEFAULT_ENCODER_KEY;
use teeheap_uapi::tee::gp::TEEC_ORIGIN_TEE;

use crate::client::{Client, DeviceMapping, Fd};
use crate::error::{ScenarioError, Step};
use crate::key_slot::EncoderKeySlot;
use crate::ns_cpu::{self, NsCpuAttempts};
use crate::{Check, Cleanup, write_checks};
use teeheap_secure_world::SecureWorld;

/// How the recording runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecureRecordConfig {
    /// Frames to record.
    pub frames: u32,
    /// Camera geometry.
    pub frame: Frame,
    /// Protected frame buffers the camera cycles through.
    pub ring: usize,
    /// The record key of whoever plays the recording back, to verify it
    /// (the secure world's provisioned key); `None` skips the check.
    pub playback_key: Option<[u8; 16]>,
}

impl Default for SecureRecordConfig {
    /// 4 frames of 1080p NV12 through a ring of 2, verified with the
    /// default record key.
    fn default() -> Self {
        SecureRecordConfig { frames: 4, frame: Frame::FHD_NV12, ring: 2, playback_key: Some(DEFAULT_ENCODER_KEY) }
    }
}

/// Where one encoded frame sits in the recording.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct RecordedFrame {
    /// Its frame number.
    pub frame_no: u32,
    /// Byte offset in the recording.
    pub offset: u64,
    /// Bytes (TBE1 header and ciphertext).
    pub bytes: u64,
}

/// What the recording did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SecureRecordReport {
    /// Geometry, e.g. `1920x1080 NV12`.
    pub frame: String,
    /// The heap's pool as `teeheap ls` showed it while the frames lived.
    pub pool: String,
    /// Objects the kernel lent to the secure world for the frames.
    pub chunks_lent: u64,
    /// Frames asked for.
    pub frames: u32,
    /// Frames the camera captured.
    pub frames_captured: u64,
    /// Frames the encoder encoded.
    pub frames_encoded: u64,
    /// Bytes of the recording.
    pub recorded_bytes: u64,
    /// Each frame in the recording.
    pub outputs: Vec<RecordedFrame>,
    /// Frames that decrypted to exactly the camera's frame with the
    /// playback key (`None` if not verified).
    pub frames_verified: Option<u64>,
    /// Whether any ciphertext payload equals its raw frame.
    pub plaintext_in_recording: bool,
    /// The deliberate normal-world reads of the raw frames.
    pub ns_cpu: NsCpuAttempts,
    /// What was left afterwards.
    pub after: Cleanup,
    /// The recording as the program read it from its output buffer.
    #[serde(skip)]
    pub recording: Vec<u8>,
}

impl SecureRecordReport {
    /// What was verified.
    pub fn checks(&self) -> Vec<Check> {
        let n = u64::from(self.frames);
        let mut v = vec![Check::new(
            n > 0 && self.frames_captured == n && self.frames_encoded == n && self.recorded_bytes > 0,
            format!(
                "secure record: {}/{n} frames captured, {}/{n} encoded, {} bytes recorded",
                self.frames_captured, self.frames_encoded, self.recorded_bytes
            ),
        )];
        if let Some(ok) = self.frames_verified {
            v.push(Check::new(
                ok == n && !self.plaintext_in_recording,
                format!("secure record: {ok}/{n} recorded frames decrypt to the camera frames, none stored in clear"),
            ));
        }
        v.push(Check::new(
            self.ns_cpu.all_refused_and_logged(),
            format!(
                "secure record: {}/{} normal-world reads/mmaps of the raw frames refused, {} logged",
                self.ns_cpu.refused(),
                self.ns_cpu.attempts(),
                self.ns_cpu.reads_logged
            ),
        ));
        v.push(self.after.check());
        v
    }
}

impl fmt::Display for SecureRecordReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "secure video recording ({}, pool: {})", UseCase::SecureVideoRecord.heap_name(), self.pool)?;
        writeln!(
            f,
            "  {} frames ({}) captured into protected buffers ({} lent region{}), {} encoded -> {} bytes recorded \
             (AES-128-CTR) in a system heap buffer",
            self.frames_captured,
            self.frame,
            self.chunks_lent,
            if self.chunks_lent == 1 { "" } else { "s" },
            self.frames_encoded,
            self.recorded_bytes
        )?;
        write_checks(f, &self.checks())
    }
}

/// Decrypts a recording with `key`: each frame's header and plaintext, in
/// order. Stops at the first bytes that are not a TBE1 header.
pub fn decrypt_recording(recording: &[u8], key: &[u8; 16]) -> Vec<(EncodedHeader, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = recording;
    while let Some(h) = EncodedHeader::parse(rest) {
        let Some(payload) = rest.get(EncodedHeader::LEN..h.output_len() as usize) else { break };
        let mut plain = payload.to_vec();
        ctr::Ctr128BE::<aes::Aes128>::new(key.into(), (&h.iv).into()).apply_keystream(&mut plain);
        out.push((h, plain));
        rest = &rest[h.output_len() as usize..];
    }
    out
}

/// Records `config.frames` frames. See the module documentation.
///
/// # Errors
/// [`ScenarioError`] if a step fails (an ioctl, programming the key, the
/// camera or the encoder). Everything made so far is released either way.
pub fn run(
    kernel: &Kernel,
    backend: &OpteeBackend<SecureWorld>,
    config: &SecureRecordConfig,
) -> Result<SecureRecordReport, ScenarioError> {
    let mut report = record(kernel, backend, config)?;
    report.after = Cleanup::measure(kernel, backend);
    if let Some(key) = config.playback_key {
        let frames = decrypt_recording(&report.recording, &key);
        report.frames_verified =
            Some(frames.iter().filter(|(h, plain)| *plain == capture_reference(h.frame_no, h.frame)).count() as u64);
        report.plaintext_in_recording = frames.iter().any(|(h, _)| {
            let at = report.outputs.iter().find(|o| o.frame_no == h.frame_no).map_or(0, |o| o.offset as usize);
            let cipher = report.recording.get(at + EncodedHeader::LEN..at + h.output_len() as usize);
            cipher.is_some_and(|c| c == capture_reference(h.frame_no, h.frame).as_slice())
        });
    }
    Ok(report)
}

fn record(
    kernel: &Kernel,
    backend: &OpteeBackend<SecureWorld>,
    config: &SecureRecordConfig,
) -> Result<SecureRecordReport, ScenarioError> {
    let platform = kernel.platform();
    let frame = config.frame;
    let out_len = u64::from(config.frames) * (EncodedHeader::LEN as u64 + frame.byte_size());
    let lent_before = backend.world().stats().lent;

    let mut c = Client::new(kernel);
    let heap = c.open_heap(UseCase::SecureVideoRecord.heap_name())?;
    let system = c.open_heap("system")?;
    let ring = (0..config.ring.max(1))
        .map(|_| c.heap_alloc(heap, frame.page_size().bytes()))
        .collect::<Result<Vec<Fd>, _>>()?;
    let attach_all = |dev| ring.iter().map(|&fd| c.attach(fd, dev)).collect::<Result<Vec<DeviceMapping>, _>>();
    let (cam, enc_in) = (attach_all(Master::Camera)?, attach_all(Master::VideoEncoder)?);
    let out_fd = c.heap_alloc(system, out_len.max(1))?;
    let enc_out = c.attach(out_fd, Master::VideoEncoder)?;
    let out_sg = SgTable::new(enc_out.sg().to_vec());

    let (camera, encoder) = (Camera::new(), VideoEncoder::new());
    backend.world().program_encoder_key(&EncoderKeySlot(&encoder)).map_err(|e| ScenarioError::Tee {
        what: "program the record key",
        ret: e.code(),
        origin: TEEC_ORIGIN_TEE,
    })?;
    let mut outputs = Vec::new();
    let mut at = 0u64;
    for n in 0..config.frames {
        let slot = n as usize % ring.len();
        camera.capture(platform, n, cam[slot].sg(), frame).step("capture")?;
        let dst = out_sg
            .resolve(at, out_len - at)
            .ok_or_else(|| ScenarioError::Setup("the recording does not fit its buffer".into()))?;
        let info = encoder.encode(platform, n, enc_in[slot].sg(), frame, &dst).step("encode")?;
        outputs.push(RecordedFrame { frame_no: n, offset: at, bytes: info.bytes });
        at += info.bytes;
    }

    let ns_cpu = ns_cpu::try_read(platform, &cam.iter().map(DeviceMapping::buffer).collect::<Vec<_>>());
    let pool =
        kernel.dma_heaps().open(UseCase::SecureVideoRecord.heap_name()).map(|h| h.info().pool).unwrap_or_default();
    let chunks_lent = backend.world().stats().lent - lent_before;
    // The program reads its recording through its own mapping.
    let mut recording = vec![0u8; at as usize];
    c.mmap_dma_buf(out_fd).and_then(|m| m.read(0, &mut recording)).step("read the recording")?;
    drop((cam, enc_in, enc_out));
    drop(c);
    Ok(SecureRecordReport {
        frame: format!("{}x{} {}", frame.width(), frame.height(), frame.format().name()),
        pool,
        chunks_lent,
        frames: config.frames,
        frames_captured: camera.frames_captured(),
        frames_encoded: encoder.frames_encoded(),
        recorded_bytes: at,
        outputs,
        frames_verified: None,
        plaintext_in_recording: false,
        ns_cpu,
        after: Cleanup::default(),
        recording,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decrypting_stops_at_bytes_that_are_not_a_recording() {
        assert!(decrypt_recording(&[], &DEFAULT_ENCODER_KEY).is_empty());
        assert!(decrypt_recording(b"not a TBE1 header at all, just text ......", &DEFAULT_ENCODER_KEY).is_empty());
    }
}
