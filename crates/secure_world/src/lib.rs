//! teeheap's emulated TrustZone secure world.
//!
//! The normal world reaches it only through [`SecureWorld::smc`] (its
//! [`SecureMonitor`] implementation), with the message ABI of the
//! `teeheap-optee-abi` crate (modelled on OP-TEE's `optee_msg`; re-exported
//! as [`abi`]). It owns the protected memory it is lent (it alone programs
//! the firewall for it, and scrubs it before giving it back), checks every
//! memref against what was lent or carved out, and runs trusted
//! applications found by UUID: the SDP test TA, content decryption into
//! protected buffers, and a trusted UI.
//!
//! ```
//! use std::sync::Arc;
//! use teeheap_platform::{Master, PhysAddr, PhysRange, Platform, PlatformConfig, UseCase};
//! use teeheap_secure_world::abi::{Msg, Smc};
//! use teeheap_secure_world::{SecureConfig, SecureWorld};
//!
//! let platform = Arc::new(Platform::new(PlatformConfig::from_toml(
//!     r#"name = "doc"
//!        dram = { base = 0x4000_0000, size = "16 MiB" }"#).unwrap()).unwrap());
//! let world = SecureWorld::new(Arc::clone(&platform), SecureConfig::default()).unwrap();
//! let chunk = PhysRange::new(PhysAddr(0x4010_0000), 0x10_0000).unwrap();
//!
//! // Lend: the chunk is protected for trusted UI; the normal world is locked out.
//! let mut msg = Msg::lend_protmem(UseCase::TrustedUi, chunk, 7);
//! world.smc(Smc::Std(&mut msg));
//! assert!(msg.result().is_ok());
//! assert!(platform.read(Master::NsCpu, chunk.start(), &mut [0; 4]).is_err());
//!
//! // Reclaim: scrubbed, then open again.
//! let mut msg = Msg::reclaim_protmem(7);
//! world.smc(Smc::Std(&mut msg));
//! assert!(msg.result().is_ok());
//! let mut buf = [1; 4];
//! platform.read(Master::NsCpu, chunk.start(), &mut buf).unwrap();
//! assert_eq!(buf, [0; 4]);
//! assert_eq!(world.stats().bytes_scrubbed, 0x10_0000);
//! ```
#![forbid(unsafe_code)]

pub mod abi;
pub mod config;
pub mod encoder_key;
pub mod error;
pub mod input;
pub mod memref;
mod params;
pub mod protmem;
pub mod rpc;
mod session;
pub mod ta;
pub mod ta_load;
mod threads;
pub mod world;

pub use abi::{
    ABI_VERSION, Capabilities, Command, FastCall, Msg, MsgParam, ParamDir, SecureMonitor, Smc, SmcResult, Uuid,
};
pub use config::{DynamicProtmem, Key128, ProtmemKind, ProtmemMode, SecureConfig};
pub use encoder_key::KeySlot;
pub use error::{TeeError, TeeResult};
pub use input::{InputEvent, SecureInput};
pub use memref::{MemKind, TaMemory, TaMemref};
pub use protmem::{LentInfo, LentObject, ProtmemStats, ScrubEvent, ScrubObserver};
pub use ta::{ClientIdentity, ParamType, TaEnv, TaFactory, TaParam, TaRegistry, TrustedApp};
pub use world::{MAX_TA_PARAMS, SecureWorld, SecureWorldError};
