//! The video encoder's key register as the secure world sees it: the glue
//! between [`teeheap_secure_world::KeySlot`] and the platform's
//! [`VideoEncoder`] (neither crate knows the other).

use teeheap_platform::Master;
use teeheap_platform::devices::VideoEncoder;
use teeheap_secure_world::KeySlot;

/// The key slot of a [`VideoEncoder`]. The key goes in and never comes back.
#[derive(Debug)]
pub struct EncoderKeySlot<'a>(pub &'a VideoEncoder);

impl KeySlot for EncoderKeySlot<'_> {
    fn owner(&self) -> Master {
        Master::VideoEncoder
    }

    fn load_key(&self, key: &[u8; 16]) {
        self.0.program_key(*key);
    }
}
