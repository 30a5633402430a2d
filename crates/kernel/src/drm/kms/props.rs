//! The mode-object properties of the display (`drm_property`): one table,
//! ids fixed at boot, which object each is attached to, and what
//! `GETPROPERTY` reports about each.
//!
//! Properties flagged [`DRM_MODE_PROP_ATOMIC`] are shown only to files that
//! set `DRM_CLIENT_CAP_ATOMIC`, as `drm_mode_object_get_properties` does.

use teeheap_uapi::drm::*;

/// A property of the display, by what it is; its id is [`Prop::id`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Prop {
    /// Plane `type` (immutable enum: Overlay, Primary, Cursor).
    Type,
    /// Plane `FB_ID` (object: framebuffer).
    FbId,
    /// Plane `IN_FENCE_FD` (signed range -1..INT_MAX).
    InFenceFd,
    /// Plane and connector `CRTC_ID` (object: CRTC); one property for both.
    CrtcId,
    /// Plane `CRTC_X` (signed).
    CrtcX,
    /// Plane `CRTC_Y` (signed).
    CrtcY,
    /// Plane `CRTC_W`.
    CrtcW,
    /// Plane `CRTC_H`.
    CrtcH,
    /// Plane `SRC_X` (16.16).
    SrcX,
    /// Plane `SRC_Y` (16.16).
    SrcY,
    /// Plane `SRC_W` (16.16).
    SrcW,
    /// Plane `SRC_H` (16.16).
    SrcH,
    /// CRTC `ACTIVE` (bool).
    Active,
    /// CRTC `MODE_ID` (blob of a `drm_mode_modeinfo`).
    ModeId,
    /// CRTC `OUT_FENCE_PTR` (a user pointer to an `s32`).
    OutFencePtr,
    /// Connector `EDID` (immutable blob; none here).
    Edid,
    /// Connector `DPMS` (enum; legacy only).
    Dpms,
    /// Connector `link-status` (enum Good, Bad).
    LinkStatus,
    /// Connector `non-desktop` (immutable bool).
    NonDesktop,
    /// Connector `TILE` (immutable blob; none here).
    Tile,
}

/// Every property, in id order (ids start at 1).
pub const ALL: [Prop; 20] = [
    Prop::Type,
    Prop::FbId,
    Prop::InFenceFd,
    Prop::CrtcId,
    Prop::CrtcX,
    Prop::CrtcY,
    Prop::CrtcW,
    Prop::CrtcH,
    Prop::SrcX,
    Prop::SrcY,
    Prop::SrcW,
    Prop::SrcH,
    Prop::Active,
    Prop::ModeId,
    Prop::OutFencePtr,
    Prop::Edid,
    Prop::Dpms,
    Prop::LinkStatus,
    Prop::NonDesktop,
    Prop::Tile,
];

/// The properties attached to the primary plane, in attach order.
pub const PLANE: [Prop; 12] = [
    Prop::Type,
    Prop::FbId,
    Prop::InFenceFd,
    Prop::CrtcId,
    Prop::CrtcX,
    Prop::CrtcY,
    Prop::CrtcW,
    Prop::CrtcH,
    Prop::SrcX,
    Prop::SrcY,
    Prop::SrcW,
    Prop::SrcH,
];
/// The properties attached to the CRTC.
pub const CRTC: [Prop; 3] = [Prop::Active, Prop::ModeId, Prop::OutFencePtr];
/// The properties attached to the connector.
pub const CONNECTOR: [Prop; 6] = [Prop::Edid, Prop::Dpms, Prop::LinkStatus, Prop::NonDesktop, Prop::Tile, Prop::CrtcId];

/// `DRM_PLANE_TYPE_PRIMARY`.
pub const PLANE_TYPE_PRIMARY: u64 = 1;
/// `DRM_MODE_DPMS_ON`.
pub const DPMS_ON: u64 = 0;
/// `DRM_MODE_DPMS_OFF`.
pub const DPMS_OFF: u64 = 3;

/// What a property's type is, for `GETPROPERTY`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PropType {
    /// `DRM_MODE_PROP_RANGE` with `[min, max]`.
    Range(u64, u64),
    /// `DRM_MODE_PROP_SIGNED_RANGE` with `[min, max]`.
    SignedRange(i64, i64),
    /// `DRM_MODE_PROP_ENUM` with its `(value, name)` pairs.
    Enum(&'static [(u64, &'static str)]),
    /// `DRM_MODE_PROP_BLOB` (no values).
    Blob,
    /// `DRM_MODE_PROP_OBJECT` of an object type.
    Object(u32),
}

impl Prop {
    /// Its mode-object id.
    pub fn id(self) -> u32 {
        ALL.iter().position(|&p| p == self).expect("every property is in ALL") as u32 + 1
    }

    /// The property with mode-object id `id`.
    pub fn from_id(id: u32) -> Option<Prop> {
        ALL.get((id as usize).checked_sub(1)?).copied()
    }

    /// Its name as `GETPROPERTY` reports it.
    pub fn name(self) -> &'static str {
        match self {
            Prop::Type => "type",
            Prop::FbId => "FB_ID",
            Prop::InFenceFd => "IN_FENCE_FD",
            Prop::CrtcId => "CRTC_ID",
            Prop::CrtcX => "CRTC_X",
            Prop::CrtcY => "CRTC_Y",
            Prop::CrtcW => "CRTC_W",
            Prop::CrtcH => "CRTC_H",
            Prop::SrcX => "SRC_X",
            Prop::SrcY => "SRC_Y",
            Prop::SrcW => "SRC_W",
            Prop::SrcH => "SRC_H",
            Prop::Active => "ACTIVE",
            Prop::ModeId => "MODE_ID",
            Prop::OutFencePtr => "OUT_FENCE_PTR",
            Prop::Edid => "EDID",
            Prop::Dpms => "DPMS",
            Prop::LinkStatus => "link-status",
            Prop::NonDesktop => "non-desktop",
            Prop::Tile => "TILE",
        }
    }

    /// Its type.
    pub fn prop_type(self) -> PropType {
        const I32: (i64, i64) = (i32::MIN as i64, i32::MAX as i64);
        match self {
            Prop::Type => PropType::Enum(&[(0, "Overlay"), (1, "Primary"), (2, "Cursor")]),
            Prop::FbId => PropType::Object(DRM_MODE_OBJECT_FB),
            Prop::InFenceFd => PropType::SignedRange(-1, i32::MAX as i64),
            Prop::CrtcId => PropType::Object(DRM_MODE_OBJECT_CRTC),
            Prop::CrtcX | Prop::CrtcY => PropType::SignedRange(I32.0, I32.1),
            Prop::CrtcW | Prop::CrtcH => PropType::Range(0, i32::MAX as u64),
            Prop::SrcX | Prop::SrcY | Prop::SrcW | Prop::SrcH => PropType::Range(0, u32::MAX as u64),
            Prop::Active | Prop::NonDesktop => PropType::Range(0, 1),
            Prop::ModeId | Prop::Edid | Prop::Tile => PropType::Blob,
            Prop::OutFencePtr => PropType::Range(0, u64::MAX),
            Prop::Dpms => PropType::Enum(&[(0, "On"), (1, "Standby"), (2, "Suspend"), (3, "Off")]),
            Prop::LinkStatus => PropType::Enum(&[(0, "Good"), (1, "Bad")]),
        }
    }

    /// Its `flags` as `GETPROPERTY` reports them (type bits, `IMMUTABLE`,
    /// `ATOMIC`).
    pub fn flags(self) -> u32 {
        let ty = match self.prop_type() {
            PropType::Range(..) => DRM_MODE_PROP_RANGE,
            PropType::SignedRange(..) => DRM_MODE_PROP_SIGNED_RANGE,
            PropType::Enum(_) => DRM_MODE_PROP_ENUM,
            PropType::Blob => DRM_MODE_PROP_BLOB,
            PropType::Object(_) => DRM_MODE_PROP_OBJECT,
        };
        let immutable = matches!(self, Prop::Type | Prop::Edid | Prop::NonDesktop | Prop::Tile);
        let atomic =
            !matches!(self, Prop::Type | Prop::Edid | Prop::Dpms | Prop::LinkStatus | Prop::NonDesktop | Prop::Tile);
        ty | if immutable { DRM_MODE_PROP_IMMUTABLE } else { 0 } | if atomic { DRM_MODE_PROP_ATOMIC } else { 0 }
    }

    /// `drm_property_change_valid_get`: whether a client may set it to
    /// `value` — mutable, within its range or enum, and naming an object
    /// of its type that `exists(type, id)` (or 0).
    pub fn accepts(self, value: u64, exists: impl Fn(u32, u32) -> bool) -> bool {
        if self.flags() & DRM_MODE_PROP_IMMUTABLE != 0 {
            return false;
        }
        match self.prop_type() {
            PropType::Range(min, max) => (min..=max).contains(&value),
            PropType::SignedRange(min, max) => (min..=max).contains(&(value as i64)),
            PropType::Enum(e) => e.iter().any(|&(v, _)| v == value),
            // Object ids are 32 bits: the kernel's look-up truncates.
            PropType::Blob => value == 0 || exists(DRM_MODE_OBJECT_BLOB, value as u32),
            PropType::Object(ty) => value == 0 || exists(ty, value as u32),
        }
    }

    /// Whether only atomic clients see it.
    pub fn is_atomic(self) -> bool {
        self.flags() & DRM_MODE_PROP_ATOMIC != 0
    }

    /// The `values` array of `GETPROPERTY`: `[min, max]` of a range, the
    /// enum values, the object type; nothing for a blob.
    pub fn values(self) -> Vec<u64> {
        match self.prop_type() {
            PropType::Range(a, b) => vec![a, b],
            PropType::SignedRange(a, b) => vec![a as u64, b as u64],
            PropType::Enum(e) => e.iter().map(|&(v, _)| v).collect(),
            PropType::Blob => Vec::new(),
            PropType::Object(t) => vec![u64::from(t)],
        }
    }
}

/// A name as the fixed `char[32]` of the UAPI, NUL-padded.
pub fn name_field(name: &str) -> [u8; DRM_PROP_NAME_LEN] {
    let mut out = [0u8; DRM_PROP_NAME_LEN];
    let n = name.len().min(DRM_PROP_NAME_LEN - 1);
    out[..n].copy_from_slice(&name.as_bytes()[..n]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_flags() {
        for p in ALL {
            assert_eq!(Prop::from_id(p.id()), Some(p));
        }
        assert_eq!(Prop::from_id(0), None);
        assert_eq!(Prop::from_id(ALL.len() as u32 + 1), None);
        assert_eq!(Prop::FbId.flags(), DRM_MODE_PROP_OBJECT | DRM_MODE_PROP_ATOMIC);
        assert_eq!(Prop::Type.flags(), DRM_MODE_PROP_ENUM | DRM_MODE_PROP_IMMUTABLE);
        assert_eq!(Prop::InFenceFd.values(), [u64::MAX, i32::MAX as u64]);
        assert!(!Prop::Dpms.is_atomic());
        assert_eq!(&name_field("MODE_ID")[..8], b"MODE_ID\0");
    }
}
