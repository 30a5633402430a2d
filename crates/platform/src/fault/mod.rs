//! Fault injection: the points where a layer asks the run's injector
//! whether to make an event happen on purpose, and the spec language that
//! says which ([`spec`], docs/fault-injection.md).
//!
//! Each layer asks at the place where the real event happens: the
//! dma-heap core before an allocation reaches its heap, the secure world
//! when a session is opened or a TA invoked, the platform before the
//! firewall decides on a bus access. Every platform carries one [`Faults`]
//! slot, empty until a daemon installs its [`Injector`] (once); an empty
//! slot answers `None` at the cost of one atomic load.

pub mod spec;

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::master::Master;

/// Where a layer asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Point<'a> {
    /// A `DMA_HEAP_IOCTL_ALLOC` on `heap`, validated, before the heap
    /// allocates. No lock of the kernel model is held.
    Alloc {
        /// The heap's name.
        heap: &'a str,
    },
    /// An OPEN_SESSION of TA `uuid` in the secure world.
    TaOpen {
        /// The TA.
        uuid: &'a [u8; 16],
    },
    /// An invocation of command `cmd` of TA `uuid` (the session's lock is
    /// held: a delay stalls only this session).
    TaInvoke {
        /// The TA.
        uuid: &'a [u8; 16],
        /// The command id.
        cmd: u32,
    },
    /// A read, write or copy by `master`, before the firewall decides.
    Access {
        /// Who accesses memory.
        master: Master,
    },
}

/// What the injector tells the layer to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Fail as the real event fails: `ENOMEM` for an allocation, a
    /// firewall refusal for an access.
    Fail,
    /// Go on after this long.
    Delay(Duration),
    /// The TA panics (`TEEC_ERROR_TARGET_DEAD`; its session is dead).
    Panic,
    /// The TA is busy (`TEEC_ERROR_BUSY`).
    Busy,
}

/// Decides at each point. Implemented by whoever owns the run (the
/// daemon); it must not call back into the layer that asks.
pub trait Injector: Send + Sync + fmt::Debug {
    /// The fault to inject at `point`, if any.
    fn at(&self, point: &Point<'_>) -> Option<Fault>;
}

/// A platform's injector slot. See the module documentation.
#[derive(Default)]
pub struct Faults {
    injector: OnceLock<Arc<dyn Injector>>,
}

impl fmt::Debug for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Faults").field("installed", &self.injector.get().is_some()).finish()
    }
}

impl Faults {
    /// Installs `injector`; `false` (and nothing changes) if one is
    /// installed already.
    pub fn install(&self, injector: Arc<dyn Injector>) -> bool {
        self.injector.set(injector).is_ok()
    }

    /// The fault to inject at `point`: `None` without an injector.
    pub fn at(&self, point: &Point<'_>) -> Option<Fault> {
        self.injector.get()?.at(point)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct FailDisplay;

    impl Injector for FailDisplay {
        fn at(&self, point: &Point<'_>) -> Option<Fault> {
            matches!(point, Point::Access { master: Master::Display }).then_some(Fault::Fail)
        }
    }

    #[test]
    fn an_empty_slot_injects_nothing_and_installs_once() {
        let f = Faults::default();
        assert_eq!(f.at(&Point::Access { master: Master::Display }), None);
        assert!(f.install(Arc::new(FailDisplay)));
        assert!(!f.install(Arc::new(FailDisplay)));
        assert_eq!(f.at(&Point::Access { master: Master::Display }), Some(Fault::Fail));
        assert_eq!(f.at(&Point::Access { master: Master::Camera }), None);
    }
}
