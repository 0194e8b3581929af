//! [`Inflate`]: how the decoder reaches a decompressor (RFC 7692 §7.2.2)
//! without depending on one. The `deflate` module implements it.

use std::{error, fmt};

use bytes::BytesMut;

/// Decompresses the payload of a compressed message (RFC 7692 §7.2.2) as
/// its frames complete, within a size limit on the output.
///
/// [`MessageDecoder::set_inflater`](crate::protocol::MessageDecoder::set_inflater)
/// takes one once permessage-deflate is negotiated;
/// [`deflate::Decompressor`](crate::deflate::Decompressor) is the
/// implementation this crate ships.
pub trait Inflate: fmt::Debug + Send + Sync {
    /// Decompresses the next piece of the current message's payload,
    /// appending to `out`. `max_len` bounds the whole message once
    /// decompressed, counted since it began: past it this fails with
    /// [`InflateError::TooLarge`], having written at most one byte beyond.
    fn decompress(&mut self, input: &[u8], out: &mut BytesMut, max_len: usize) -> Result<(), InflateError>;

    /// Ends the current message (its final frame was fed): decompresses the
    /// implicit `00 00 ff ff` tail and resets what must be reset.
    fn finish_message(&mut self, out: &mut BytesMut, max_len: usize) -> Result<(), InflateError>;

    /// The connection has no more input for now: an inflater may give up
    /// memory it can rebuild (say, a state it can make again from the
    /// window it keeps). Not between messages, it must keep what the
    /// message in progress needs. The default does nothing.
    fn idle(&mut self) {}
}

/// Why a compressed message could not be decompressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InflateError {
    /// The payload is not valid DEFLATE data, or refers back further than
    /// the window (RFC 7692 §7.2.2). The connection should be failed with
    /// close code 1007.
    Corrupt,
    /// The message decompresses to more than the allowed size. The
    /// connection should be failed with close code 1009.
    TooLarge,
}

impl fmt::Display for InflateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InflateError::Corrupt => f.write_str("compressed message is not valid deflate data"),
            InflateError::TooLarge => f.write_str("message exceeds the size limit once decompressed"),
        }
    }
}

impl error::Error for InflateError {}
