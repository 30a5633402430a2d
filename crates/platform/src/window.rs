//! Windows: a master maps a range of DRAM for the duration of a call
//! instead of copying it (a host-built TA's process maps its memrefs).
//!
//! Making a window is an access like [`Platform::read`] or
//! [`Platform::write`]: the firewall checks the master's rights on the
//! whole range once, for what the window allows, when it is made (and logs
//! a refusal). The window names where the range lies in the DRAM file
//! ([`Platform::window_file`]); whoever holds it maps exactly that range
//! and unmaps it when the call ends. A range that a program's file backs
//! ([`crate::Ram::back_with`]) has no window: its bytes go through
//! [`Platform::read`]/[`Platform::write`] (a bounce copy).

use std::os::fd::BorrowedFd;

use crate::{AccessError, AccessKind, Master, PAGE_SIZE, PhysRange, Platform};

/// Where a window's range lies in the DRAM file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DramWindow {
    /// Offset in [`Platform::window_file`] of the page holding the range's
    /// first byte (page aligned).
    pub file_offset: u64,
    /// Offset of the range's first byte in that page.
    pub page_offset: u64,
}

/// Why a window was not made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// The firewall refused the master (logged), or the range leaves DRAM.
    #[error(transparent)]
    Access(#[from] AccessError),
    /// A program's file backs (part of) the range: copy instead.
    #[error("a file other than DRAM backs part of {0}")]
    Backed(PhysRange),
}

impl Platform {
    /// `master` maps `range` (read-only, or read-write if `write`) for the
    /// duration of a call. See the module documentation.
    ///
    /// # Errors
    /// [`WindowError::Access`] if the firewall refuses a right the window
    /// needs (logged) or `range` leaves DRAM; [`WindowError::Backed`] where
    /// a program's file backs the range. Nothing is mapped then.
    pub fn window(&self, master: Master, range: PhysRange, write: bool) -> Result<DramWindow, WindowError> {
        self.firewall.check(master, range, AccessKind::Read).map_err(AccessError::Denied)?;
        if write {
            self.firewall.check(master, range, AccessKind::Write).map_err(AccessError::Denied)?;
        }
        let kind = if write { AccessKind::Write } else { AccessKind::Read };
        let unmapped = AccessError::Unmapped { master, kind, addr: range.start(), len: range.len() };
        let off = range.start().checked_offset_from(self.dram().start()).ok_or(unmapped.clone())?;
        if !self.dram().contains_range(&range) {
            return Err(unmapped.into());
        }
        if self.ram.is_backed(range) {
            return Err(WindowError::Backed(range));
        }
        let page_offset = off % PAGE_SIZE;
        Ok(DramWindow { file_offset: off - page_offset, page_offset })
    }

    /// The file every [`DramWindow`] lies in (the DRAM memfd), to hand to
    /// the process that maps the windows.
    pub fn window_file(&self) -> BorrowedFd<'_> {
        self.ram.memfd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PhysAddr, PlatformConfig};

    #[test]
    fn windows_are_checked_like_accesses() {
        let p = Platform::new(PlatformConfig::embedded_default()).unwrap();
        let carveout = p.carveouts()[0].range;
        let at = |off, len| PhysRange::new(carveout.start().checked_add(off).unwrap(), len).unwrap();
        let w = p.window(Master::SecureCpu, at(0x1010, 0x20), true).unwrap();
        let dram_off = carveout.start().checked_offset_from(p.dram().start()).unwrap();
        assert_eq!(w, DramWindow { file_offset: dram_off + 0x1000, page_offset: 0x10 });
        let before = p.firewall().violation_count();
        let e = p.window(Master::NsCpu, at(0, 0x1000), false).unwrap_err();
        assert!(matches!(e, WindowError::Access(AccessError::Denied(_))), "{e:?}");
        assert_eq!(p.firewall().violation_count(), before + 1, "the refusal is logged");
        let outside = PhysRange::new(PhysAddr(p.dram().end().raw()), 0x1000).unwrap();
        assert!(matches!(p.window(Master::SecureCpu, outside, false), Err(WindowError::Access(_))));
    }
}
