//! The gRPC codec of every generated gryning service and client: prost's encoding, with one
//! difference when a message cannot be decoded (garbage, a truncated body, invalid UTF-8 in a
//! string field). tonic answers that with INTERNAL, which the contract keeps for the server's
//! own failures; here it is INVALID_ARGUMENT with `gryning-reason: invalid-field`, like every
//! other malformed request, and the message names the message type and the field prost was
//! reading, e.g. `the request is not a valid protobuf gryning.v1.OpenCaseRequest:
//! OpenCaseRequest.event_id: invalid string value: data is not UTF-8 encoded`.
//!
//! (A client decoding a reply it cannot read gets the same code; a gryning server always sends
//! replies prost encoded.)

use std::marker::PhantomData;

use prost::Message;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic::Status;
use tonic_prost::ProstEncoder;

/// The reason carried in `gryning-reason` by a request that cannot be decoded.
pub const UNDECODABLE_REASON: &str = "invalid-field";

/// prost encoding and decoding; a decode failure is INVALID_ARGUMENT (see the module).
#[derive(Debug, Clone)]
pub struct GrynCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for GrynCodec<T, U> {
    fn default() -> Self {
        GrynCodec(PhantomData)
    }
}

impl<T, U> Codec for GrynCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = GrynDecoder<U>;

    fn encoder(&mut self) -> ProstEncoder<T> {
        ProstEncoder::new(BufferSettings::default())
    }

    fn decoder(&mut self) -> GrynDecoder<U> {
        GrynDecoder(PhantomData)
    }
}

/// Decodes `U` with prost, naming `U` and the field in the status of a failure.
#[derive(Debug, Clone)]
pub struct GrynDecoder<U>(PhantomData<U>);

impl<U: Message + Default> Decoder for GrynDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buf)
            .map(Some)
            .map_err(|e| undecodable(message_name::<U>(), &e))
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}

/// `gryning.v1.Name` for a generated message type `gryning_proto::pb::Name`.
fn message_name<U>() -> String {
    let path = std::any::type_name::<U>();
    format!("gryning.v1.{}", path.rsplit("::").next().unwrap_or(path))
}

/// The status of a message that cannot be decoded.
pub fn undecodable(message: String, error: &prost::DecodeError) -> Status {
    let text = error.to_string();
    let detail = text
        .strip_prefix("failed to decode Protobuf message: ")
        .unwrap_or(&text);
    let mut status = Status::invalid_argument(format!(
        "the request is not a valid protobuf {message}: {detail}"
    ));
    status
        .metadata_mut()
        .insert("gryning-reason", UNDECODABLE_REASON.parse().expect("ASCII"));
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb;

    #[test]
    fn names_the_message_and_the_field() {
        // Field 1 (`event_id`) holding the bytes C3 28: not UTF-8.
        let err = pb::OpenCaseRequest::decode(&[0x0a, 0x02, 0xc3, 0x28][..]).unwrap_err();
        let status = undecodable(message_name::<pb::OpenCaseRequest>(), &err);
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(
            status.metadata().get("gryning-reason").unwrap(),
            UNDECODABLE_REASON
        );
        let text = status.message();
        assert!(
            text.starts_with("the request is not a valid protobuf gryning.v1.OpenCaseRequest: ")
                && text.contains("event_id")
                && text.contains("UTF-8"),
            "{text}"
        );
    }
}
