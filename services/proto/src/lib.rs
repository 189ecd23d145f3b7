//! The contacthub contract as Rust types: events on the log, read-model records and the gRPC
//! services, generated at build time from `proto/contacthub/v1`.
//!
//! Layout: `v1` holds everything generated; `FILE_DESCRIPTOR_SET` feeds server reflection;
//! `ts` converts between protobuf timestamps and chrono; `codec` is the gRPC codec of the
//! generated services.

pub mod v1 {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("contacthub.v1");
}

/// Encoded `FileDescriptorSet` of the whole contract, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/contacthub_descriptor.bin"));

pub use prost;

pub mod codec;
pub use prost_types::Timestamp;

/// Conversions between protobuf timestamps and chrono.
pub mod ts {
    use prost_types::Timestamp;

    /// Microseconds since the Unix epoch, or `None` when the timestamp is out of range.
    pub fn to_micros(ts: &Timestamp) -> Option<i64> {
        if !(0..1_000_000_000).contains(&ts.nanos) {
            return None;
        }
        ts.seconds
            .checked_mul(1_000_000)?
            .checked_add(i64::from(ts.nanos / 1000))
    }

    /// The timestamp for microseconds since the Unix epoch.
    pub fn from_micros(us: i64) -> Timestamp {
        Timestamp {
            seconds: us.div_euclid(1_000_000),
            nanos: (us.rem_euclid(1_000_000) * 1000) as i32,
        }
    }
}
