//! The decoder with a [`Decompressor`] behind its `Inflate` trait: compressed
//! messages in streaming mode.

use bytes::BytesMut;

use crate::deflate::Decompressor;
use crate::protocol::{
    DecodeError, Event, FrameEncoder, Limits, MessageDecoder, OpCode, ProtocolError, Role, INFLATE_PIECE,
    INFLATE_TARGET, RSV1,
};

/// A frame as a server sends it (unmasked), with `rsv` bits.
fn unmasked(fin: bool, rsv: u8, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    FrameEncoder::new(Role::Server).encode(&mut out, fin, rsv, opcode, payload);
    out.to_vec()
}

/// `payload` compressed as one message (RFC 7692 §7.2.1: the sync
/// flush's last four bytes left off).
fn compress(payload: &[u8]) -> Vec<u8> {
    let mut c = flate2::Compress::new(flate2::Compression::fast(), false);
    let mut out = Vec::with_capacity(payload.len() / 2 + 1024);
    c.compress_vec(payload, &mut out, flate2::FlushCompress::Sync).unwrap();
    assert_eq!(c.total_in(), payload.len() as u64, "output room");
    out.truncate(out.len() - 4);
    out
}

fn inflating_decoder() -> MessageDecoder {
    let mut dec = MessageDecoder::new(Role::Client, Limits::default().max_message_size(1024));
    dec.set_inflater(Box::new(Decompressor::new(15, false)));
    dec
}

/// A message inflating to 8 MiB streams out in bounded pieces, past a
/// message limit of 1 KiB: nothing is gathered.
#[test]
fn compressed_messages_stream_in_bounded_pieces() {
    let payload: Vec<u8> = (0..8u32 << 20).map(|i| b"silverback "[(i % 11) as usize]).collect();
    let compressed = compress(&payload);
    let half = compressed.len() / 2;
    let wire = [
        unmasked(false, RSV1, OpCode::Text, &compressed[..half]),
        unmasked(true, 0, OpCode::Continuation, &compressed[half..]),
    ]
    .concat();
    let mut dec = inflating_decoder();
    let mut buf = BytesMut::from(&wire[..]);
    assert_eq!(dec.decode_chunk(&mut buf).unwrap(), Some(Event::Start { text: true }));
    let mut total = 0;
    let mut largest = 0;
    loop {
        match dec.decode_chunk(&mut buf).unwrap() {
            Some(Event::Data(data)) => {
                assert_eq!(&data[..], &payload[total..total + data.len()]);
                total += data.len();
                largest = largest.max(data.len());
            }
            Some(Event::End) => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(total, payload.len());
    assert!(largest <= INFLATE_TARGET + 1100 * INFLATE_PIECE, "{largest}");
    // The window carries over: a second message still inflates.
    let mut buf = BytesMut::from(&unmasked(true, RSV1, OpCode::Binary, &compress(b"again"))[..]);
    assert_eq!(
        stream(&mut dec, &mut buf),
        Ok(vec![Event::Start { text: false }, Event::Data("again".into()), Event::End])
    );
}

#[test]
fn compressed_text_is_validated_after_inflation() {
    let wire = unmasked(true, RSV1, OpCode::Text, &compress(b"ok \xff"));
    let mut dec = inflating_decoder();
    let err = stream(&mut dec, &mut BytesMut::from(&wire[..]));
    assert_eq!(err, Err(DecodeError::Protocol(ProtocolError::InvalidUtf8)));
    let wire = unmasked(true, RSV1, OpCode::Binary, &[0xff, 0xff]);
    let mut dec = inflating_decoder();
    let err = stream(&mut dec, &mut BytesMut::from(&wire[..]));
    assert_eq!(err, Err(DecodeError::Protocol(ProtocolError::InvalidCompressedData)));
}

/// Every event `decode_chunk` gives for what `buf` holds.
fn stream(dec: &mut MessageDecoder, buf: &mut BytesMut) -> Result<Vec<Event>, DecodeError> {
    let mut out = Vec::new();
    while let Some(event) = dec.decode_chunk(buf)? {
        out.push(event);
    }
    Ok(out)
}
