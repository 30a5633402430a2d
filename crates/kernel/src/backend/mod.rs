//! TEE backend drivers: what registers TEE devices and binds the protected
//! heaps to pools.

pub mod builtin;
pub mod optee;
