//! Negotiating permessage-deflate in the opening handshake (RFC 7692 §5,
//! §7.1): the client's offer, the server's choice among offers, and the
//! client's check of the server's answer.
//!
//! Both ends come out with the same [`DeflateParams`], from which each takes
//! its compressor's and its decompressor's settings according to its role.
//!
//! Syntax errors: a `Sec-WebSocket-Extensions` value that does not follow
//! RFC 6455 §9.1 makes both [`server_negotiate`] and [`client_accept`] fail
//! with [`NegotiationError::Malformed`], even if the bad part concerns
//! another extension: the list cannot be read reliably, and we are strict by
//! default. A server would answer 400 (RFC 6455 §4.2.2: the request is not a
//! valid handshake); one that prefers to carry on without compression can
//! treat the error as "no offer". A client must fail the connection.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::{error, fmt};

use crate::deflate::extension_header::{parse_extensions, ExtensionSyntaxError};
use crate::deflate::{Compressor, Decompressor, DeflateConfig};
use crate::protocol::Role;

/// The extension token (RFC 7692 §7).
pub const EXTENSION_NAME: &str = "permessage-deflate";

/// The agreed parameters of a permessage-deflate connection (RFC 7692 §7.1).
///
/// Window sizes are base-2 logarithms in 8..=15; 15 is also the value when a
/// parameter was not used. Each side compresses with its own pair of
/// settings and decompresses with the peer's; the accessors pick them by
/// [`Role`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeflateParams {
    /// The server resets its compressor after each message (§7.1.1.1).
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after each message (§7.1.1.2).
    pub client_no_context_takeover: bool,
    /// The largest window the server compresses with (§7.1.2.1).
    pub server_max_window_bits: u8,
    /// The largest window the client compresses with (§7.1.2.2).
    pub client_max_window_bits: u8,
}

impl Default for DeflateParams {
    /// No parameters: context takeover and 32 KiB windows both ways.
    fn default() -> Self {
        DeflateParams {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        }
    }
}

impl DeflateParams {
    /// The window our compressor must stay within, when we are `role`.
    #[must_use]
    pub const fn compressor_window_bits(&self, role: Role) -> u8 {
        match role {
            Role::Client => self.client_max_window_bits,
            Role::Server => self.server_max_window_bits,
        }
    }

    /// Whether our compressor resets after each message, when we are `role`.
    #[must_use]
    pub const fn compressor_no_context_takeover(&self, role: Role) -> bool {
        match role {
            Role::Client => self.client_no_context_takeover,
            Role::Server => self.server_no_context_takeover,
        }
    }

    /// The window the peer compresses with, which our decompressor needs,
    /// when we are `role`.
    #[must_use]
    pub const fn decompressor_window_bits(&self, role: Role) -> u8 {
        match role {
            Role::Client => self.server_max_window_bits,
            Role::Server => self.client_max_window_bits,
        }
    }

    /// Whether the peer resets after each message, so that our decompressor
    /// may too, when we are `role`.
    #[must_use]
    pub const fn decompressor_no_context_takeover(&self, role: Role) -> bool {
        match role {
            Role::Client => self.server_no_context_takeover,
            Role::Server => self.client_no_context_takeover,
        }
    }

    /// Our compressor at `level`, when we are `role`; `None` when the agreed
    /// window is 2^8, which the backend cannot honour: we then send every
    /// message uncompressed (see [`Compressor::new`]).
    #[must_use]
    pub fn compressor(&self, role: Role, level: u8) -> Option<Compressor> {
        Compressor::new(level, self.compressor_window_bits(role), self.compressor_no_context_takeover(role))
    }

    /// Our decompressor, when we are `role`.
    #[must_use]
    pub fn decompressor(&self, role: Role) -> Decompressor {
        Decompressor::new(self.decompressor_window_bits(role), self.decompressor_no_context_takeover(role))
    }
}

/// Why a client must fail the connection over the server's answer, or why
/// an extension header could not be read at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NegotiationError {
    /// A `Sec-WebSocket-Extensions` value does not follow RFC 6455 §9.1.
    Malformed(ExtensionSyntaxError),
    /// The server answered with an extension that was not offered (RFC 6455
    /// §4.1, item 5 of the client's checks).
    UnofferedExtension,
    /// The server answered with permessage-deflate more than once (RFC 7692
    /// §5: it accepts at most one offer).
    DuplicateExtension,
    /// A parameter not defined for use in a response (RFC 7692 §7).
    UnknownParameter,
    /// A parameter given twice (RFC 7692 §7).
    DuplicateParameter,
    /// A parameter with an invalid value (RFC 7692 §7).
    InvalidParameterValue,
    /// The answer does not honour the offer, so it represents a
    /// configuration the client does not support (RFC 7692 §7): a requested
    /// `server_no_context_takeover` or `server_max_window_bits` left out, or
    /// a window larger than the offer allowed.
    UnsupportedConfiguration,
}

impl fmt::Display for NegotiationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NegotiationError::Malformed(_) => "malformed sec-websocket-extensions header",
            NegotiationError::UnofferedExtension => "server selected an extension that was not offered",
            NegotiationError::DuplicateExtension => "server selected permessage-deflate more than once",
            NegotiationError::UnknownParameter => "unknown permessage-deflate parameter",
            NegotiationError::DuplicateParameter => "duplicate permessage-deflate parameter",
            NegotiationError::InvalidParameterValue => "invalid permessage-deflate parameter value",
            NegotiationError::UnsupportedConfiguration => "permessage-deflate answer does not honour the offer",
        })
    }
}

impl error::Error for NegotiationError {
    fn source(&self) -> Option<&(dyn error::Error + 'static)> {
        match self {
            NegotiationError::Malformed(e) => Some(e),
            _ => None,
        }
    }
}

/// The header value a client sends in `Sec-WebSocket-Extensions`.
///
/// It always carries `client_max_window_bits`, valueless at 15 (RFC 7692
/// §7.1.2.2: "By including this parameter in an extension negotiation
/// offer, a client informs the server that the client supports the
/// "client_max_window_bits" extension parameter in an extension negotiation
/// response"), so that a server may limit our window. The other parameters
/// appear when `config` asks for them (§7.1.1.1, §7.1.1.2, §7.1.2.1).
#[must_use]
pub fn client_offer(config: &DeflateConfig) -> String {
    let mut offer = String::from(EXTENSION_NAME);
    if config.get_server_no_context_takeover() {
        offer.push_str("; server_no_context_takeover");
    }
    if config.get_client_no_context_takeover() {
        offer.push_str("; client_no_context_takeover");
    }
    if config.get_server_max_window_bits() < 15 {
        let _ = write!(offer, "; server_max_window_bits={}", config.get_server_max_window_bits());
    }
    offer.push_str("; client_max_window_bits");
    if config.get_client_max_window_bits() < 15 {
        let _ = write!(offer, "={}", config.get_client_max_window_bits());
    }
    offer
}

/// A server's choice among the client's offers: the raw values of every
/// `Sec-WebSocket-Extensions` header field, in order.
///
/// The offers are tried in the client's order of preference (RFC 7692 §5.1);
/// other extensions are skipped. An offer is declined when RFC 7692 §7 says
/// it must be ("contains an extension parameter not defined for use in an
/// offer", "with an invalid value", "multiple extension parameters with the
/// same name") or when it cannot be honoured under `config`: an offer
/// without `client_max_window_bits` while `config` limits the client's
/// window, since then "the corresponding extension negotiation response to
/// the offer MUST NOT include the "client_max_window_bits" extension
/// parameter" (§7.1.2.2). The first acceptable offer is accepted.
///
/// The answer carries only what binds: `server_no_context_takeover` when
/// offered (§7.1.1.1: accepting means including it) or configured;
/// `client_no_context_takeover` when configured or offered (confirming it
/// lets us drop our decompressor between messages); `server_max_window_bits`
/// when offered (§7.1.2.1: "with the same or smaller value as the offer") or
/// below 15; `client_max_window_bits` when offered and the agreed value is
/// below 15: the smallest of the offered value,
/// [`DeflateConfig::get_client_max_window_bits`] and
/// [`DeflateConfig::get_preferred_client_window_bits`] (12 by default).
///
/// An agreed server window of 8 is accepted, not declined: we then send
/// uncompressed messages ([`DeflateParams::compressor`] is `None`) and still
/// save on the client's.
///
/// `Ok(None)`: nothing acceptable was offered; the handshake goes on
/// without compression.
pub fn server_negotiate(
    config: &DeflateConfig,
    offers: &[&[u8]],
) -> Result<Option<(String, DeflateParams)>, NegotiationError> {
    let list = parse_extensions(offers).map_err(NegotiationError::Malformed)?;
    let accepted = list
        .iter()
        .filter(|extension| extension.name == EXTENSION_NAME)
        .filter_map(|extension| Element::parse(&extension.params, Side::Offer).ok())
        .find_map(|offer| accept_offer(config, &offer));
    Ok(accepted)
}

/// A client's check of the server's answer: the raw values of every
/// `Sec-WebSocket-Extensions` header field of the response, given the
/// `config` that [`client_offer`] was built from.
///
/// `Ok(None)`: the server declined; no extension is in use. `Ok(Some(_))`:
/// the parameters both sides now use, window sizes included. Any error
/// means the client must fail the connection (RFC 7692 §7: "A client MUST
/// _Fail the WebSocket Connection_ if the peer server accepted an extension
/// negotiation offer for this extension with an extension negotiation
/// response meeting any of the following conditions").
///
/// A `client_max_window_bits` of 8 in the answer is accepted: we then send
/// uncompressed messages ([`DeflateParams::compressor`] is `None`), which
/// honours any window.
pub fn client_accept(
    config: &DeflateConfig,
    response_values: &[&[u8]],
) -> Result<Option<DeflateParams>, NegotiationError> {
    let list = parse_extensions(response_values).map_err(NegotiationError::Malformed)?;
    let mut accepted = None;
    for extension in &list {
        // We offered nothing else.
        if extension.name != EXTENSION_NAME {
            return Err(NegotiationError::UnofferedExtension);
        }
        if accepted.is_some() {
            return Err(NegotiationError::DuplicateExtension);
        }
        let answer = Element::parse(&extension.params, Side::Response)?;
        accepted = Some(check_answer(config, &answer)?);
    }
    Ok(accepted)
}

/// Which message an element comes from: the rules for values differ.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Offer,
    Response,
}

/// The parameters of one `permessage-deflate` element, checked for names,
/// duplicates and values.
#[derive(Debug, Default, PartialEq, Eq)]
struct Element {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// Present without a value is `Some(None)` (offers only).
    client_max_window_bits: Option<Option<u8>>,
}

impl Element {
    fn parse(params: &[(&str, Option<Cow<'_, str>>)], side: Side) -> Result<Self, NegotiationError> {
        let mut element = Element::default();
        let mut seen = [false; 4];
        for (name, value) in params {
            let value = value.as_deref();
            let index = match *name {
                "server_no_context_takeover" => 0,
                "client_no_context_takeover" => 1,
                "server_max_window_bits" => 2,
                "client_max_window_bits" => 3,
                _ => return Err(NegotiationError::UnknownParameter),
            };
            if std::mem::replace(&mut seen[index], true) {
                return Err(NegotiationError::DuplicateParameter);
            }
            match index {
                // §7.1.1.1, §7.1.1.2: "This extension parameter has no value."
                0 | 1 if value.is_some() => return Err(NegotiationError::InvalidParameterValue),
                0 => element.server_no_context_takeover = true,
                1 => element.client_no_context_takeover = true,
                // §7.1.2.1: "a decimal integer value without leading zeroes
                // between 8 to 15, inclusive".
                2 => element.server_max_window_bits = Some(window_bits(value)?),
                // §7.1.2.2: in an offer, "no value or a decimal integer
                // value"; an answer that limits the client names the limit.
                _ => {
                    element.client_max_window_bits = match (value, side) {
                        (None, Side::Offer) => Some(None),
                        (value, _) => Some(Some(window_bits(value)?)),
                    }
                }
            }
        }
        Ok(element)
    }
}

/// A window size value: "8" to "15", no sign, no leading zero.
fn window_bits(value: Option<&str>) -> Result<u8, NegotiationError> {
    match value {
        Some(digits @ ("8" | "9" | "10" | "11" | "12" | "13" | "14" | "15")) => {
            digits.parse().map_err(|_| NegotiationError::InvalidParameterValue)
        }
        _ => Err(NegotiationError::InvalidParameterValue),
    }
}

/// The answer and the parameters a server agrees to for `offer`, or `None`
/// to decline it.
fn accept_offer(config: &DeflateConfig, offer: &Element) -> Option<(String, DeflateParams)> {
    let client_max_window_bits = match offer.client_max_window_bits {
        // §7.1.2.2: without the parameter in the offer we cannot limit the
        // client's window, so a limit we insist on means declining.
        None if config.get_client_max_window_bits() < 15 => return None,
        None => 15,
        // §7.1.2.2: the offer lets us pick the client's window; our wish
        // counts as much as our limit.
        Some(offered) => offered
            .unwrap_or(15)
            .min(config.get_client_max_window_bits())
            .min(config.get_preferred_client_window_bits()),
    };
    let params = DeflateParams {
        server_no_context_takeover: offer.server_no_context_takeover || config.get_server_no_context_takeover(),
        client_no_context_takeover: offer.client_no_context_takeover || config.get_client_no_context_takeover(),
        // §7.1.2.1: "the same or smaller value as the offer".
        server_max_window_bits: offer.server_max_window_bits.unwrap_or(15).min(config.get_server_max_window_bits()),
        client_max_window_bits,
    };
    let mut answer = String::from(EXTENSION_NAME);
    if params.server_no_context_takeover {
        answer.push_str("; server_no_context_takeover");
    }
    if params.client_no_context_takeover {
        answer.push_str("; client_no_context_takeover");
    }
    // Accepting an offered window means naming it, even at 15 (§7.1.2.1).
    if params.server_max_window_bits < 15 || offer.server_max_window_bits.is_some() {
        let _ = write!(answer, "; server_max_window_bits={}", params.server_max_window_bits);
    }
    if params.client_max_window_bits < 15 {
        let _ = write!(answer, "; client_max_window_bits={}", params.client_max_window_bits);
    }
    Some((answer, params))
}

/// The parameters a client agrees to for the server's `answer`, checked
/// against what `config` offered.
fn check_answer(config: &DeflateConfig, answer: &Element) -> Result<DeflateParams, NegotiationError> {
    // §7.1.1.1: "A server accepts an extension negotiation offer that
    // includes the "server_no_context_takeover" extension parameter by
    // including the "server_no_context_takeover" extension parameter in the
    // corresponding extension negotiation response".
    if config.get_server_no_context_takeover() && !answer.server_no_context_takeover {
        return Err(NegotiationError::UnsupportedConfiguration);
    }
    // §7.1.2.1: "A server accepts an extension negotiation offer with this
    // parameter by including the "server_max_window_bits" extension
    // parameter in the extension negotiation response to send back to the
    // client with the same or smaller value as the offer." Unrequested, the
    // server may still announce a smaller window.
    let requested_server = config.get_server_max_window_bits();
    let server_max_window_bits = match answer.server_max_window_bits {
        None if requested_server < 15 => return Err(NegotiationError::UnsupportedConfiguration),
        None => 15,
        Some(bits) if bits > requested_server => return Err(NegotiationError::UnsupportedConfiguration),
        Some(bits) => bits,
    };
    // §7.1.2.2: the server may answer with "a value equal to or smaller than
    // the received value"; we always offer the parameter, so it may appear.
    // Without it our own offered value (or 15) stands.
    let offered_client = config.get_client_max_window_bits();
    let client_max_window_bits = match answer.client_max_window_bits {
        None => offered_client,
        Some(Some(bits)) if bits <= offered_client => bits,
        Some(_) => return Err(NegotiationError::UnsupportedConfiguration),
    };
    Ok(DeflateParams {
        server_no_context_takeover: answer.server_no_context_takeover,
        // §7.1.1.2: having announced it, we keep to it whatever the answer.
        client_no_context_takeover: answer.client_no_context_takeover || config.get_client_no_context_takeover(),
        server_max_window_bits,
        client_max_window_bits,
    })
}

#[cfg(test)]
mod tests;
