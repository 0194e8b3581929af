use proptest::prelude::*;

use super::*;
use crate::deflate::ExtensionSyntaxError;

const fn params(snct: bool, cnct: bool, smwb: u8, cmwb: u8) -> DeflateParams {
    DeflateParams {
        server_no_context_takeover: snct,
        client_no_context_takeover: cnct,
        server_max_window_bits: smwb,
        client_max_window_bits: cmwb,
    }
}

const DEFAULT: DeflateParams = params(false, false, 15, 15);

#[test]
fn client_offers() {
    let c = DeflateConfig::new();
    let table = [
        (c, "permessage-deflate; client_max_window_bits"),
        (c.client_max_window_bits(10), "permessage-deflate; client_max_window_bits=10"),
        (c.server_max_window_bits(8), "permessage-deflate; server_max_window_bits=8; client_max_window_bits"),
        (
            c.server_no_context_takeover(true).client_no_context_takeover(true).server_max_window_bits(10).client_max_window_bits(12),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=12",
        ),
        // Level and size threshold are not negotiated.
        (c.level(9).min_size(0), "permessage-deflate; client_max_window_bits"),
    ];
    for (config, offer) in table {
        assert_eq!(client_offer(&config), offer);
    }
}

#[test]
fn server_accepts_the_first_acceptable_offer() {
    // Asking nothing of the client's window unless a row says so.
    let c = DeflateConfig::new().preferred_client_window_bits(15);
    type Row = (DeflateConfig, &'static [&'static [u8]], Option<(&'static str, DeflateParams)>);
    let table: &[Row] = &[
        (c, &[], None),
        (c, &[b""], None),
        (c, &[b"x-webkit-deflate-frame"], None),
        // Names are matched exactly.
        (c, &[b"Permessage-Deflate"], None),
        // Firefox and Chrome.
        (c, &[b"permessage-deflate"], Some(("permessage-deflate", DEFAULT))),
        (c, &[b"permessage-deflate; client_max_window_bits"], Some(("permessage-deflate", DEFAULT))),
        (c, &[b"x-webkit-deflate-frame, permessage-deflate"], Some(("permessage-deflate", DEFAULT))),
        // §7.1.1.1: accepting server_no_context_takeover means confirming it.
        (
            c,
            &[b"permessage-deflate; server_no_context_takeover"],
            Some(("permessage-deflate; server_no_context_takeover", params(true, false, 15, 15))),
        ),
        // §7.1.1.2: a client's announcement is confirmed.
        (
            c,
            &[b"permessage-deflate; client_no_context_takeover"],
            Some(("permessage-deflate; client_no_context_takeover", params(false, true, 15, 15))),
        ),
        // §7.1.2.1: an offered server window is named, the same or smaller.
        (
            c,
            &[b"permessage-deflate; server_max_window_bits=10"],
            Some(("permessage-deflate; server_max_window_bits=10", params(false, false, 10, 15))),
        ),
        (
            c,
            &[b"permessage-deflate; server_max_window_bits=15"],
            Some(("permessage-deflate; server_max_window_bits=15", DEFAULT)),
        ),
        (
            c.server_max_window_bits(12),
            &[b"permessage-deflate; server_max_window_bits=14"],
            Some(("permessage-deflate; server_max_window_bits=12", params(false, false, 12, 15))),
        ),
        (
            c.server_max_window_bits(12),
            &[b"permessage-deflate"],
            Some(("permessage-deflate; server_max_window_bits=12", params(false, false, 12, 15))),
        ),
        // A window of 8 is agreed to: we then send uncompressed.
        (
            c,
            &[b"permessage-deflate; server_max_window_bits=8"],
            Some(("permessage-deflate; server_max_window_bits=8", params(false, false, 8, 15))),
        ),
        // §7.1.2.2: the client's window, limited only if it offered the parameter.
        (
            c,
            &[b"permessage-deflate; client_max_window_bits=10"],
            Some(("permessage-deflate; client_max_window_bits=10", params(false, false, 15, 10))),
        ),
        (
            c.client_max_window_bits(11),
            &[b"permessage-deflate; client_max_window_bits"],
            Some(("permessage-deflate; client_max_window_bits=11", params(false, false, 15, 11))),
        ),
        // The default wish for the client's window (12): asked where the
        // offer allows it, never a reason to decline.
        (
            DeflateConfig::new(),
            &[b"permessage-deflate; client_max_window_bits"],
            Some(("permessage-deflate; client_max_window_bits=12", params(false, false, 15, 12))),
        ),
        (DeflateConfig::new(), &[b"permessage-deflate"], Some(("permessage-deflate", DEFAULT))),
        (
            DeflateConfig::new(),
            &[b"permessage-deflate; client_max_window_bits=10"],
            Some(("permessage-deflate; client_max_window_bits=10", params(false, false, 15, 10))),
        ),
        (
            DeflateConfig::new().preferred_client_window_bits(9).client_max_window_bits(11),
            &[b"permessage-deflate; client_max_window_bits"],
            Some(("permessage-deflate; client_max_window_bits=9", params(false, false, 15, 9))),
        ),
        (
            c.client_max_window_bits(11),
            &[b"permessage-deflate; client_max_window_bits=9"],
            Some(("permessage-deflate; client_max_window_bits=9", params(false, false, 15, 9))),
        ),
        (c.client_max_window_bits(11), &[b"permessage-deflate"], None),
        (
            c.client_max_window_bits(11),
            &[b"permessage-deflate, permessage-deflate; client_max_window_bits"],
            Some(("permessage-deflate; client_max_window_bits=11", params(false, false, 15, 11))),
        ),
        // What the server imposes.
        (
            c.server_no_context_takeover(true).client_no_context_takeover(true),
            &[b"permessage-deflate"],
            Some(("permessage-deflate; server_no_context_takeover; client_no_context_takeover", params(true, true, 15, 15))),
        ),
        // Everything at once, quoted value included (RFC 7692 §7.1).
        (
            c,
            &[b"permessage-deflate; client_no_context_takeover; server_no_context_takeover; client_max_window_bits=\"9\"; server_max_window_bits=\"11\""],
            Some((
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=11; client_max_window_bits=9",
                params(true, true, 11, 9),
            )),
        ),
        // Offers spread over several header lines.
        (
            c,
            &[b"foo", b"permessage-deflate; server_max_window_bits=9"],
            Some(("permessage-deflate; server_max_window_bits=9", params(false, false, 9, 15))),
        ),
    ];
    for (config, offers, expected) in table {
        let got = server_negotiate(config, offers).unwrap();
        let expected = expected.map(|(answer, params)| (answer.to_owned(), params));
        assert_eq!(
            got,
            expected,
            "{config:?} {:?}",
            offers.iter().map(|o| String::from_utf8_lossy(o)).collect::<Vec<_>>()
        );
    }
}

/// RFC 7692 §7: "A server MUST decline an extension negotiation offer for
/// this extension if any of the following conditions are met": unknown
/// parameter, invalid value, repeated parameter. The next offer is tried.
#[test]
fn server_declines_invalid_offers() {
    let bad: &[&str] = &[
        "foo",
        "foo=1",
        "server_no_context_takeover; server_no_context_takeover",
        "client_max_window_bits; client_max_window_bits=10",
        "server_max_window_bits=10; server_max_window_bits=10",
        "server_no_context_takeover=1",
        "client_no_context_takeover=\"x\"",
        "server_max_window_bits",
        "server_max_window_bits=7",
        "server_max_window_bits=16",
        "server_max_window_bits=08",
        "server_max_window_bits=+9",
        "server_max_window_bits=0x9",
        "server_max_window_bits=abc",
        "client_max_window_bits=0",
        "client_max_window_bits=255",
        "client_max_window_bits=010",
        // Parameter names are matched exactly too.
        "Server_No_Context_Takeover",
    ];
    for params in bad {
        let offer = format!("permessage-deflate; {params}");
        assert_eq!(server_negotiate(&DeflateConfig::new(), &[offer.as_bytes()]), Ok(None), "{offer}");
        let fallback = format!("{offer}, permessage-deflate; client_max_window_bits");
        let (answer, got) = server_negotiate(&DeflateConfig::new(), &[fallback.as_bytes()]).unwrap().unwrap();
        let expected = ("permessage-deflate; client_max_window_bits=12", super::tests::params(false, false, 15, 12));
        assert_eq!((answer.as_str(), got), expected, "{fallback}");
    }
}

#[test]
fn malformed_headers_are_errors() {
    let malformed: &[&[u8]] = &[b"permessage-deflate;", b"permessage-deflate; x=\"1", b"a b", b";"];
    for value in malformed {
        assert!(matches!(server_negotiate(&DeflateConfig::new(), &[value]), Err(NegotiationError::Malformed(_))));
        assert!(matches!(client_accept(&DeflateConfig::new(), &[value]), Err(NegotiationError::Malformed(_))));
    }
    // Even when a good offer came first.
    let err = server_negotiate(&DeflateConfig::new(), &[b"permessage-deflate", b"foo bar"]).unwrap_err();
    assert_eq!(err, NegotiationError::Malformed(ExtensionSyntaxError::UnexpectedByte(b'b')));
}

#[test]
fn client_checks_the_answer() {
    use NegotiationError::*;
    let c = DeflateConfig::new();
    type Row = (DeflateConfig, &'static [&'static [u8]], Result<Option<DeflateParams>, NegotiationError>);
    let table: &[Row] = &[
        // Declined.
        (c, &[], Ok(None)),
        (c, &[b""], Ok(None)),
        (c, &[b"permessage-deflate"], Ok(Some(DEFAULT))),
        // §7.1.1.1: a server may announce server_no_context_takeover unasked...
        (c, &[b"permessage-deflate; server_no_context_takeover"], Ok(Some(params(true, false, 15, 15)))),
        // ...but must confirm it when asked.
        (
            c.server_no_context_takeover(true),
            &[b"permessage-deflate; server_no_context_takeover"],
            Ok(Some(params(true, false, 15, 15))),
        ),
        (c.server_no_context_takeover(true), &[b"permessage-deflate"], Err(UnsupportedConfiguration)),
        // §7.1.1.2: a client must support client_no_context_takeover, and
        // keeps to what it announced.
        (c, &[b"permessage-deflate; client_no_context_takeover"], Ok(Some(params(false, true, 15, 15)))),
        (c.client_no_context_takeover(true), &[b"permessage-deflate"], Ok(Some(params(false, true, 15, 15)))),
        // §7.1.2.1: the server's window, the same or smaller than requested.
        (c, &[b"permessage-deflate; server_max_window_bits=10"], Ok(Some(params(false, false, 10, 15)))),
        (c, &[b"permessage-deflate; server_max_window_bits=8"], Ok(Some(params(false, false, 8, 15)))),
        (
            c.server_max_window_bits(10),
            &[b"permessage-deflate; server_max_window_bits=10"],
            Ok(Some(params(false, false, 10, 15))),
        ),
        (
            c.server_max_window_bits(10),
            &[b"permessage-deflate; server_max_window_bits=9"],
            Ok(Some(params(false, false, 9, 15))),
        ),
        (
            c.server_max_window_bits(10),
            &[b"permessage-deflate; server_max_window_bits=11"],
            Err(UnsupportedConfiguration),
        ),
        (c.server_max_window_bits(10), &[b"permessage-deflate"], Err(UnsupportedConfiguration)),
        // §7.1.2.2: the client's window, any value when offered without one,
        // the same or smaller when offered with one.
        (c, &[b"permessage-deflate; client_max_window_bits=9"], Ok(Some(params(false, false, 15, 9)))),
        (c, &[b"permessage-deflate; client_max_window_bits=8"], Ok(Some(params(false, false, 15, 8)))),
        (c.client_max_window_bits(10), &[b"permessage-deflate"], Ok(Some(params(false, false, 15, 10)))),
        (
            c.client_max_window_bits(10),
            &[b"permessage-deflate; client_max_window_bits=9"],
            Ok(Some(params(false, false, 15, 9))),
        ),
        (
            c.client_max_window_bits(10),
            &[b"permessage-deflate; client_max_window_bits=12"],
            Err(UnsupportedConfiguration),
        ),
        // An answer names the client's window.
        (c, &[b"permessage-deflate; client_max_window_bits"], Err(InvalidParameterValue)),
        // §7: unknown, invalid, repeated parameters.
        (c, &[b"permessage-deflate; foo"], Err(UnknownParameter)),
        (c, &[b"permessage-deflate; server_no_context_takeover; server_no_context_takeover"], Err(DuplicateParameter)),
        (c, &[b"permessage-deflate; server_max_window_bits=9; server_max_window_bits=9"], Err(DuplicateParameter)),
        (c, &[b"permessage-deflate; server_no_context_takeover=1"], Err(InvalidParameterValue)),
        (c, &[b"permessage-deflate; server_max_window_bits"], Err(InvalidParameterValue)),
        (c, &[b"permessage-deflate; server_max_window_bits=16"], Err(InvalidParameterValue)),
        (c, &[b"permessage-deflate; server_max_window_bits=7"], Err(InvalidParameterValue)),
        (c, &[b"permessage-deflate; client_max_window_bits=09"], Err(InvalidParameterValue)),
        (c, &[b"permessage-deflate; server_max_window_bits=\"10\""], Ok(Some(params(false, false, 10, 15)))),
        // RFC 6455 §4.1: nothing that was not offered; RFC 7692 §5: one answer.
        (c, &[b"foo"], Err(UnofferedExtension)),
        (c, &[b"permessage-deflate, foo"], Err(UnofferedExtension)),
        (c, &[b"x-webkit-deflate-frame"], Err(UnofferedExtension)),
        (c, &[b"permessage-deflate, permessage-deflate"], Err(DuplicateExtension)),
        (c, &[b"permessage-deflate", b"permessage-deflate"], Err(DuplicateExtension)),
    ];
    for (config, answer, expected) in table {
        let got = client_accept(config, answer);
        assert_eq!(
            &got,
            expected,
            "{config:?} {:?}",
            answer.iter().map(|a| String::from_utf8_lossy(a)).collect::<Vec<_>>()
        );
    }
}

#[test]
fn params_by_role() {
    let p = params(true, false, 10, 12);
    assert_eq!(p.compressor_window_bits(Role::Server), 10);
    assert_eq!(p.decompressor_window_bits(Role::Client), 10);
    assert_eq!(p.compressor_window_bits(Role::Client), 12);
    assert_eq!(p.decompressor_window_bits(Role::Server), 12);
    assert!(p.compressor_no_context_takeover(Role::Server) && p.decompressor_no_context_takeover(Role::Client));
    assert!(!p.compressor_no_context_takeover(Role::Client) && !p.decompressor_no_context_takeover(Role::Server));
    let server = p.compressor(Role::Server, 1).unwrap();
    assert_eq!((server.window_bits(), server.no_context_takeover()), (10, true));
    let client = p.decompressor(Role::Client);
    assert_eq!((client.window_bits(), client.no_context_takeover()), (10, true));
    assert_eq!(DeflateParams::default(), DEFAULT);
}

/// The window the backend cannot compress with: the side that would have
/// to sends uncompressed, and its peer still decompresses (with 2^9).
#[test]
fn window_of_eight_disables_only_our_compressor() {
    let p = params(false, false, 8, 8);
    for role in [Role::Client, Role::Server] {
        assert!(p.compressor(role, 1).is_none());
        assert_eq!(p.decompressor(role).window_bits(), 9);
    }
    assert!(params(false, false, 8, 15).compressor(Role::Client, 1).is_some());
}

#[test]
fn errors_display_lowercase_and_chain() {
    let malformed = NegotiationError::Malformed(ExtensionSyntaxError::ExpectedToken);
    assert_eq!(malformed.to_string(), "malformed sec-websocket-extensions header");
    assert_eq!(error::Error::source(&malformed).unwrap().to_string(), "expected a token");
    assert!(error::Error::source(&NegotiationError::UnknownParameter).is_none());
    for e in [
        NegotiationError::UnofferedExtension,
        NegotiationError::DuplicateExtension,
        NegotiationError::UnknownParameter,
        NegotiationError::DuplicateParameter,
        NegotiationError::InvalidParameterValue,
        NegotiationError::UnsupportedConfiguration,
    ] {
        let text = e.to_string();
        assert!(text.chars().next().unwrap().is_lowercase() && !text.ends_with('.'), "{text}");
    }
    fn assert_error<E: error::Error + Send + Sync + 'static>() {}
    assert_error::<NegotiationError>();
}

fn any_config() -> impl Strategy<Value = DeflateConfig> {
    (any::<bool>(), any::<bool>(), 8u8..=15, 8u8..=15).prop_map(|(snct, cnct, smwb, cmwb)| {
        DeflateConfig::new()
            .server_no_context_takeover(snct)
            .client_no_context_takeover(cnct)
            .server_max_window_bits(smwb)
            .client_max_window_bits(cmwb)
    })
}

proptest! {
    /// Whatever each side is configured with, a server that accepts our
    /// offer answers in a way we accept, and both agree on every parameter,
    /// each within what its own configuration allows.
    #[test]
    fn both_sides_agree(client in any_config(), server in any_config()) {
        let offer = client_offer(&client);
        // Our offers always carry client_max_window_bits, so no server
        // configuration has to decline them.
        let (answer, agreed) = server_negotiate(&server, &[offer.as_bytes()]).unwrap().expect("accepted");
        prop_assert_eq!(client_accept(&client, &[answer.as_bytes()]), Ok(Some(agreed)));
        prop_assert!(agreed.server_max_window_bits <= client.get_server_max_window_bits().min(server.get_server_max_window_bits()));
        prop_assert!(agreed.client_max_window_bits <= client.get_client_max_window_bits().min(server.get_client_max_window_bits()));
        prop_assert!(agreed.server_no_context_takeover >= client.get_server_no_context_takeover() | server.get_server_no_context_takeover());
        prop_assert!(agreed.client_no_context_takeover >= client.get_client_no_context_takeover() | server.get_client_no_context_takeover());
    }
}
