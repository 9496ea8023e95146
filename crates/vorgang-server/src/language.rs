//! The language of a request's answers: German by default, English when `Accept-Language` prefers
//! it (docs/reference/http-api.md §1 "Language"; the choice is [`i18n::Lang::negotiate`]).
//!
//! Like the request id, the language lives in a Tokio task-local while the request runs
//! ([`current`]), set by the `request_context` middleware: every [`Problem`](crate::problem::Problem)
//! and OAuth error renders its texts in it wherever it is built, deep in a handler or an
//! extractor, without the request being passed along. Outside a request (a test, a background
//! task) it is German, the default.
//!
//! Every answer with translated text says which language it is in: `Content-Language: de` or
//! `en` ([`mark`]), with `Vary: Accept-Language`, since the same request in another language
//! gets another text.

use std::future::Future;

use actix_web::http::header::{self, HeaderMap, HeaderValue};
use i18n::Lang;

tokio::task_local! {
    /// The language of the request being answered on this task.
    static CURRENT: Lang;
}

/// The language of the answers to a request with these headers: every `Accept-Language` line
/// counts (one list), lines that are not visible ASCII are ignored.
#[must_use]
pub fn of(headers: &HeaderMap) -> Lang {
    Lang::negotiate(
        headers
            .get_all(header::ACCEPT_LANGUAGE)
            .filter_map(|value| value.to_str().ok()),
    )
}

/// The language of the request being answered on this task; German outside a request.
#[must_use]
pub fn current() -> Lang {
    CURRENT.try_with(|lang| *lang).unwrap_or_default()
}

/// Runs `future` with `lang` as the [`current`] language.
pub async fn scope<F: Future>(lang: Lang, future: F) -> F::Output {
    CURRENT.scope(lang, future).await
}

/// Runs `f` with `lang` as the [`current`] language (for code that is not async, e.g. turning an
/// error into an answer).
pub fn sync_scope<R>(lang: Lang, f: impl FnOnce() -> R) -> R {
    CURRENT.sync_scope(lang, f)
}

/// Marks an answer whose texts are in `lang`: `Content-Language`, and `Vary: Accept-Language`
/// (added to any `Vary` already there).
pub fn mark(headers: &mut HeaderMap, lang: Lang) {
    headers.insert(
        header::CONTENT_LANGUAGE,
        HeaderValue::from_static(lang.tag()),
    );
    let varies = headers.get_all(header::VARY).any(|value| {
        value.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|name| name.trim().eq_ignore_ascii_case("accept-language"))
        })
    });
    if !varies {
        headers.append(header::VARY, HeaderValue::from_static("Accept-Language"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(
                header::ACCEPT_LANGUAGE,
                HeaderValue::from_str(value).unwrap_or_else(|_| unreachable!()),
            );
        }
        map
    }

    #[test]
    fn every_accept_language_line_counts() {
        assert_eq!(of(&headers(&[])), Lang::De);
        assert_eq!(of(&headers(&["en"])), Lang::En);
        assert_eq!(of(&headers(&["de;q=0.5", "en"])), Lang::En);
        assert_eq!(of(&headers(&["fr", "de"])), Lang::De);
    }

    #[test]
    fn a_line_that_is_not_visible_ascii_is_ignored() {
        let mut map = headers(&["en"]);
        map.append(
            header::ACCEPT_LANGUAGE,
            HeaderValue::from_bytes(b"de\xc3\xa4").unwrap_or_else(|_| unreachable!()),
        );
        assert_eq!(of(&map), Lang::En);
    }

    #[tokio::test]
    async fn the_current_language_is_the_scoped_one_and_german_outside() {
        assert_eq!(current(), Lang::De);
        assert_eq!(scope(Lang::En, async { current() }).await, Lang::En);
        assert_eq!(sync_scope(Lang::En, current), Lang::En);
        assert_eq!(current(), Lang::De);
    }

    #[test]
    fn mark_sets_the_language_and_varies_once() {
        let mut map = HeaderMap::new();
        map.insert(header::VARY, HeaderValue::from_static("Origin"));
        mark(&mut map, Lang::En);
        mark(&mut map, Lang::De);
        assert_eq!(map.get(header::CONTENT_LANGUAGE).unwrap(), "de");
        let vary: Vec<_> = map.get_all(header::VARY).collect();
        assert_eq!(vary, ["Origin", "Accept-Language"]);
    }
}
