//! The header fields and subprotocols a builder ([`Upgrader`](super::Upgrader)
//! or [`Connector`](super::Connector)) adds to its side of the handshake.

use http::{HeaderMap, HeaderName, HeaderValue};

use super::headers::is_token;
use super::HandshakeError;

/// Extra header fields and subprotocols, checked when set; anything invalid
/// is reported by [`HeaderSettings::check`] when the handshake runs, so the
/// builder's by-value setters stay infallible.
#[derive(Clone, Debug, Default)]
pub(crate) struct HeaderSettings {
    pub(crate) headers: HeaderMap,
    pub(crate) subprotocols: Vec<String>,
    invalid: bool,
}

impl HeaderSettings {
    /// Appends a header field unless it is invalid or one of `managed`, the
    /// fields the handshake writes itself.
    pub(crate) fn append<K, V>(&mut self, name: K, value: V, managed: &[HeaderName])
    where
        HeaderName: TryFrom<K>,
        HeaderValue: TryFrom<V>,
    {
        match (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            (Ok(name), Ok(value)) if !managed.contains(&name) => {
                self.headers.append(name, value);
            }
            _ => self.invalid = true,
        }
    }

    /// Sets (replaces) a header field, e.g. `Origin`.
    pub(crate) fn set<V>(&mut self, name: HeaderName, value: V)
    where
        HeaderValue: TryFrom<V>,
    {
        match HeaderValue::try_from(value) {
            Ok(value) => {
                self.headers.insert(name, value);
            }
            Err(_) => self.invalid = true,
        }
    }

    /// Replaces the subprotocol list; every name must be an HTTP token.
    pub(crate) fn set_subprotocols<I>(&mut self, protocols: I)
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.subprotocols = protocols.into_iter().map(Into::into).collect();
        if !self.subprotocols.iter().all(|p| is_token(p)) {
            self.invalid = true;
        }
    }

    /// Fails if anything set was invalid.
    pub(crate) fn check(&self) -> Result<(), HandshakeError> {
        if self.invalid {
            return Err(HandshakeError::InvalidHeader);
        }
        Ok(())
    }
}
