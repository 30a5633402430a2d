//! The secure input path: touch or key events that reach the secure world
//! without passing through the normal world (on hardware, an input
//! controller switched to the secure side while a trusted UI is shown).
//!
//! Whoever plays the user (a test, the demo) pushes events with
//! [`SecureInput::press`] and friends; the trusted-UI TA takes them. The
//! queue lives inside the secure world; nothing of it is visible to the
//! normal world.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};
use teeheap_sync::Recover;

/// One event of the secure input device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InputEvent {
    /// A digit key, 0 to 9.
    Digit(u8),
    /// Delete the last digit.
    Backspace,
    /// Entry complete.
    Enter,
}

/// The secure input queue. See the module docs.
#[derive(Debug, Default)]
pub struct SecureInput {
    queue: Mutex<VecDeque<InputEvent>>,
    ready: Condvar,
}

impl SecureInput {
    /// Queues an event.
    pub fn push(&self, event: InputEvent) {
        self.queue.lock().recover().push_back(event);
        self.ready.notify_all();
    }

    /// Presses digit key `digit`; `false` (nothing queued) if it is not 0–9.
    pub fn press(&self, digit: u8) -> bool {
        if digit > 9 {
            return false;
        }
        self.push(InputEvent::Digit(digit));
        true
    }

    /// Types every digit of `digits` (other characters are ignored), then
    /// presses Enter.
    pub fn type_and_enter(&self, digits: &str) {
        for c in digits.chars() {
            if let Some(d) = c.to_digit(10) {
                self.push(InputEvent::Digit(d as u8));
            }
        }
        self.push(InputEvent::Enter);
    }

    /// Events queued and not yet taken.
    pub fn pending(&self) -> usize {
        self.queue.lock().recover().len()
    }

    /// Takes the next event, waiting up to `timeout` for one; gives up early
    /// (returning `None`) once `cancel` is set.
    pub fn next(&self, timeout: Duration, cancel: &AtomicBool) -> Option<InputEvent> {
        let deadline = Instant::now() + timeout;
        let mut q = self.queue.lock().recover();
        loop {
            if let Some(e) = q.pop_front() {
                return Some(e);
            }
            let now = Instant::now();
            if now >= deadline || cancel.load(Ordering::Relaxed) {
                return None;
            }
            let slice = (deadline - now).min(Duration::from_millis(10));
            q = self.ready.wait_timeout(q, slice).recover().0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_order_and_timeout() {
        let input = SecureInput::default();
        let no = AtomicBool::new(false);
        assert!(input.press(4) && !input.press(10));
        input.type_and_enter("7x1");
        assert_eq!(input.pending(), 4);
        let got: Vec<_> = std::iter::from_fn(|| input.next(Duration::ZERO, &no)).collect();
        assert_eq!(got, [InputEvent::Digit(4), InputEvent::Digit(7), InputEvent::Digit(1), InputEvent::Enter]);
        let cancelled = AtomicBool::new(true);
        let t = Instant::now();
        assert_eq!(input.next(Duration::from_secs(5), &cancelled), None);
        assert!(t.elapsed() < Duration::from_secs(1));
    }
}
