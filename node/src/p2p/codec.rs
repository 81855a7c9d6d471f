//! The request-response codec: one length-prefixed frame per message.
//!
//! A frame is a big-endian `u32` length followed by that many bytes of the message's canonical
//! encoding ([`WireMessage`]). A length over [`MAX_FRAME_LEN`], bytes that do not decode, or a list over
//! its limit are an [`io::ErrorKind::InvalidData`] error (which the swarm task counts against the
//! peer); a frame cut short is [`io::ErrorKind::UnexpectedEof`]. Memory grows only with bytes actually
//! received, never with a claimed length.
//!
//! On the inbound side, an invalid request is handed up as `Err(`[`BadFrame`]`)` instead of an I/O
//! error:
//! libp2p-request-response 0.29 drops inbound read errors without telling the behaviour, and the
//! swarm task must see the offence to count it against the peer (it answers [`Response::Error`]).

use super::messages::{MessageError, Request, Response, WireMessage};
use async_trait::async_trait;
use coalition_core::encoding::MAX_ENCODED_LEN;
use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::request_response;
use libp2p::StreamProtocol;
use std::io;

/// The request-response protocol name.
pub const RPC_PROTOCOL: StreamProtocol = StreamProtocol::new("/coalition/3/rpc");

/// Largest frame body accepted or sent: the canonical encoding's own limit, since nothing larger
/// could decode anyway.
pub const MAX_FRAME_LEN: usize = MAX_ENCODED_LEN;

/// A request as the codec carries it: what we send is always `Ok`; what we receive is `Err` when the
/// peer's frame is over the size limit or does not decode.
pub type RpcRequest = Result<Request, BadFrame>;

/// Why a peer's frame is not a message: the peer's fault.
#[derive(Debug, thiserror::Error)]
pub enum BadFrame {
    /// The announced length is over [`MAX_FRAME_LEN`].
    #[error("frame of {len} bytes exceeds the limit of {MAX_FRAME_LEN}")]
    TooLarge {
        /// The announced length.
        len: u32,
    },
    /// The body is not a valid message.
    #[error(transparent)]
    Message(#[from] MessageError),
    /// The stream itself carried invalid data (below our framing).
    #[error("invalid data on the stream")]
    InvalidStream,
}

/// Reads and writes [`Request`]s and [`Response`]s as frames.
#[derive(Debug, Clone, Copy, Default)]
pub struct RpcCodec;

/// An [`io::ErrorKind::InvalidData`] error carrying why, for [`RpcCodec::read_request`] to hand up.
fn invalid(bad: BadFrame) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, bad)
}

/// Reads one frame and decodes it.
pub async fn read_frame<T, M>(io: &mut T) -> io::Result<M>
where
    T: AsyncRead + Unpin + Send,
    M: WireMessage,
{
    let mut prefix = [0u8; 4];
    io.read_exact(&mut prefix).await?;
    let len = u32::from_be_bytes(prefix);
    let len_usize = usize::try_from(len).map_err(|_| invalid(BadFrame::TooLarge { len }))?;
    if len_usize > MAX_FRAME_LEN {
        return Err(invalid(BadFrame::TooLarge { len }));
    }
    // `take` + `read_to_end` allocates as bytes arrive, so a peer that announces a large frame and
    // then stalls costs us nothing.
    let mut body = Vec::new();
    io.take(u64::from(len)).read_to_end(&mut body).await?;
    if body.len() != len_usize {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("frame cut short: {} of {len} bytes", body.len()),
        ));
    }
    M::from_wire(&body).map_err(|e| invalid(e.into()))
}

/// Encodes a message and writes it as one frame.
pub async fn write_frame<T, M>(io: &mut T, msg: &M) -> io::Result<()>
where
    T: AsyncWrite + Unpin + Send,
    M: WireMessage + Sync,
{
    let body = msg
        .to_wire()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let len = u32::try_from(body.len())
        .ok()
        .filter(|&l| l as usize <= MAX_FRAME_LEN)
        .ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "message too large for a frame")
        })?;
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(&body).await?;
    io.flush().await
}

#[async_trait]
impl request_response::Codec for RpcCodec {
    type Protocol = StreamProtocol;
    type Request = RpcRequest;
    type Response = Response;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<RpcRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        match read_frame(io).await {
            Ok(req) => Ok(Ok(req)),
            // The peer's fault: report it upward (see the module docs).
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                match e.into_inner().map(|inner| inner.downcast::<BadFrame>()) {
                    Some(Ok(bad)) => Ok(Err(*bad)),
                    // Still the peer's bytes: it counts against the peer like any bad frame.
                    Some(Err(_)) | None => Ok(Err(BadFrame::InvalidStream)),
                }
            }
            // A stream cut short or reset: nobody to blame.
            Err(e) => Err(e),
        }
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Response>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: RpcRequest,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        match req {
            Ok(req) => write_frame(io, &req).await,
            Err(bad) => Err(io::Error::new(io::ErrorKind::InvalidInput, bad)),
        }
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Response,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &res).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::p2p::messages::MAX_RANGE_ENTRIES;
    use coalition_core::crypto::Keypair;
    use coalition_core::encoding;
    use coalition_core::hash::Hash;
    use coalition_core::record::{Entry, EpochClose, PartnerId, Record};
    use futures::executor::block_on;
    use futures::io::Cursor;
    use libp2p::request_response::Codec;
    use proptest::prelude::*;

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut out = (body.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(body);
        out
    }

    /// The frame layer alone, as a request.
    fn read_req(bytes: Vec<u8>) -> io::Result<Request> {
        block_on(read_frame(&mut Cursor::new(bytes)))
    }

    /// The codec's inbound request path.
    fn codec_req(bytes: Vec<u8>) -> io::Result<RpcRequest> {
        block_on(RpcCodec.read_request(&RPC_PROTOCOL, &mut Cursor::new(bytes)))
    }

    fn read_resp(bytes: Vec<u8>) -> io::Result<Response> {
        block_on(RpcCodec.read_response(&RPC_PROTOCOL, &mut Cursor::new(bytes)))
    }

    fn kind<T>(r: io::Result<T>) -> io::ErrorKind {
        match r {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.kind(),
        }
    }

    #[test]
    fn round_trip() {
        let req = Request::GetRange {
            partner: PartnerId(Keypair::generate().public()),
            from: 3,
            limit: 7,
        };
        let mut buf = Cursor::new(Vec::new());
        block_on(RpcCodec.write_request(&RPC_PROTOCOL, &mut buf, Ok(req.clone()))).unwrap();
        assert!(matches!(codec_req(buf.into_inner()).unwrap(), Ok(r) if r == req));

        let resp = Response::Heads(vec![]);
        let mut buf = Cursor::new(Vec::new());
        block_on(RpcCodec.write_response(&RPC_PROTOCOL, &mut buf, resp.clone())).unwrap();
        assert_eq!(read_resp(buf.into_inner()).unwrap(), resp);
    }

    #[test]
    fn garbage_body_is_invalid_data() {
        assert_eq!(
            kind(read_req(frame(&[1, 0xff, 0xff, 0xff, 0xff]))),
            io::ErrorKind::InvalidData
        );
        assert_eq!(
            kind(read_req(frame(&[9, 9, 9]))),
            io::ErrorKind::InvalidData
        );
        // An empty frame is not a message.
        assert_eq!(kind(read_req(frame(&[]))), io::ErrorKind::InvalidData);
        // A valid request followed by a stray byte inside the frame.
        let mut body = encoding::encode(&Request::GetHeads);
        body.push(0);
        assert_eq!(kind(read_req(frame(&body))), io::ErrorKind::InvalidData);
    }

    #[test]
    fn invalid_inbound_requests_are_handed_up_not_dropped() {
        // Undecodable and oversize frames become `Err(why)` for the swarm task to count...
        assert!(matches!(
            codec_req(frame(&[9, 9, 9])),
            Ok(Err(BadFrame::Message(_)))
        ));
        assert!(matches!(
            codec_req(u32::MAX.to_be_bytes().to_vec()),
            Ok(Err(BadFrame::TooLarge { len: u32::MAX }))
        ));
        // ...while a frame cut short stays an I/O error.
        assert_eq!(
            kind(codec_req(vec![0, 0, 0, 9, 1])),
            io::ErrorKind::UnexpectedEof
        );
        // And an `Err` is never written.
        let mut buf = Cursor::new(Vec::new());
        let never = Err(BadFrame::TooLarge { len: 7 });
        let r = block_on(RpcCodec.write_request(&RPC_PROTOCOL, &mut buf, never));
        assert_eq!(kind(r), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn oversize_length_is_refused_before_reading() {
        // Claims 4 GiB and sends nothing more: refused on the prefix alone.
        assert_eq!(
            kind(read_req(u32::MAX.to_be_bytes().to_vec())),
            io::ErrorKind::InvalidData
        );
        let just_over = (MAX_FRAME_LEN as u32 + 1).to_be_bytes().to_vec();
        assert_eq!(kind(read_resp(just_over)), io::ErrorKind::InvalidData);
    }

    #[test]
    fn truncated_frames_are_eof() {
        assert_eq!(kind(read_req(vec![])), io::ErrorKind::UnexpectedEof);
        assert_eq!(kind(read_req(vec![0, 0])), io::ErrorKind::UnexpectedEof);
        let mut bytes = frame(&encoding::encode(&Request::GetHeads));
        bytes.pop();
        assert_eq!(kind(read_req(bytes)), io::ErrorKind::UnexpectedEof);
        // A length far beyond the bytes sent (but under the limit) is also just a short frame.
        let mut bytes = 1000u32.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[1, 2, 3]);
        assert_eq!(kind(read_req(bytes)), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn over_long_range_is_invalid_data() {
        let key = Keypair::generate();
        let e = Entry {
            partner: PartnerId(key.public()),
            seq: 0,
            prev: Hash::ZERO,
            epoch: 0,
            time: 0,
            record: Record::EpochClose(EpochClose { epoch: 0 }),
        }
        .sign(&key);
        let body = encoding::encode(&Response::Range {
            entries: vec![e; MAX_RANGE_ENTRIES + 1],
        });
        assert_eq!(kind(read_resp(frame(&body))), io::ErrorKind::InvalidData);
    }

    #[test]
    fn writing_an_unsendable_message_fails_cleanly() {
        let resp = Response::Heads(vec![
            crate::p2p::messages::HeadAnnouncement {
                partner: PartnerId(Keypair::generate().public()),
                size: 0,
                last: Hash::ZERO,
            };
            crate::p2p::messages::MAX_HEADS + 1
        ]);
        let mut buf = Cursor::new(Vec::new());
        let r = block_on(RpcCodec.write_response(&RPC_PROTOCOL, &mut buf, resp));
        assert_eq!(kind(r), io::ErrorKind::InvalidInput);
        assert!(
            buf.into_inner().is_empty(),
            "nothing is written for a refused message"
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = codec_req(bytes.clone());
            let _ = read_resp(bytes.clone());
            // And the same bytes behind a correct length prefix.
            let _ = codec_req(frame(&bytes));
            let _ = read_resp(frame(&bytes));
        }
    }
}
