//! The identity a TEE client presents to a TA: the login method of
//! `TEE_IOC_OPEN_SESSION` and the client UUID the kernel computes for it
//! from the caller's credentials (Linux's `tee_session_calc_client_uuid`),
//! so that a TA can trust it: the caller's own `clnt_uuid` bytes never
//! reach the TA.
//!
//! | login | client UUID |
//! |---|---|
//! | `PUBLIC`, `REE_KERNEL` | nil |
//! | `USER` | UUIDv5 of `uid=<euid in hex>` in [`TEE_CLIENT_UUID_NS`] |
//! | `GROUP` | the gid in the first 4 bytes of `clnt_uuid`: `EPERM` unless the caller is in it, else UUIDv5 of `gid=<gid in hex>` |
//! | anything else (the `*_APPLICATION` methods too) | `EINVAL` |

use sha1::{Digest, Sha1};
use teeheap_uapi::tee::{
    TEE_IOCTL_LOGIN_GROUP, TEE_IOCTL_LOGIN_PUBLIC, TEE_IOCTL_LOGIN_REE_KERNEL, TEE_IOCTL_LOGIN_USER,
};

use crate::error::{Errno, Error, Result, einval};

/// The namespace of client UUIDs (`tee_client_uuid_ns` of Linux's
/// `tee_core.c`, `58ac9ca0-2086-4683-a1b8-ec4bc08e01b6`), shared with
/// OP-TEE's client libraries that compute the same UUIDs for ACLs.
pub const TEE_CLIENT_UUID_NS: [u8; 16] =
    [0x58, 0xac, 0x9c, 0xa0, 0x20, 0x86, 0x46, 0x83, 0xa1, 0xb8, 0xec, 0x4b, 0xc0, 0x8e, 0x01, 0xb6];

pub use crate::cred::Credentials;

/// A name-based (version 5, SHA-1) UUID of `name` in `namespace`, bytes in
/// network order (RFC 4122 section 4.3).
pub fn uuid_v5(namespace: &[u8; 16], name: &[u8]) -> [u8; 16] {
    let hash = Sha1::new().chain_update(namespace).chain_update(name).finalize();
    let mut uuid = [0u8; 16];
    uuid.copy_from_slice(&hash[..16]);
    uuid[6] = (uuid[6] & 0x0f) | 0x50;
    uuid[8] = (uuid[8] & 0x3f) | 0x80;
    uuid
}

/// The client UUID of a session opened with `login` by `caller`, given the
/// caller's `clnt_uuid` (`connection_data`). See the module documentation.
///
/// # Errors
/// `EPERM` for `GROUP` with a group the caller is not in (or that its user
/// namespace does not map); `EINVAL` for any other login method.
pub fn client_uuid(login: u32, connection_data: &[u8; 16], caller: &Credentials) -> Result<[u8; 16]> {
    let name = match login {
        TEE_IOCTL_LOGIN_PUBLIC | TEE_IOCTL_LOGIN_REE_KERNEL => return Ok([0; 16]),
        TEE_IOCTL_LOGIN_USER => format!("uid={:x}", caller.euid),
        TEE_IOCTL_LOGIN_GROUP => {
            // The kernel copies a gid_t out of the buffer: native order.
            let ns_gid =
                u32::from_ne_bytes([connection_data[0], connection_data[1], connection_data[2], connection_data[3]]);
            let gid = caller
                .map_gid(ns_gid)
                .filter(|&g| caller.in_group(g))
                .ok_or(Error::new(Errno::EPERM, "GROUP login for a group the caller is not in"))?;
            format!("gid={gid:x}")
        }
        _ => return Err(einval("login method not supported")),
    };
    Ok(uuid_v5(&TEE_CLIENT_UUID_NS, name.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use teeheap_uapi::tee::{
        TEE_IOCTL_LOGIN_APPLICATION, TEE_IOCTL_LOGIN_GROUP_APPLICATION, TEE_IOCTL_LOGIN_USER_APPLICATION,
    };

    fn hex(u: [u8; 16]) -> String {
        u.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn gid_bytes(gid: u32) -> [u8; 16] {
        let mut c = [0xee; 16];
        c[..4].copy_from_slice(&gid.to_ne_bytes());
        c
    }

    /// Expected values from an independent implementation (Python's
    /// `uuid.uuid5(UUID('58ac9ca0-...'), 'uid=3e8')`).
    #[test]
    fn uuids_as_linux_computes_them() {
        let me = Credentials { euid: 1000, egid: 100, groups: vec![27, 100], gid_map: None };
        let junk = [0x42; 16];
        assert_eq!(client_uuid(TEE_IOCTL_LOGIN_PUBLIC, &junk, &me).unwrap(), [0; 16]);
        assert_eq!(client_uuid(TEE_IOCTL_LOGIN_REE_KERNEL, &junk, &me).unwrap(), [0; 16]);
        assert_eq!(hex(client_uuid(TEE_IOCTL_LOGIN_USER, &junk, &me).unwrap()), "fc34275cd8dd5ba7968b504718363b87");
        let root = Credentials::new(0, 0);
        assert_eq!(hex(client_uuid(TEE_IOCTL_LOGIN_USER, &junk, &root).unwrap()), "ef0180a313f35d1cb7f5888c0e21059a");
        assert_eq!(
            hex(client_uuid(TEE_IOCTL_LOGIN_GROUP, &gid_bytes(100), &me).unwrap()),
            "d32f761eb364519bbe12ed54ba663b0a"
        );
        assert!(client_uuid(TEE_IOCTL_LOGIN_GROUP, &gid_bytes(27), &me).is_ok(), "a supplementary group");
        for gid in [5, 0, u32::MAX] {
            let e = client_uuid(TEE_IOCTL_LOGIN_GROUP, &gid_bytes(gid), &me).unwrap_err();
            assert_eq!(e.errno(), Errno::EPERM, "gid {gid}");
        }
        for login in [
            3,
            TEE_IOCTL_LOGIN_APPLICATION,
            TEE_IOCTL_LOGIN_USER_APPLICATION,
            TEE_IOCTL_LOGIN_GROUP_APPLICATION,
            7,
            0xc000_0000,
            u32::MAX,
        ] {
            assert_eq!(client_uuid(login, &junk, &me).unwrap_err().errno(), Errno::EINVAL, "login {login:#x}");
        }
    }

    #[test]
    fn proc_status_and_gid_map() {
        let status = "Name:\tx\nUid:\t1000\t1001\t1000\t1000\nGid:\t100\t101\t100\t100\nGroups:\t27 100 \n";
        let c = Credentials::parse(status, Some("         0          0 4294967295\n")).unwrap();
        assert_eq!(c, Credentials { euid: 1001, egid: 101, groups: vec![27, 100], gid_map: None });
        assert_eq!(c.map_gid(27), Some(27));
        assert_eq!(c.map_gid(u32::MAX), None, "(gid_t)-1 is never valid");
        // A run's user namespace maps only the caller's own gid.
        let inside = Credentials::parse(status, Some("100 100 1\n")).unwrap();
        assert_eq!((inside.map_gid(100), inside.map_gid(27)), (Some(100), None));
        let e = client_uuid(TEE_IOCTL_LOGIN_GROUP, &gid_bytes(27), &inside).unwrap_err();
        assert_eq!(e.errno(), Errno::EPERM, "an unmapped group is not the caller's");
        let shifted = Credentials::parse(status, Some("0 100000 65536\n")).unwrap();
        assert_eq!(shifted.map_gid(5), Some(100_005));
        assert_eq!(Credentials::parse("Uid:\t1\n", None), None, "no Gid line");
        assert_eq!(Credentials::parse("Uid:\tx x\nGid:\t1 1\n", None), None);
        let me = Credentials::of_process(std::process::id()).unwrap();
        assert!(me.in_group(me.egid));
    }
}
