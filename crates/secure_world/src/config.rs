//! What the secure world is provisioned with: per use case, where protected
//! memory comes from; the content keys; the trusted-UI PIN; the record key.
//!
//! A [`SecureConfig`] is only data; [`crate::SecureWorld::new`] checks it
//! against the platform (a static use case needs a carveout) once.

use std::collections::BTreeMap;
use std::fmt;

use teeheap_platform::{Len, PAGE_SIZE, PhysRange, UseCase};

/// Key id of the content key in [`SecureConfig::default`].
pub const DEFAULT_CONTENT_KEY_ID: u32 = 1;
/// The content key in [`SecureConfig::default`] (a test key, not a secret).
pub const DEFAULT_CONTENT_KEY: [u8; 16] = *b"teeheap-demo-key";
/// The trusted-UI PIN in [`SecureConfig::default`].
pub const DEFAULT_PIN: &str = "4711";
/// The video-encoder record key in [`SecureConfig::default`] (a test key).
pub const DEFAULT_ENCODER_KEY: [u8; 16] = *b"teeheap-rec-key!";
/// Chunk size of a dynamic use case in [`DynamicProtmem::default`].
pub const DEFAULT_CHUNK: u64 = 4 << 20;

/// Granularity of memory lent for a dynamic use case, as reported by
/// `GET_PROTMEM_CONFIG`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DynamicProtmem {
    /// The smallest range the normal world should lend (a chunk).
    pub min_size: Len,
    /// Required alignment of the start and size of lent ranges (a power of
    /// two, at least a page).
    pub alignment: u64,
}

impl Default for DynamicProtmem {
    fn default() -> Self {
        DynamicProtmem { min_size: Len::page_align(DEFAULT_CHUNK).expect("non-zero"), alignment: PAGE_SIZE }
    }
}

/// Where a use case's protected memory comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ProtmemMode {
    /// Static if the platform has a carveout for the use case, else dynamic
    /// with [`DynamicProtmem::default`].
    #[default]
    Auto,
    /// The platform's carveout for the use case (required).
    Static,
    /// Lent by the normal world at run time.
    Dynamic(DynamicProtmem),
    /// No protected memory for this use case.
    Disabled,
}

/// A [`ProtmemMode`] resolved against the platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProtmemKind {
    /// A static carveout.
    Static(PhysRange),
    /// Lent memory.
    Dynamic(DynamicProtmem),
    /// None.
    Disabled,
}

/// A 16-byte AES-128 key that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Key128(pub [u8; 16]);

impl fmt::Debug for Key128 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key128(<redacted>)")
    }
}

/// The secure world's provisioning. `Default` gives the test values above.
#[derive(Clone)]
pub struct SecureConfig {
    /// Per use case; a missing entry means [`ProtmemMode::Auto`].
    pub protmem: BTreeMap<UseCase, ProtmemMode>,
    /// Content keys of the decryption TA, by key id.
    pub content_keys: BTreeMap<u32, Key128>,
    /// The PIN the trusted-UI TA checks against (4 to 12 ASCII digits).
    pub trusted_ui_pin: String,
    /// The key the video encoder encrypts recordings with.
    pub encoder_key: Key128,
    /// Directories searched for host-built TAs (`<uuid>.ta`), in order.
    pub ta_dirs: Vec<std::path::PathBuf>,
    /// The program that runs a host-built TA (`PROGRAM __ta-runner
    /// FILE`); `None`: this program (the `teeheap` binary).
    pub ta_runner: Option<std::path::PathBuf>,
    /// A host-built TA's call still running after this is ended (the
    /// process is killed: TARGET_DEAD); `None`: never.
    pub ta_call_timeout: Option<std::time::Duration>,
    /// Secure threads (OP-TEE's `CFG_NUM_THREADS`, default 2): std calls
    /// running at once; one more is answered [`crate::SmcResult::ThreadLimit`].
    pub threads: u32,
    /// Largest TA image fetched through tee-supplicant (`LOAD_TA`).
    pub max_ta_size: u64,
}

/// Most secure threads a configuration may ask for.
pub const MAX_THREADS: u32 = 256;

impl Default for SecureConfig {
    fn default() -> Self {
        SecureConfig {
            protmem: BTreeMap::new(),
            content_keys: BTreeMap::from([(DEFAULT_CONTENT_KEY_ID, Key128(DEFAULT_CONTENT_KEY))]),
            trusted_ui_pin: DEFAULT_PIN.to_owned(),
            encoder_key: Key128(DEFAULT_ENCODER_KEY),
            ta_dirs: Vec::new(),
            ta_runner: None,
            ta_call_timeout: None,
            threads: 2,
            max_ta_size: 16 << 20,
        }
    }
}

impl fmt::Debug for SecureConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecureConfig")
            .field("protmem", &self.protmem)
            .field("content_keys", &self.content_keys.keys().collect::<Vec<_>>())
            .field("trusted_ui_pin", &"<redacted>")
            .field("encoder_key", &self.encoder_key)
            .field("threads", &self.threads)
            .finish()
    }
}

impl SecureConfig {
    /// The mode configured for `use_case`.
    pub fn mode(&self, use_case: UseCase) -> ProtmemMode {
        self.protmem.get(&use_case).copied().unwrap_or_default()
    }

    /// The provisioning a platform description asks for: every use case
    /// with a carveout is static, the others are lent in chunks of
    /// `tee.dynamic_chunk`; the trusted-UI PIN from `tee.trusted_ui_pin`;
    /// the built-in test keys.
    pub fn for_platform(platform: &teeheap_platform::Platform) -> SecureConfig {
        let tee = &platform.config().tee;
        let chunk = Len::page_align(tee.dynamic_chunk.0).unwrap_or_else(|| DynamicProtmem::default().min_size);
        let protmem = UseCase::ALL
            .into_iter()
            .map(|uc| {
                let mode = if platform.carveout(uc).is_some() {
                    ProtmemMode::Static
                } else {
                    ProtmemMode::Dynamic(DynamicProtmem { min_size: chunk, alignment: PAGE_SIZE })
                };
                (uc, mode)
            })
            .collect();
        SecureConfig {
            protmem,
            trusted_ui_pin: tee.trusted_ui_pin.clone(),
            ta_dirs: tee.ta_dirs.clone(),
            ta_call_timeout: (tee.ta_call_timeout_ms > 0)
                .then(|| std::time::Duration::from_millis(tee.ta_call_timeout_ms)),
            threads: tee.threads,
            max_ta_size: tee.max_ta_size.0,
            ..SecureConfig::default()
        }
    }

    /// `self` with `use_case` set to `mode`.
    pub fn with_mode(mut self, use_case: UseCase, mode: ProtmemMode) -> SecureConfig {
        self.protmem.insert(use_case, mode);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let text = format!("{:?}", SecureConfig::default());
        assert!(!text.contains(DEFAULT_PIN));
        assert!(!text.contains("demo-key") && !text.contains("rec-key"));
        assert_eq!(SecureConfig::default().mode(UseCase::TrustedUi), ProtmemMode::Auto);
    }
}
