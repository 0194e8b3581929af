//! Integrations with other crates, each behind its feature: upgrading a
//! hyper request (`hyper`), the axum extractor (`axum`, on top of
//! `hyper`), and JSON messages (`json`). They use the public vocabulary and
//! the handshake's policy; nothing below imports them.

#[cfg(feature = "axum")]
pub mod axum;
#[cfg(feature = "hyper")]
pub mod http2;
#[cfg(feature = "hyper")]
pub mod hyper;
#[cfg(feature = "json")]
mod json;
