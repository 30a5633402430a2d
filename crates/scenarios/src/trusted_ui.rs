//! Trusted UI: the trusted-UI TA draws a PIN pad into a protected
//! framebuffer that only the display can read, the user types the PIN on
//! the secure input path, and the normal world learns only whether it was
//! right.
//!
//! The program allocates a 1080p XRGB8888 framebuffer from
//! `/dev/dma_heap/protected,trusted-ui` (on the default platform a dynamic
//! pool: memory is lent to the secure world for it), registers it with
//! `SHM_REGISTER_FD`, attaches the display, and per attempt invokes
//! SHOW_PIN_PAD (the display CRC must equal the CRC of
//! [`render_pin_pad`]), INPUT (after the user typed on
//! [`teeheap_secure_world::SecureInput`]) and CHECK. Once everything is
//! released it scans all normal memory for the PIN digits: none may be found.

use std::fmt;

use serde::Serialize;
use teeheap_kernel::Kernel;
use teeheap_kernel::backend::optee::OpteeBackend;
use teeheap_platform::devices::{Display, Frame, PixelFormat};
use teeheap_platform::{Master, Platform, UseCase};
use teeheap_secure_world::ta::trusted_ui::{self, CMD_CHECK, CMD_INPUT, CMD_SHOW_PIN_PAD, render_pin_pad};

use crate::client::{Client, memref_out, value_in, value_inout, value_out};
use crate::error::{ScenarioError, Step};
use crate::memscan::{self, MemoryScan};
use crate::ns_cpu::{self, NsCpuAttempts};
use crate::{Check, Cleanup, write_checks};
use teeheap_secure_world::SecureWorld;

/// How long INPUT waits for the first key, in milliseconds.
const INPUT_WAIT_MS: u64 = 1000;

/// One PIN entry the user makes.
#[derive(Clone, PartialEq, Eq)]
pub struct PinEntry {
    /// How the report names it (`right PIN`, `wrong PIN`).
    pub label: String,
    /// The digits typed.
    pub digits: String,
    /// Whether the TA should accept it.
    pub should_pass: bool,
}

impl fmt::Debug for PinEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinEntry")
            .field("label", &self.label)
            .field("digits", &"<redacted>")
            .field("should_pass", &self.should_pass)
            .finish()
    }
}

/// How the trusted UI runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedUiConfig {
    /// Framebuffer geometry (XRGB8888).
    pub frame: Frame,
    /// The entries, in order.
    pub entries: Vec<PinEntry>,
}

impl TrustedUiConfig {
    /// A 1080p framebuffer; the right PIN (the one `platform`'s description
    /// provisions), then a wrong one.
    pub fn for_platform(platform: &Platform) -> TrustedUiConfig {
        let pin = platform.config().tee.trusted_ui_pin.clone();
        TrustedUiConfig {
            frame: Frame::FHD_XRGB8888,
            entries: vec![
                PinEntry { label: "right PIN".into(), digits: pin.clone(), should_pass: true },
                PinEntry { label: "wrong PIN".into(), digits: wrong_pin(&pin, 1), should_pass: false },
            ],
        }
    }
}

/// `pin` with every digit advanced by `step` (mod 10): a different PIN of
/// the same length for `step` in 1..=9.
pub fn wrong_pin(pin: &str, step: u32) -> String {
    pin.chars().map(|c| c.to_digit(10).map_or(c, |d| char::from_digit((d + step) % 10, 10).unwrap_or(c))).collect()
}

/// One attempt as the normal world saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PinAttempt {
    /// The entry's label.
    pub label: String,
    /// CRC32 the display computed scanning out the PIN pad.
    pub display_crc: u32,
    /// Digits the TA reports it took (a count, never the digits).
    pub digits_entered: u64,
    /// Whether the TA saw Enter.
    pub complete: bool,
    /// Whether the TA said the PIN was right.
    pub accepted: bool,
    /// Whether it should have.
    pub expected: bool,
    /// Wrong attempts left in the session.
    pub attempts_left: u64,
}

/// What the trusted UI did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TrustedUiReport {
    /// Framebuffer geometry, e.g. `1920x1080 XRGB8888`.
    pub frame: String,
    /// The heap's pool as `teeheap ls` showed it while the framebuffer lived.
    pub pool: String,
    /// Objects the kernel lent to the secure world for the framebuffer.
    pub chunks_lent: u64,
    /// CRC32 of [`render_pin_pad`] at this geometry.
    pub pad_reference_crc: u32,
    /// Each attempt.
    pub attempts: Vec<PinAttempt>,
    /// The deliberate normal-world reads of the framebuffer.
    pub ns_cpu: NsCpuAttempts,
    /// The search of normal memory for the PIN digits, after the flow.
    pub scan: MemoryScan,
    /// What was left afterwards.
    pub after: Cleanup,
}

impl TrustedUiReport {
    /// What was verified.
    pub fn checks(&self) -> Vec<Check> {
        let pads = self.attempts.iter().filter(|a| a.display_crc == self.pad_reference_crc).count();
        let mut v = vec![Check::new(
            !self.attempts.is_empty() && pads == self.attempts.len(),
            format!(
                "trusted UI: {pads}/{} PIN pad scan-outs match the reference CRC {:08x}",
                self.attempts.len(),
                self.pad_reference_crc
            ),
        )];
        for a in &self.attempts {
            let outcome = if a.accepted { "accepted" } else { "refused" };
            v.push(Check::new(
                a.accepted == a.expected && a.complete,
                format!("trusted UI: {} -> {outcome} ({} attempts left)", a.label, a.attempts_left),
            ));
        }
        v.push(Check::new(
            self.scan.matches == 0 && self.scan.normal_bytes > 0,
            format!(
                "trusted UI: {} PIN digit strings in {} MiB of normal memory ({} KiB hold data, the rest reads as zeroes)",
                self.scan.matches,
                self.scan.normal_bytes >> 20,
                self.scan.bytes_read >> 10
            ),
        ));
        v.push(Check::new(
            self.ns_cpu.all_refused_and_logged(),
            format!(
                "trusted UI: {}/{} normal-world reads/mmaps of the framebuffer refused, {} logged",
                self.ns_cpu.refused(),
                self.ns_cpu.attempts(),
                self.ns_cpu.reads_logged
            ),
        ));
        v.push(self.after.check());
        v
    }
}

impl fmt::Display for TrustedUiReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "trusted UI ({}, pool: {})", UseCase::TrustedUi.heap_name(), self.pool)?;
        let outcomes: Vec<String> = self
            .attempts
            .iter()
            .map(|a| format!("{}: {}", a.label, if a.accepted { "PIN ok" } else { "PIN not ok" }))
            .collect();
        writeln!(
            f,
            "  {} framebuffer in {} lent region{}; {}",
            self.frame,
            self.chunks_lent,
            if self.chunks_lent == 1 { "" } else { "s" },
            outcomes.join(", ")
        )?;
        write_checks(f, &self.checks())
    }
}

/// Runs the PIN entries of `config`. See the module documentation.
///
/// # Errors
/// [`ScenarioError`] if a step fails. Everything made so far is released
/// either way.
pub fn run(
    kernel: &Kernel,
    backend: &OpteeBackend<SecureWorld>,
    config: &TrustedUiConfig,
) -> Result<TrustedUiReport, ScenarioError> {
    let mut report = show(kernel, backend, config)?;
    report.after = Cleanup::measure(kernel, backend);
    let mut patterns = Vec::new();
    for e in &config.entries {
        let ascii = e.digits.as_bytes().to_vec();
        patterns.push(ascii.iter().map(|b| b.wrapping_sub(b'0')).collect());
        patterns.push(ascii);
    }
    report.scan = memscan::scan_normal_memory(kernel.platform(), &patterns);
    Ok(report)
}

fn show(
    kernel: &Kernel,
    backend: &OpteeBackend<SecureWorld>,
    config: &TrustedUiConfig,
) -> Result<TrustedUiReport, ScenarioError> {
    let platform = kernel.platform();
    let frame = config.frame;
    if frame.format() != PixelFormat::Xrgb8888 {
        return Err(ScenarioError::Setup(format!("the PIN pad is XRGB8888, not {}", frame.format().name())));
    }
    let (w, h) = (u64::from(frame.width()), u64::from(frame.height()));
    let stride = w * 4;
    let pad_reference_crc = crc32fast::hash(&render_pin_pad(w as usize, h as usize, stride as usize));
    let lent_before = backend.world().stats().lent;

    let mut c = Client::new(kernel);
    let heap = c.open_heap(UseCase::TrustedUi.heap_name())?;
    let tee = c.open_tee("tee0")?;
    let session = c.open_session(tee, *trusted_ui::UUID.as_bytes())?;
    let fb_fd = c.heap_alloc(heap, stride * h)?;
    let fb = c.shm_register_fd(tee, fb_fd)?;
    let scanout = c.attach(fb_fd, Master::Display)?;
    let display = Display::new();

    let mut attempts = Vec::new();
    for e in &config.entries {
        c.invoke(tee, session, CMD_SHOW_PIN_PAD, &[memref_out(&fb, 0, stride * h), value_in(w, h, stride)])?
            .success("SHOW_PIN_PAD")?;
        let display_crc = display.scan_out(platform, scanout.sg(), frame).step("scan out the PIN pad")?;
        // The user types on the secure input device; nothing of it passes
        // through the normal world.
        backend.world().secure_input().type_and_enter(&e.digits);
        let input = c.invoke(tee, session, CMD_INPUT, &[value_inout(INPUT_WAIT_MS, 0, 0)])?.success("INPUT")?;
        let check = c.invoke(tee, session, CMD_CHECK, &[value_out()])?.success("CHECK")?;
        attempts.push(PinAttempt {
            label: e.label.clone(),
            display_crc,
            digits_entered: input[0].a,
            complete: input[0].b == 1,
            accepted: check[0].a == 1,
            expected: e.should_pass,
            attempts_left: check[0].b,
        });
    }

    let ns_cpu = ns_cpu::try_read(platform, &[scanout.buffer()]);
    let pool = kernel.dma_heaps().open(UseCase::TrustedUi.heap_name()).map(|h| h.info().pool).unwrap_or_default();
    let chunks_lent = backend.world().stats().lent - lent_before;
    c.close_session(tee, session)?;
    drop(scanout);
    drop(c);
    Ok(TrustedUiReport {
        frame: format!("{}x{} {}", frame.width(), frame.height(), frame.format().name()),
        pool,
        chunks_lent,
        pad_reference_crc,
        attempts,
        ns_cpu,
        scan: MemoryScan::default(),
        after: Cleanup::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_pins_differ_in_every_digit() {
        assert_eq!(wrong_pin("4711", 1), "5822");
        assert_eq!(wrong_pin("0990", 9), "9889");
        assert_eq!(wrong_pin("4711", 10), "4711");
        let e = PinEntry { label: "x".into(), digits: "4711".into(), should_pass: true };
        assert!(!format!("{e:?}").contains("4711"));
    }
}
