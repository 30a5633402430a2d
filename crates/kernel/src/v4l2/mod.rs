//! V4L2 devices of the model: the FWHT mem2mem codec pair (`vicodec`-like),
//! each open file an independent instance ([`codec::CodecFile`]) with its
//! own formats, buffer queues ([`queue::Queue`]), controls and events.
//!
//! The nodes are `/dev/video0` (encoder) and `/dev/video1` (decoder), as
//! vicodec registers them on a machine without other video devices. The
//! device itself (the FWHT transform through the firewall, secure mode) is
//! `teeheap_platform::devices::fwht_codec`.

pub mod codec;
pub mod prio;
pub mod queue;

pub use codec::{CodecFile, Role};

/// The V4L2 nodes, as paths relative to `/dev`, and what each opens.
pub const NODES: [(&str, Role); 2] = [("video0", Role::Encoder), ("video1", Role::Decoder)];

/// The V4L2 nodes with their sysfs identities (class `video4linux`).
pub fn device_nodes() -> Vec<crate::device_node::DeviceNode> {
    NODES.iter().map(|(path, _)| crate::device_node::DeviceNode::video(path)).collect()
}
