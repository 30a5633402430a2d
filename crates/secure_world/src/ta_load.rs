//! A TA's bytes fetched through tee-supplicant, as OP-TEE's REE FS TA
//! store does (`rpc_load`): `LOAD_TA` with a NULL memref asks the size;
//! supplicant shared memory of that size is allocated (`SHM_ALLOC` of type
//! APPL, served by the supplicant with `TEE_IOC_SHM_ALLOC` on its own
//! context); a second `LOAD_TA` fills it; the secure world reads the image
//! from that memory as [`Master::SecureCpu`] (through the firewall) and
//! gives the memory back (`SHM_FREE`).
//!
//! The size is bounded (`[tee] max_ta_size`) before anything is allocated.
//! The image is a host-built `.ta` shared object; where OP-TEE verifies a
//! signed header (`TEE_ERROR_SECURITY` when it does not hold), teeheap
//! checks that the ELF headers and every loadable segment lie inside the
//! bytes received, which a truncated image fails. The checked image lives
//! in a sealed memfd ([`TaImage`]) from which the TA process loads it.

use std::os::fd::OwnedFd;

use teeheap_platform::{Master, PhysAddr, Platform};

use crate::abi::{MsgParam, ParamDir, Uuid};
use crate::error::TeeError;
use crate::rpc::{OPTEE_RPC_CMD_LOAD_TA, SupplicantRpc, load_ta_size_query};

/// A TA image received from the supplicant and checked.
///
/// # Invariants
/// `fd` is a memfd holding the image, sealed against any change
/// (`F_SEAL_WRITE | SHRINK | GROW | SEAL`).
#[derive(Debug)]
pub struct TaImage {
    fd: OwnedFd,
}

impl TaImage {
    /// The sealed memfd.
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }
}

/// Fetches TA `uuid` through `rpc` (see the module docs). Errors, as the
/// open session reports them (origin TEE):
/// - no supplicant serving: ITEM_NOT_FOUND (teeheap does not wait for one);
/// - the supplicant's own error in either round (ITEM_NOT_FOUND when it
///   has no such TA, SHORT_BUFFER, COMMUNICATION when it went away);
/// - a size of 0 or above `max`, or shared memory it did not give:
///   OUT_OF_MEMORY (nothing is allocated for a size above `max`);
/// - an image that is not a whole ELF shared object, or a second answer
///   larger than the memory: SECURITY.
pub fn fetch(rpc: &dyn SupplicantRpc, platform: &Platform, uuid: &Uuid, max: u64) -> Result<TaImage, TeeError> {
    let mut params = load_ta_size_query(uuid);
    let size = match rpc.call(OPTEE_RPC_CMD_LOAD_TA, &mut params) {
        None => return Err(TeeError::ITEM_NOT_FOUND),
        Some(0) => params[1].memref_size().unwrap_or(0),
        Some(code) => return Err(TeeError::from_code(code).unwrap_or(TeeError::ITEM_NOT_FOUND)),
    };
    if size == 0 || size > max {
        tracing::warn!(%uuid, size, max, "secure world: TA image size refused");
        return Err(TeeError::OUT_OF_MEMORY);
    }
    let payload = rpc.alloc_payload(size).ok_or(TeeError::OUT_OF_MEMORY)?;
    let got = second_round(rpc, platform, uuid, payload.phys, size);
    rpc.free_payload(payload);
    let bytes = got?;
    check_elf(&bytes).map_err(|why| {
        tracing::warn!(%uuid, why, "secure world: TA image from the supplicant refused");
        TeeError::SECURITY
    })?;
    seal(&bytes).map(|fd| TaImage { fd })
}

/// The second `LOAD_TA`: the image into the `size` bytes at `phys`, read
/// back as the secure CPU.
fn second_round(
    rpc: &dyn SupplicantRpc,
    platform: &Platform,
    uuid: &Uuid,
    phys: PhysAddr,
    size: u64,
) -> Result<Vec<u8>, TeeError> {
    let mut params = load_ta_size_query(uuid);
    params[1] = MsgParam::Tmem { dir: ParamDir::Out, phys, size };
    let got = match rpc.call(OPTEE_RPC_CMD_LOAD_TA, &mut params) {
        None => return Err(TeeError::ITEM_NOT_FOUND),
        Some(0) => params[1].memref_size().unwrap_or(0),
        Some(code) => return Err(TeeError::from_code(code).unwrap_or(TeeError::ITEM_NOT_FOUND)),
    };
    if got > size {
        return Err(TeeError::SECURITY);
    }
    let mut bytes = vec![0u8; got as usize];
    platform.read(Master::SecureCpu, phys, &mut bytes).map_err(|_| TeeError::SECURITY)?;
    Ok(bytes)
}

/// Whether `b` is a whole ELF shared object of this machine's class and
/// byte order: headers, program headers, section headers and every
/// loadable segment's file bytes inside `b`.
pub fn check_elf(b: &[u8]) -> Result<(), &'static str> {
    let u16_at = |i: usize| b.get(i..i + 2).map(|s| u16::from_le_bytes([s[0], s[1]]) as u64);
    let u32_at = |i: usize| b.get(i..i + 4).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]));
    let u64_at = |i: usize| b.get(i..i + 8).and_then(|s| s.try_into().ok()).map(u64::from_le_bytes);
    if b.len() < 64 || b[..4] != *b"\x7fELF" {
        return Err("not an ELF file");
    }
    // ELFCLASS64, ELFDATA2LSB, ET_DYN.
    if b[4] != 2 || b[5] != 1 || u16_at(16) != Some(3) {
        return Err("not a 64-bit little-endian shared object");
    }
    let len = b.len() as u64;
    let table_fits = |off: Option<u64>, entsize: Option<u64>, num: Option<u64>| -> Option<bool> {
        Some(off?.checked_add(entsize?.checked_mul(num?)?)? <= len)
    };
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    if table_fits(phoff, phentsize, phnum) != Some(true) || phentsize < Some(56) {
        return Err("program headers past the end");
    }
    if table_fits(u64_at(0x28), u16_at(0x3a), u16_at(0x3c)) != Some(true) {
        return Err("section headers past the end");
    }
    let (phoff, phentsize, phnum) = (phoff.unwrap_or(0), phentsize.unwrap_or(0), phnum.unwrap_or(0));
    for i in 0..phnum {
        let at = (phoff + i * phentsize) as usize;
        // PT_LOAD: p_offset + p_filesz inside the file.
        if u32_at(at) == Some(1) {
            let end = u64_at(at + 8).zip(u64_at(at + 0x20)).and_then(|(o, s)| o.checked_add(s));
            if end.is_none_or(|e| e > len) {
                return Err("a loadable segment past the end");
            }
        }
    }
    Ok(())
}

/// `bytes` in a memfd sealed against any change.
fn seal(bytes: &[u8]) -> Result<OwnedFd, TeeError> {
    use rustix::fs::{MemfdFlags, SealFlags};
    let oom = |_| TeeError::OUT_OF_MEMORY;
    let fd =
        rustix::fs::memfd_create("teeheap-ta-image", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING).map_err(oom)?;
    let mut done = 0;
    while done < bytes.len() {
        done += rustix::io::pwrite(&fd, &bytes[done..], done as u64).map_err(oom)?;
    }
    let seals = SealFlags::WRITE | SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL;
    rustix::fs::fcntl_add_seals(&fd, seals).map_err(oom)?;
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This test binary itself is a whole ELF file (an executable, not a
    /// shared object unless PIE): its headers pass or fail by type only.
    fn own_image() -> Vec<u8> {
        std::fs::read("/proc/self/exe").unwrap()
    }

    #[test]
    fn truncated_and_foreign_images_are_refused() {
        let mut img = own_image();
        if u16::from_le_bytes([img[16], img[17]]) != 3 {
            img[16] = 3; // as ET_DYN, to check the rest
        }
        assert_eq!(check_elf(&img), Ok(()));
        assert!(check_elf(&img[..img.len() / 2]).is_err(), "half of it");
        assert!(check_elf(&img[..img.len() - 1]).is_err(), "all but its last byte");
        assert_eq!(check_elf(&img[..63]), Err("not an ELF file"));
        assert_eq!(check_elf(b"#!/bin/sh\n"), Err("not an ELF file"));
        let mut exe = img.clone();
        exe[16] = 2; // ET_EXEC
        assert!(check_elf(&exe).is_err());
        let mut huge = img.clone();
        huge[0x20..0x28].copy_from_slice(&(img.len() as u64 - 8).to_le_bytes()); // e_phoff near the end
        assert_eq!(check_elf(&huge), Err("program headers past the end"));
    }

    #[test]
    fn a_sealed_image_cannot_change() {
        let fd = seal(b"\x7fELF bytes").unwrap();
        assert!(rustix::io::pwrite(&fd, b"x", 0).is_err());
        assert!(rustix::fs::ftruncate(&fd, 1).is_err());
        let mut back = [0u8; 10];
        assert_eq!(rustix::io::pread(&fd, &mut back, 0).unwrap(), 10);
        assert_eq!(&back, b"\x7fELF bytes");
    }
}
