//! [`Rejection`]: the application's own refusal of an upgrade request, from
//! [`Upgrader::check_request`](super::Upgrader::check_request). Pure: no I/O.

use http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use super::request::push_headers;
use super::response::{push_body, push_status_line};

/// The HTTP response with which the application refuses an upgrade request:
/// a status, header fields and a body, sent as given.
///
/// Returned from the closure given to
/// [`Upgrader::check_request`](super::Upgrader::check_request). The
/// handshake adds `Connection: close` and `Content-Length` (and drops any
/// `Connection`, `Content-Length` or `Transfer-Encoding` field set here),
/// sends it, closes the connection, and fails with
/// [`HandshakeError::Rejected`](super::HandshakeError::Rejected) carrying
/// the status.
///
/// Fail-closed: an informational status (1xx) or a header name or value
/// that is not valid HTTP makes the refusal a bare `500 Internal Server
/// Error`.
///
/// ```
/// use http::StatusCode;
/// use silverback::Rejection;
///
/// let rejection = Rejection::new(StatusCode::UNAUTHORIZED)
///     .header("www-authenticate", "Bearer")
///     .body("log in first\n");
/// assert_eq!(rejection.status(), StatusCode::UNAUTHORIZED);
/// ```
#[derive(Clone, Debug)]
pub struct Rejection {
    // Boxed: a `Result<(), Rejection>` stays one word wide.
    inner: Box<Inner>,
}

#[derive(Clone, Debug)]
struct Inner {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
    /// Set by an invalid field or status: later setters are ignored.
    poisoned: bool,
}

/// The fields the handshake writes itself on a refusal.
const MANAGED: [HeaderName; 3] = [CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING];

impl Rejection {
    /// A refusal with `status`, no header fields and an empty body.
    #[must_use]
    pub fn new(status: StatusCode) -> Self {
        let mut rejection = Rejection {
            inner: Box::new(Inner { status, headers: HeaderMap::new(), body: String::new(), poisoned: false }),
        };
        if status.is_informational() {
            rejection.poison();
        }
        rejection
    }

    /// Adds a header field (repeat for several). `Connection`,
    /// `Content-Length` and `Transfer-Encoding` are ignored: the handshake
    /// writes them. An invalid name or value turns the refusal into a bare
    /// 500.
    #[must_use]
    pub fn header<K, V>(mut self, name: K, value: V) -> Self
    where
        HeaderName: TryFrom<K>,
        HeaderValue: TryFrom<V>,
    {
        if self.inner.poisoned {
            return self;
        }
        match (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            (Ok(name), Ok(value)) => {
                if !MANAGED.contains(&name) {
                    self.inner.headers.append(name, value);
                }
            }
            _ => self.poison(),
        }
        self
    }

    /// Sets the body.
    #[must_use]
    pub fn body(mut self, body: impl Into<String>) -> Self {
        if !self.inner.poisoned {
            self.inner.body = body.into();
        }
        self
    }

    /// The status that will be sent.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.inner.status
    }

    /// The header fields that will be sent, before `Connection: close` and
    /// `Content-Length`.
    #[must_use]
    pub fn headers(&self) -> &HeaderMap {
        &self.inner.headers
    }

    /// The body that will be sent.
    #[must_use]
    pub fn body_text(&self) -> &str {
        &self.inner.body
    }

    /// The complete response, with `Connection: close` and
    /// `Content-Length`, as a server that owns the HTTP layer (hyper, axum)
    /// sends it.
    #[must_use]
    pub fn into_response(self) -> http::Response<String> {
        let Inner { status, mut headers, body, .. } = *self.inner;
        headers.append(CONNECTION, HeaderValue::from_static("close"));
        headers.append(CONTENT_LENGTH, HeaderValue::from(body.len()));
        let mut response = http::Response::new(body);
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        response
    }

    /// The response as bytes on an HTTP/1.1 connection: the status line,
    /// the application's fields in order, `Connection: close`,
    /// `Content-Length`, the body.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let Inner { status, headers, body, .. } = &*self.inner;
        let mut out = Vec::with_capacity(128 + body.len());
        push_status_line(&mut out, *status);
        push_headers(&mut out, headers);
        out.extend_from_slice(b"Connection: close\r\n");
        push_body(&mut out, body);
        out
    }

    fn poison(&mut self) {
        *self.inner = Inner {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            headers: HeaderMap::new(),
            body: String::new(),
            poisoned: true,
        };
    }
}

impl From<http::Response<String>> for Rejection {
    /// Takes a response's status, header fields and body (see
    /// [`Rejection::header`] for the fields that are dropped).
    fn from(response: http::Response<String>) -> Self {
        let (parts, body) = response.into_parts();
        let mut rejection = Rejection::new(parts.status);
        let mut last: Option<HeaderName> = None;
        for (name, value) in parts.headers {
            // `HeaderMap`'s iterator names only the first of repeated fields.
            if name.is_some() {
                last = name;
            }
            if let Some(name) = &last {
                rejection = rejection.header(name.clone(), value);
            }
        }
        rejection.body(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_as_given_with_close_and_length() {
        let rejection = Rejection::new(StatusCode::UNAUTHORIZED)
            .header("www-authenticate", "Bearer")
            .header("x-reason", "a")
            .header("x-reason", "b")
            .header("content-length", "999")
            .header("connection", "keep-alive")
            .body("no\n");
        assert_eq!(
            String::from_utf8(rejection.to_bytes()).unwrap(),
            "HTTP/1.1 401 Unauthorized\r\nwww-authenticate: Bearer\r\nx-reason: a\r\n\
             x-reason: b\r\nConnection: close\r\nContent-Length: 3\r\n\r\nno\n"
        );
        let response = rejection.into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()["connection"], "close");
        assert_eq!(response.headers()["content-length"], "3");
        assert_eq!(response.headers().get_all("x-reason").iter().count(), 2);
        assert_eq!(response.body(), "no\n");
    }

    #[test]
    fn fails_closed_to_a_bare_500() {
        let bare = "HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\n\
                    Content-Length: 0\r\n\r\n";
        let table = [
            Rejection::new(StatusCode::SWITCHING_PROTOCOLS).body("x"),
            Rejection::new(StatusCode::CONTINUE),
            Rejection::new(StatusCode::FORBIDDEN).header("bad name", "x").body("x"),
            Rejection::new(StatusCode::FORBIDDEN).body("x").header("x-ok", "a\nb"),
        ];
        for rejection in table {
            assert_eq!(String::from_utf8(rejection.to_bytes()).unwrap(), bare);
            assert_eq!(rejection.status(), StatusCode::INTERNAL_SERVER_ERROR);
        }
        // A 500 of the application's own is not poisoned.
        let own = Rejection::new(StatusCode::INTERNAL_SERVER_ERROR).header("x-a", "1").body("b");
        assert_eq!(own.headers()["x-a"], "1");
        assert_eq!(own.body_text(), "b");
    }

    #[test]
    fn from_a_response_keeps_repeated_fields() {
        let response = http::Response::builder()
            .status(StatusCode::SEE_OTHER)
            .header("location", "/login")
            .header("set-cookie", "a=1")
            .header("set-cookie", "b=2")
            .header("transfer-encoding", "chunked")
            .body("see /login".to_owned())
            .unwrap();
        let rejection = Rejection::from(response);
        assert_eq!(rejection.status(), StatusCode::SEE_OTHER);
        assert_eq!(rejection.headers().get_all("set-cookie").iter().count(), 2);
        assert!(!rejection.headers().contains_key("transfer-encoding"));
        assert_eq!(rejection.body_text(), "see /login");
    }

    #[test]
    fn is_one_word() {
        assert_eq!(std::mem::size_of::<Result<(), Rejection>>(), std::mem::size_of::<usize>());
    }
}
