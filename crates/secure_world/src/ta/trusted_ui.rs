//! The trusted-UI TA: draws a PIN pad into a protected framebuffer, takes
//! the digits from the secure input path, and tells the normal world only
//! whether the PIN was right.
//!
//! UUID `74656568-6561-7002-8000-000000000002`. Commands (errors have origin
//! TRUSTED_APP; wrong types → BAD_PARAMETERS):
//!
//! | cmd | params | does |
//! |---|---|---|
//! | SHOW_PIN_PAD 0 | p0 memref out (trusted-ui protected memory); p1 value in a = width, b = height, c = stride in bytes | renders [`render_pin_pad`] (XRGB8888), clears the entry. Not trusted-ui memory → SECURITY; too small → SHORT_BUFFER (p0 size = stride × height) |
//! | INPUT 1 | p0 value inout: in a = ms to wait for the first event | takes events from [`crate::SecureInput`] until Enter or none is left; out a = digits entered, b = 1 once Enter was pressed. Cancelled while waiting → CANCEL |
//! | CHECK 2 | p0 value out | a = 1 if the entered PIN is right, else 0; b = attempts left. Before Enter → BAD_STATE. After [`MAX_ATTEMPTS`] wrong PINs every check says 0 |
//!
//! The digits exist only in this TA's state (cleared after CHECK and on
//! close); nothing derived from them is written to any memref.

use std::time::Duration;

use crate::abi::Uuid;
use crate::error::{TeeError, TeeResult};
use crate::input::InputEvent;
use crate::ta::{ParamType, TaEnv, TaParam, TrustedApp, check_types};
use teeheap_platform::UseCase;

/// `74656568-6561-7002-8000-000000000002`.
pub const UUID: Uuid = Uuid::from_fields(0x7465_6568, 0x6561, 0x7002, [0x80, 0, 0, 0, 0, 0, 0, 0x02]);

/// Draw the PIN pad.
pub const CMD_SHOW_PIN_PAD: u32 = 0;
/// Take input events.
pub const CMD_INPUT: u32 = 1;
/// Check the entered PIN.
pub const CMD_CHECK: u32 = 2;

/// Wrong PINs allowed per session.
pub const MAX_ATTEMPTS: u64 = 3;
/// Longest PIN entry kept.
const MAX_DIGITS: usize = 16;
/// Framebuffer dimensions accepted.
const DIM: std::ops::RangeInclusive<u64> = 16..=8192;

const BACKGROUND: u32 = 0x0020_2020;
const KEY: u32 = 0x0040_4850;
const KEY_CLEAR: u32 = 0x0080_3030;
const KEY_ENTER: u32 = 0x0030_8030;
const GLYPH: u32 = 0x00f0_f0f0;

/// 3×5 glyphs: digits 0–9, then C (clear) and E (enter); bit 2 is the left column.
const FONT: [[u8; 5]; 12] = [
    [0b111, 0b101, 0b101, 0b101, 0b111],
    [0b010, 0b110, 0b010, 0b010, 0b111],
    [0b111, 0b001, 0b111, 0b100, 0b111],
    [0b111, 0b001, 0b111, 0b001, 0b111],
    [0b101, 0b101, 0b111, 0b001, 0b001],
    [0b111, 0b100, 0b111, 0b001, 0b111],
    [0b111, 0b100, 0b111, 0b101, 0b111],
    [0b111, 0b001, 0b001, 0b001, 0b001],
    [0b111, 0b101, 0b111, 0b101, 0b111],
    [0b111, 0b101, 0b111, 0b001, 0b111],
    [0b111, 0b100, 0b100, 0b100, 0b111],
    [0b111, 0b100, 0b111, 0b100, 0b111],
];

/// Key labels row by row (indices into [`FONT`]).
const LAYOUT: [[usize; 3]; 4] = [[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 0, 11]];

/// The PIN pad as an XRGB8888 image of `height` rows of `stride` bytes
/// (pixels past `width` in a row are 0): a 3×4 grid of keys 1–9, C, 0, E
/// with 3×5 block glyphs. Deterministic, so that a display CRC can be
/// checked against it. `stride` must be at least `width * 4`.
pub fn render_pin_pad(width: usize, height: usize, stride: usize) -> Vec<u8> {
    let mut fb = vec![0u8; stride * height];
    let (cw, ch) = (width / 3, height / 4);
    let margin = (cw.min(ch) / 10).max(1);
    let scale = ((cw - 2 * margin) / 5).min((ch - 2 * margin) / 7).max(1);
    for y in 0..height {
        for x in 0..width {
            let (col, row) = ((x / cw.max(1)).min(2), (y / ch.max(1)).min(3));
            let (kx, ky) = (x - col * cw, y - row * ch);
            let label = LAYOUT[row][col];
            let inside = kx >= margin && kx < cw - margin && ky >= margin && ky < ch - margin;
            let mut color = BACKGROUND;
            if inside {
                color = match label {
                    10 => KEY_CLEAR,
                    11 => KEY_ENTER,
                    _ => KEY,
                };
                let (gx0, gy0) = ((cw - 3 * scale) / 2, (ch - 5 * scale) / 2);
                if kx >= gx0 && ky >= gy0 && kx < gx0 + 3 * scale && ky < gy0 + 5 * scale {
                    let (gx, gy) = ((kx - gx0) / scale, (ky - gy0) / scale);
                    if FONT[label][gy] & (0b100 >> gx) != 0 {
                        color = GLYPH;
                    }
                }
            }
            fb[y * stride + x * 4..][..4].copy_from_slice(&color.to_le_bytes());
        }
    }
    fb
}

/// One trusted-UI session.
pub struct TrustedUi {
    pin: Vec<u8>,
    entered: Vec<u8>,
    complete: bool,
    failures: u64,
}

impl std::fmt::Debug for TrustedUi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustedUi")
            .field("entered", &self.entered.len())
            .field("complete", &self.complete)
            .field("failures", &self.failures)
            .finish()
    }
}

impl TrustedUi {
    /// A session checking against `pin` (ASCII digits).
    pub fn new(pin: &str) -> TrustedUi {
        TrustedUi {
            pin: pin.bytes().map(|b| b.wrapping_sub(b'0')).collect(),
            entered: Vec::new(),
            complete: false,
            failures: 0,
        }
    }

    fn clear(&mut self) {
        self.entered.fill(0);
        self.entered.clear();
        self.complete = false;
    }

    fn show(&mut self, env: &TaEnv<'_>, params: &mut [TaParam]) -> TeeResult {
        check_types(params, &[ParamType::MemrefOut, ParamType::ValueIn])?;
        let (w, h, stride) = params[1].values().ok_or(TeeError::BAD_PARAMETERS)?;
        if !DIM.contains(&w) || !DIM.contains(&h) || stride < w * 4 || stride > 4 * 8192 {
            return Err(TeeError::BAD_PARAMETERS);
        }
        let fb = params[0].memref_mut().ok_or(TeeError::BAD_PARAMETERS)?;
        if fb.kind().use_case() != Some(UseCase::TrustedUi) {
            return Err(TeeError::SECURITY);
        }
        if fb.size() < stride * h {
            fb.set_out_size(stride * h);
            return Err(TeeError::SHORT_BUFFER);
        }
        let image = render_pin_pad(w as usize, h as usize, stride as usize);
        env.memory.write(fb, 0, &image)?;
        fb.set_out_size(stride * h);
        self.clear();
        Ok(())
    }

    fn input(&mut self, env: &TaEnv<'_>, params: &mut [TaParam]) -> TeeResult {
        check_types(params, &[ParamType::ValueInOut])?;
        let (wait_ms, _, _) = params[0].values().ok_or(TeeError::BAD_PARAMETERS)?;
        let mut wait = Duration::from_millis(wait_ms.min(60_000));
        while !self.complete {
            let Some(event) = env.input.next(wait, env.cancel_flag()) else {
                if env.is_cancelled() {
                    return Err(TeeError::CANCEL);
                }
                break;
            };
            wait = Duration::ZERO;
            match event {
                InputEvent::Digit(d) if self.entered.len() < MAX_DIGITS => self.entered.push(d),
                InputEvent::Digit(_) => {}
                InputEvent::Backspace => {
                    self.entered.pop();
                }
                InputEvent::Enter => self.complete = true,
            }
        }
        params[0].set_values((self.entered.len() as u64, u64::from(self.complete), 0));
        Ok(())
    }

    fn check(&mut self, params: &mut [TaParam]) -> TeeResult {
        check_types(params, &[ParamType::ValueOut])?;
        if !self.complete {
            return Err(TeeError::BAD_STATE);
        }
        let same_len = self.entered.len() == self.pin.len();
        let diff = self.entered.iter().zip(self.pin.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b));
        let ok = same_len && diff == 0 && self.failures < MAX_ATTEMPTS;
        if !ok {
            self.failures = (self.failures + 1).min(MAX_ATTEMPTS);
        }
        self.clear();
        params[0].set_values((u64::from(ok), MAX_ATTEMPTS - self.failures, 0));
        Ok(())
    }
}

impl TrustedApp for TrustedUi {
    fn invoke(&mut self, env: &TaEnv<'_>, cmd: u32, params: &mut [TaParam]) -> TeeResult {
        match cmd {
            CMD_SHOW_PIN_PAD => self.show(env, params),
            CMD_INPUT => self.input(env, params),
            CMD_CHECK => self.check(params),
            _ => Err(TeeError::BAD_PARAMETERS),
        }
    }

    fn close_session(&mut self, _env: &TaEnv<'_>) {
        self.clear();
    }
}

impl Drop for TrustedUi {
    fn drop(&mut self) {
        self.clear();
        self.pin.fill(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_pad_is_deterministic_and_has_keys() {
        let a = render_pin_pad(120, 160, 512);
        assert_eq!(a, render_pin_pad(120, 160, 512));
        assert_eq!(a.len(), 512 * 160);
        let px = |x: usize, y: usize| u32::from_le_bytes(a[y * 512 + x * 4..][..4].try_into().unwrap());
        assert_eq!(px(0, 0), BACKGROUND);
        assert_eq!(px(6, 126), KEY_CLEAR);
        assert_eq!(px(86, 126), KEY_ENTER);
        assert!(a.chunks(4).any(|p| p == GLYPH.to_le_bytes()));
        // Padding past the width stays zero.
        assert!(a[480..512].iter().all(|&b| b == 0));
    }
}
