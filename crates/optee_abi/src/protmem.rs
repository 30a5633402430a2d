//! The attribute array GET_PROTMEM_CONFIG answers: who may access a use
//! case's protected memory, and how.

use teeheap_platform::Master;

/// One entry of the attribute array of [`Command::GetProtmemConfig`](crate::Command::GetProtmemConfig): a
/// master that may access the use case's memory, and how. Encoded as a
/// little-endian `u32`: low 16 bits = endpoint (the master's index in
/// [`Master::ALL`]), high 16 bits = rights (bit 0 read, bit 1 write), as on
/// FF-A.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProtmemAttr {
    /// The device (or CPU) granted access.
    pub master: Master,
    /// May read.
    pub read: bool,
    /// May write.
    pub write: bool,
}

impl ProtmemAttr {
    /// Size of one encoded attribute.
    pub const SIZE: usize = 4;

    /// The encoded value.
    pub fn encode(self) -> u32 {
        let endpoint = Master::ALL.iter().position(|m| *m == self.master).unwrap_or(0) as u32;
        let rights = u32::from(self.read) | (u32::from(self.write) << 1);
        endpoint | (rights << 16)
    }

    /// Decodes one value; `None` for an unknown endpoint.
    pub fn decode(v: u32) -> Option<ProtmemAttr> {
        let master = *Master::ALL.get((v & 0xffff) as usize)?;
        Some(ProtmemAttr { master, read: v & (1 << 16) != 0, write: v & (1 << 17) != 0 })
    }

    /// Decodes an attribute array as the secure world writes it.
    pub fn decode_all(bytes: &[u8]) -> Vec<ProtmemAttr> {
        bytes
            .chunks_exact(Self::SIZE)
            .filter_map(|c| ProtmemAttr::decode(u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attrs_round_trip() {
        for m in Master::ALL {
            for (read, write) in [(true, false), (false, true), (true, true)] {
                let a = ProtmemAttr { master: m, read, write };
                assert_eq!(ProtmemAttr::decode(a.encode()), Some(a));
            }
        }
        assert_eq!(ProtmemAttr::decode(0xffff), None);
    }
}
