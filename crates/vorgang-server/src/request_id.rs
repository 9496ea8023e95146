//! The request id: taken from `X-Request-Id` or made here, answered on every response, on every
//! log line of the request and as `requestId` in every problem body (docs/reference/http-api.md).
//!
//! The id lives in two places while a request runs: the request's extensions (for middleware and
//! handlers that have the request) and a Tokio task-local ([`current`]), so that a
//! [`Problem`](crate::problem::Problem) can name it wherever it is turned into an answer, deep in
//! a handler or an extractor, without every place that builds one having to pass the request
//! along. The `request_context` middleware sets both.

use std::future::Future;

use actix_web::http::header::{HeaderMap, HeaderName};

/// The header carrying the id, in requests and answers.
pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest id taken from a request; a longer one is replaced.
pub const MAX_LEN: usize = 128;

/// The id of one request: 1 to [`MAX_LEN`] visible ASCII characters, so it is always a valid
/// header value and a JSON string that needs no escaping beyond `"` and `\`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestId(String);

tokio::task_local! {
    /// The id of the request being answered on this task.
    static CURRENT: RequestId;
}

impl RequestId {
    /// The request's own `X-Request-Id` if it sent exactly one and it is 1 to [`MAX_LEN`]
    /// visible ASCII characters (`!` to `~`), else a new one ([`RequestId::generate`]).
    #[must_use]
    pub fn of(headers: &HeaderMap) -> Self {
        let mut values = headers.get_all(HEADER);
        match (values.next(), values.next()) {
            (Some(value), None) => Self::parse(value.as_bytes()).unwrap_or_else(Self::generate),
            _ => Self::generate(),
        }
    }

    /// `bytes` as an id, if they are 1 to [`MAX_LEN`] visible ASCII characters.
    #[must_use]
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let valid =
            !bytes.is_empty() && bytes.len() <= MAX_LEN && bytes.iter().all(u8::is_ascii_graphic);
        // Visible ASCII is UTF-8.
        valid.then(|| Self(String::from_utf8_lossy(bytes).into_owned()))
    }

    /// A new id: a random UUID (version 4), hyphenated.
    #[must_use]
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    /// The id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Runs `future` with this id as the [`current`] one.
    pub async fn scope<F: Future>(self, future: F) -> F::Output {
        CURRENT.scope(self, future).await
    }

    /// Runs `f` with this id as the [`current`] one (for code that is not async, e.g. turning an
    /// error into an answer).
    pub fn sync_scope<R>(self, f: impl FnOnce() -> R) -> R {
        CURRENT.sync_scope(self, f)
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id of the request being answered on this task, if any.
#[must_use]
pub fn current() -> Option<RequestId> {
    CURRENT.try_with(Clone::clone).ok()
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::HeaderValue;

    use super::*;

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(
                HEADER,
                HeaderValue::from_bytes(value).unwrap_or_else(|_| unreachable!()),
            );
        }
        map
    }

    #[test]
    fn a_valid_id_is_taken_as_sent() {
        for id in [&b"a"[..], b"req-4711", b"!~{}\"\\", &[b'x'; MAX_LEN]] {
            assert_eq!(RequestId::of(&headers(&[id])).as_str().as_bytes(), id);
        }
    }

    #[test]
    fn anything_else_gets_a_new_id() {
        let long = [b'x'; MAX_LEN + 1];
        for sent in [
            &[][..],
            &[&b""[..]][..],
            &[&long[..]][..],
            &[&b"with space"[..]][..],
            &[&b"tab\there"[..]][..],
            &[&b"umlaut \xc3\xa4"[..]][..],
            &[&b"one"[..], &b"two"[..]][..],
        ] {
            let id = RequestId::of(&headers(sent));
            assert!(uuid::Uuid::parse_str(id.as_str()).is_ok(), "{sent:?}: {id}");
        }
        assert_ne!(RequestId::generate(), RequestId::generate());
        for control in [&b"a\x00b"[..], b"a\x7fb", b"a\nb", b"\x1b[31m"] {
            assert_eq!(RequestId::parse(control), None, "{control:?}");
        }
    }

    #[tokio::test]
    async fn the_current_id_is_the_scoped_one() {
        assert_eq!(current(), None);
        let id = RequestId::generate();
        let seen = id.clone().scope(async { current() }).await;
        assert_eq!(seen, Some(id.clone()));
        assert_eq!(id.clone().sync_scope(current), Some(id));
        assert_eq!(current(), None);
    }
}
