//! Property values and GP's conversions between them: every property reads
//! as a string; a string property reads as a boolean, an integer, a UUID,
//! an identity or a binary block when its text has that form (GP TEE
//! Internal Core API §4.4); anything else is `TEE_ERROR_BAD_FORMAT`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// A property's value as the TA (or the TEE) declared it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Value {
    /// `USER_TA_PROP_TYPE_BOOL`.
    Bool(bool),
    /// `USER_TA_PROP_TYPE_U32`.
    U32(u32),
    /// `USER_TA_PROP_TYPE_U64`.
    U64(u64),
    /// `USER_TA_PROP_TYPE_UUID`, RFC 4122 byte order.
    Uuid([u8; 16]),
    /// `USER_TA_PROP_TYPE_IDENTITY`: login method and UUID.
    Identity(u32, [u8; 16]),
    /// `USER_TA_PROP_TYPE_STRING`.
    Str(String),
    /// `USER_TA_PROP_TYPE_BINARY_BLOCK`: base64 text, as OP-TEE keeps it.
    Binary(String),
}

/// `8-4-4-4-12` lowercase hex.
pub(crate) fn uuid_string(u: &[u8; 16]) -> String {
    let h: String = u.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let groups: Vec<&str> = s.trim().split('-').collect();
    if groups.iter().map(|g| g.len()).collect::<Vec<_>>() != [8, 4, 4, 4, 12] {
        return None;
    }
    let hex: String = groups.concat();
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// A GP integer: decimal, `0x` hex or `0b` binary, then optionally `K`,
/// `M` or `G` (powers of 1024); `None` on overflow or anything else.
fn parse_int(s: &str) -> Option<u64> {
    let s = s.trim();
    let (digits, mult) = match s.as_bytes().last()? {
        b'K' | b'k' => (&s[..s.len() - 1], 1u64 << 10),
        b'M' | b'm' => (&s[..s.len() - 1], 1 << 20),
        b'G' | b'g' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    let v = if let Some(h) = digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()?
    } else if let Some(b) = digits.strip_prefix("0b").or_else(|| digits.strip_prefix("0B")) {
        u64::from_str_radix(b, 2).ok()?
    } else {
        digits.parse::<u64>().ok()?
    };
    v.checked_mul(mult)
}

impl Value {
    /// `TEE_GetPropertyAsString`'s text.
    pub(crate) fn as_string(&self) -> String {
        match self {
            Value::Bool(b) => b.to_string(),
            Value::U32(v) => v.to_string(),
            Value::U64(v) => v.to_string(),
            Value::Uuid(u) => uuid_string(u),
            Value::Identity(login, u) => format!("{login}:{}", uuid_string(u)),
            Value::Str(s) | Value::Binary(s) => s.clone(),
        }
    }

    /// `TEE_GetPropertyAsBool`: a boolean, or the text `true`/`false`.
    pub(crate) fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            Value::Str(s) if s.trim().eq_ignore_ascii_case("true") => Some(true),
            Value::Str(s) if s.trim().eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        }
    }

    /// `TEE_GetPropertyAsU64`: an integer of either width, or its text.
    pub(crate) fn as_u64(&self) -> Option<u64> {
        match self {
            Value::U32(v) => Some(u64::from(*v)),
            Value::U64(v) => Some(*v),
            Value::Str(s) => parse_int(s),
            _ => None,
        }
    }

    /// `TEE_GetPropertyAsU32`: as [`Self::as_u64`], within 32 bits.
    pub(crate) fn as_u32(&self) -> Option<u32> {
        match self {
            Value::U64(_) => None,
            v => v.as_u64().and_then(|x| u32::try_from(x).ok()),
        }
    }

    /// `TEE_GetPropertyAsUUID`.
    pub(crate) fn as_uuid(&self) -> Option<[u8; 16]> {
        match self {
            Value::Uuid(u) => Some(*u),
            Value::Str(s) => parse_uuid(s),
            _ => None,
        }
    }

    /// `TEE_GetPropertyAsIdentity`: an identity, or `LOGIN:UUID` text.
    pub(crate) fn as_identity(&self) -> Option<(u32, [u8; 16])> {
        match self {
            Value::Identity(l, u) => Some((*l, *u)),
            Value::Str(s) => {
                let (l, u) = s.split_once(':')?;
                Some((u32::try_from(parse_int(l)?).ok()?, parse_uuid(u)?))
            }
            _ => None,
        }
    }

    /// `TEE_GetPropertyAsBinaryBlock`: the bytes of base64 text.
    pub(crate) fn as_binary(&self) -> Option<Vec<u8>> {
        match self {
            Value::Binary(s) | Value::Str(s) => STANDARD.decode(s.trim()).ok(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const U: [u8; 16] =
        [0x8a, 0xa2, 0xf1, 0xe3, 0x4b, 0x2c, 0x4f, 0x0e, 0x9d, 0x51, 0x6c, 0x7e, 0x2b, 0x0a, 0x9c, 0x02];

    #[test]
    fn conversions() {
        let s = |t: &str| Value::Str(t.into());
        assert_eq!(Value::Uuid(U).as_string(), "8aa2f1e3-4b2c-4f0e-9d51-6c7e2b0a9c02");
        assert_eq!(s("8aa2f1e3-4b2c-4f0e-9d51-6c7e2b0a9c02").as_uuid(), Some(U));
        assert_eq!(s("8aa2f1e3-4b2c-4f0e-9d51-6c7e2b0a9c0").as_uuid(), None);
        assert_eq!(Value::Identity(4, U).as_string(), "4:8aa2f1e3-4b2c-4f0e-9d51-6c7e2b0a9c02");
        assert_eq!(s("0xF0000000:8aa2f1e3-4b2c-4f0e-9d51-6c7e2b0a9c02").as_identity(), Some((0xF000_0000, U)));
        assert_eq!(Value::Bool(true).as_string(), "true");
        assert_eq!(s("FALSE").as_bool(), Some(false));
        assert_eq!(s("yes").as_bool(), None);
        assert_eq!(Value::U32(7).as_bool(), None);
        for (t, v) in
            [("42", Some(42)), ("0x10", Some(16)), ("0b101", Some(5)), ("4K", Some(4096)), ("2M", Some(2 << 20))]
        {
            assert_eq!(s(t).as_u64(), v, "{t}");
        }
        assert_eq!(s("5G").as_u32(), None, "above 32 bits");
        assert_eq!(s("5G").as_u64(), Some(5 << 30));
        assert_eq!(s("18446744073709551615K").as_u64(), None, "overflow");
        assert_eq!(s("-1").as_u64(), None);
        assert_eq!(Value::U64(1).as_u32(), None);
        assert_eq!(Value::U32(9).as_u64(), Some(9));
        assert_eq!(Value::Binary("SGVsbG8gd29ybGQh".into()).as_binary(), Some(b"Hello world!".to_vec()));
        assert_eq!(Value::Binary("/w==".into()).as_binary(), Some(vec![0xff]));
        assert_eq!(Value::Binary("!!".into()).as_binary(), None);
        assert_eq!(Value::U32(1).as_binary(), None);
        assert_eq!(Value::Binary("/w==".into()).as_string(), "/w==");
    }
}
