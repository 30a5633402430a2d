//! The video encoder's record key: held by the secure world and programmed
//! into the encoder's key slot, never handed to the normal world.
//!
//! On hardware the secure world writes the key into a key register of the
//! encoder that only secure masters can reach. Here a device offers a
//! [`KeySlot`]; [`crate::SecureWorld::program_encoder_key`] loads the key only
//! into a slot owned by [`Master::VideoEncoder`].

use teeheap_platform::Master;

use crate::error::{TeeError, TeeResult};

/// A hardware key register that the secure world can program.
pub trait KeySlot {
    /// The device the register belongs to.
    fn owner(&self) -> Master;

    /// Loads an AES-128 key into the register.
    fn load_key(&self, key: &[u8; 16]);
}

/// Loads `key` into `slot` if it belongs to the video encoder.
///
/// # Errors
/// ACCESS_DENIED for a slot of any other master.
pub(crate) fn program(slot: &dyn KeySlot, key: &[u8; 16]) -> TeeResult {
    if slot.owner() != Master::VideoEncoder {
        tracing::warn!(owner = %slot.owner(), "secure world: refused to program the record key");
        return Err(TeeError::ACCESS_DENIED);
    }
    slot.load_key(key);
    tracing::info!("secure world: record key programmed into the video encoder");
    Ok(())
}
