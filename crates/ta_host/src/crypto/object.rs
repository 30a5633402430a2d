//! Transient objects: a secret key of one GP object type (AES, HMAC-SHA256,
//! generic secret), empty until populated or generated. The key bytes live
//! in a [`Zeroizing`] buffer, wiped on reset and on free.

use zeroize::Zeroizing;

/// `TEE_TYPE_AES`.
pub(crate) const TYPE_AES: u32 = 0xA000_0010;
/// `TEE_TYPE_HMAC_SHA256`.
pub(crate) const TYPE_HMAC_SHA256: u32 = 0xA000_0004;
/// `TEE_TYPE_GENERIC_SECRET`.
pub(crate) const TYPE_GENERIC_SECRET: u32 = 0xA000_0000;
/// `TEE_ATTR_SECRET_VALUE`.
pub(crate) const ATTR_SECRET_VALUE: u32 = 0xC000_0000;
/// `TEE_ATTR_FLAG_VALUE`: the attribute is a value pair, not a buffer.
pub(crate) const ATTR_FLAG_VALUE: u32 = 1 << 29;
/// `TEE_USAGE_*` all set: what a transient object may do at first.
pub(crate) const USAGE_ALL: u32 = 0xFFFF_FFFF;
/// `TEE_HANDLE_FLAG_INITIALIZED`.
pub(crate) const HANDLE_FLAG_INITIALIZED: u32 = 0x0002_0000;

/// The object types teeheap keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyType {
    /// AES: 128, 192 or 256 bits.
    Aes,
    /// HMAC-SHA256: 192 to 1024 bits, whole bytes.
    HmacSha256,
    /// A generic secret: 8 to 4096 bits, whole bytes.
    GenericSecret,
}

impl KeyType {
    /// The type of `TEE_TYPE_*` value `t`, if teeheap keeps it.
    pub(crate) fn from_gp(t: u32) -> Option<KeyType> {
        match t {
            TYPE_AES => Some(KeyType::Aes),
            TYPE_HMAC_SHA256 => Some(KeyType::HmacSha256),
            TYPE_GENERIC_SECRET => Some(KeyType::GenericSecret),
            _ => None,
        }
    }

    /// The `TEE_TYPE_*` value.
    pub(crate) fn gp(self) -> u32 {
        match self {
            KeyType::Aes => TYPE_AES,
            KeyType::HmacSha256 => TYPE_HMAC_SHA256,
            KeyType::GenericSecret => TYPE_GENERIC_SECRET,
        }
    }

    /// Whether a key of `bits` bits is one of this type's sizes.
    pub(crate) fn size_ok(self, bits: u32) -> bool {
        match self {
            KeyType::Aes => matches!(bits, 128 | 192 | 256),
            KeyType::HmacSha256 => (192..=1024).contains(&bits) && bits % 8 == 0,
            KeyType::GenericSecret => (8..=4096).contains(&bits) && bits % 8 == 0,
        }
    }
}

/// Why a key was not stored.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The object holds a key already (GP: panic).
    Initialized,
    /// Not a size of the type, or above the object's maximum.
    BadSize,
}

/// A transient object.
///
/// # Invariants
/// `max_bits` is a size of `ktype`; a key, once there, is a size of
/// `ktype` no larger than `max_bits`.
pub(crate) struct Object {
    ktype: KeyType,
    max_bits: u32,
    key: Option<Zeroizing<Vec<u8>>>,
}

impl Object {
    /// An empty object; `None` when `max_bits` is not a size of the type.
    pub(crate) fn new(ktype: KeyType, max_bits: u32) -> Option<Object> {
        ktype.size_ok(max_bits).then_some(Object { ktype, max_bits, key: None })
    }

    /// The object's type.
    pub(crate) fn ktype(&self) -> KeyType {
        self.ktype
    }

    /// The largest key (bits) it takes.
    pub(crate) fn max_bits(&self) -> u32 {
        self.max_bits
    }

    /// The key, once populated or generated.
    pub(crate) fn key(&self) -> Option<&[u8]> {
        self.key.as_ref().map(|k| k.as_slice())
    }

    /// Stores `secret` (copied; the length is checked before the copy).
    pub(crate) fn populate(&mut self, secret: &[u8]) -> Result<(), Refused> {
        if self.key.is_some() {
            return Err(Refused::Initialized);
        }
        let bits = u32::try_from(secret.len()).ok().and_then(|n| n.checked_mul(8)).ok_or(Refused::BadSize)?;
        if !self.ktype.size_ok(bits) || bits > self.max_bits {
            return Err(Refused::BadSize);
        }
        self.key = Some(Zeroizing::new(secret.to_vec()));
        Ok(())
    }

    /// Stores a key of `bits` bits filled by `fill`.
    pub(crate) fn generate(&mut self, bits: u32, fill: impl FnOnce(&mut [u8])) -> Result<(), Refused> {
        if self.key.is_some() {
            return Err(Refused::Initialized);
        }
        if !self.ktype.size_ok(bits) || bits > self.max_bits {
            return Err(Refused::BadSize);
        }
        let mut k = Zeroizing::new(vec![0u8; bits as usize / 8]);
        fill(&mut k);
        self.key = Some(k);
        Ok(())
    }

    /// Forgets the key (wiped).
    pub(crate) fn reset(&mut self) {
        self.key = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_per_type() {
        for (t, bits, ok) in [
            (KeyType::Aes, 128, true),
            (KeyType::Aes, 192, true),
            (KeyType::Aes, 256, true),
            (KeyType::Aes, 64, false),
            (KeyType::Aes, 512, false),
            (KeyType::HmacSha256, 184, false),
            (KeyType::HmacSha256, 192, true),
            (KeyType::HmacSha256, 200, true),
            (KeyType::HmacSha256, 201, false),
            (KeyType::HmacSha256, 1032, false),
            (KeyType::GenericSecret, 8, true),
            (KeyType::GenericSecret, 4104, false),
        ] {
            assert_eq!(t.size_ok(bits), ok, "{t:?} {bits}");
            assert_eq!(Object::new(t, bits).is_some(), ok);
        }
    }

    #[test]
    fn populate_checks_size_and_state() {
        let mut o = Object::new(KeyType::Aes, 256).unwrap();
        assert_eq!(o.populate(&[0; 15]), Err(Refused::BadSize));
        assert_eq!(o.populate(&[0; 64]), Err(Refused::BadSize));
        assert!(o.key().is_none());
        o.populate(&[7; 24]).unwrap();
        assert_eq!(o.key(), Some(&[7u8; 24][..]));
        assert_eq!(o.populate(&[7; 16]), Err(Refused::Initialized));
        o.reset();
        assert!(o.key().is_none());
        let mut small = Object::new(KeyType::Aes, 128).unwrap();
        assert_eq!(small.populate(&[0; 32]), Err(Refused::BadSize));
        assert_eq!(small.generate(256, |_| ()), Err(Refused::BadSize));
        small.generate(128, |k| k.fill(9)).unwrap();
        assert_eq!(small.key(), Some(&[9u8; 16][..]));
    }
}
