//! A TA's identity as the message ABI carries it.

use std::fmt;

/// A TA's identity (RFC 4122 UUID, bytes in canonical big-endian order as
/// in `tee_ioctl_open_session_arg::uuid`).
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    /// The UUID `time_low-time_mid-time_hi-clock_seq+node` from its fields
    /// (`clock_and_node` = the last 8 bytes).
    pub const fn from_fields(time_low: u32, time_mid: u16, time_hi: u16, clock_and_node: [u8; 8]) -> Uuid {
        let l = time_low.to_be_bytes();
        let m = time_mid.to_be_bytes();
        let h = time_hi.to_be_bytes();
        let n = clock_and_node;
        Uuid([l[0], l[1], l[2], l[3], m[0], m[1], h[0], h[1], n[0], n[1], n[2], n[3], n[4], n[5], n[6], n[7]])
    }

    /// The 16 bytes.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uuid({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_format() {
        let u = Uuid::from_fields(0x1234_5678, 0x5b69, 0x11e4, [0x9d, 0xbb, 0x10, 0x1f, 0x74, 0xf0, 0x00, 0x99]);
        assert_eq!(u.to_string(), "12345678-5b69-11e4-9dbb-101f74f00099");
        assert_eq!(u.as_bytes()[0], 0x12);
    }
}
