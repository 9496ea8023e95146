//! Fuzz harness of the token endpoint's request parsing: the form body, the HTTP Basic
//! `Authorization` header and every check `POST /oauth2/token` makes before it asks the client
//! store (through `auth::fuzzing`, which runs the endpoint's private parsers).
//!
//! Compiled twice: into the `vorgang-fuzz` crate for the `token_endpoint` target, and by
//! `crates/vorgang-server/tests/fuzz_seeds.rs` (`#[path]`), which replays the committed seeds on
//! stable Rust. So this file may use only crates both have: `auth`, `i18n`, `base64`, `url`.

use auth::clients::{MAX_CREDENTIAL_LEN, is_valid_scope_token};
use auth::fuzzing::{CheckedTokenRequest, check_token_request, parse_basic};
use auth::{OAuthError, TokenRequest};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Largest token request body the server passes on (`routes/token.rs`, `MAX_FORM_BYTES`).
pub const MAX_FORM_BYTES: usize = 4 * 1024;

/// One input: `AUTHORIZATION "\n" BODY`, or only `BODY` when there is no newline. The
/// `Authorization` value reaches the endpoint as the server hands it over: only when it is
/// visible ASCII (what `HeaderValue::to_str` accepts); the body is decoded with
/// [`auth::parse_form`] like the server does (a refusal there must be an RFC 6749 answer too),
/// and bodies over [`MAX_FORM_BYTES`] are refused before, as there.
///
/// Checks, besides "no panic": every refusal is one of the RFC 6749 answers with its status;
/// an accepted request names a non-empty client id within [`MAX_CREDENTIAL_LEN`] and only
/// well-formed, distinct scopes; HTTP Basic credentials survive encoding and decoding again.
/// The body is also decoded as if it were the (already base64-decoded) Basic credentials, so
/// the fuzzer reaches the urldecoding without first finding valid base64.
///
/// Returns whether the request passed the checks.
pub fn token_request(data: &[u8]) -> bool {
    let (header, body) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (Some(&data[..at]), &data[at + 1..]),
        None => (None, data),
    };
    let authorization = header
        .filter(|h| h.iter().all(|&b| b == b'\t' || (0x20..0x7f).contains(&b)))
        .and_then(|h| std::str::from_utf8(h).ok())
        .map(str::to_owned);

    if let Some(value) = &authorization {
        check_basic(value);
    }
    check_basic(&format!("Basic {}", STANDARD.encode(body)));

    if body.len() > MAX_FORM_BYTES {
        return false;
    }
    let form = match auth::parse_form(body) {
        Ok(form) => form,
        Err(error) => {
            check_refusal(&error);
            return false;
        }
    };
    let request = TokenRequest {
        authorization,
        form,
        remote_ip: None,
    };
    match check_token_request(&request) {
        Ok(checked) => {
            check_accepted(&request, &checked);
            true
        }
        Err(error) => {
            check_refusal(&error);
            false
        }
    }
}

fn check_accepted(request: &TokenRequest, checked: &CheckedTokenRequest) {
    assert!(!checked.client_id.is_empty(), "accepted an empty client id");
    assert!(
        checked.client_id.len() <= MAX_CREDENTIAL_LEN,
        "accepted an over-long client id"
    );
    let grant_types: Vec<&str> = request
        .form
        .iter()
        .filter(|(name, value)| name == "grant_type" && !value.is_empty())
        .map(|(_, value)| value.as_str())
        .collect();
    assert_eq!(
        grant_types,
        ["client_credentials"],
        "accepted another grant"
    );
    if let Some(scopes) = &checked.scope {
        assert!(!scopes.is_empty(), "an empty scope list instead of none");
        for (i, scope) in scopes.iter().enumerate() {
            assert!(is_valid_scope_token(scope), "accepted a malformed scope");
            assert!(!scopes[..i].contains(scope), "a scope twice");
        }
    }
    let basic = request
        .authorization
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty());
    if basic.is_none() {
        // client_secret_post: the id is the one non-empty client_id of the form.
        let ids: Vec<&str> = request
            .form
            .iter()
            .filter(|(name, value)| name == "client_id" && !value.is_empty())
            .map(|(_, value)| value.as_str())
            .collect();
        assert_eq!(
            ids,
            [checked.client_id.as_str()],
            "client id not from the form"
        );
    }
}

fn check_refusal(error: &OAuthError) {
    let expected_status = match error.error {
        "invalid_request" | "unsupported_grant_type" | "invalid_scope" => 400,
        "invalid_client" => 401,
        other => panic!("unexpected error code {other} before any store access"),
    };
    assert_eq!(error.status, expected_status, "status of {}", error.error);
    assert_eq!(
        error.www_authenticate.is_some(),
        error.status == 401,
        "WWW-Authenticate goes with 401 only"
    );
    for lang in i18n::Lang::ALL {
        assert_eq!(error.body(lang)["error"], error.error);
    }
}

/// Decodes `value` as HTTP Basic credentials; whatever decodes must encode and decode again to
/// the same id and secret.
fn check_basic(value: &str) {
    let Ok((id, secret)) = parse_basic(value) else {
        return;
    };
    assert!(!id.is_empty(), "Basic credentials with an empty id");
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let again = format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", encode(&id), encode(&secret)))
    );
    match parse_basic(&again) {
        Ok(decoded) => assert_eq!(decoded, (id, secret), "Basic round trip"),
        Err(error) => panic!("re-encoded Basic credentials refused: {error}"),
    }
}

/// The committed seeds of `token_endpoint`, `(file name, bytes)`: typical token requests, right
/// and wrong.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let basic =
        |id: &str, secret: &str| format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")));
    let id = "drk_5f0c2a9e4b7d41c38e6a0f1d2b3c4e5f";
    let secret = "s3cr3t-Zq8r%2BT0p~x";
    let grant = "grant_type=client_credentials";
    let seeds: Vec<(&str, String)> = vec![
        (
            "post",
            format!("\n{grant}&client_id={id}&client_secret={secret}"),
        ),
        (
            "post-no-newline",
            format!("{grant}&client_id={id}&client_secret={secret}"),
        ),
        (
            "post-scope",
            format!(
                "\n{grant}&scope=drkleinrk-api%2Fvorgang%3Aimport+other&client_id={id}&client_secret={secret}"
            ),
        ),
        ("basic", format!("{}\n{grant}", basic(id, secret))),
        (
            "basic-urlencoded",
            format!("{}\n{grant}&client_id={id}", basic("my%3Aid", "se+cr%25et")),
        ),
        (
            "basic-unpadded",
            format!(
                "basic {}\n{grant}&scope=drkleinrk-api/vorgang:import",
                STANDARD.encode(format!("{id}:x")).trim_end_matches('=')
            ),
        ),
        (
            "basic-and-post",
            format!("{}\n{grant}&client_secret={secret}", basic(id, secret)),
        ),
        (
            "basic-id-differs",
            format!("{}\n{grant}&client_id=other", basic(id, secret)),
        ),
        ("basic-malformed", format!("Basic !!!\n{grant}")),
        ("bearer-scheme", format!("Bearer abc.def.ghi\n{grant}")),
        (
            "grant-missing",
            format!("\nclient_id={id}&client_secret={secret}"),
        ),
        (
            "grant-password",
            "\ngrant_type=password&username=a&password=b".to_owned(),
        ),
        (
            "grant-repeated",
            format!("\n{grant}&{grant}&client_id={id}&client_secret={secret}"),
        ),
        (
            "empty-values",
            format!("\n{grant}&scope=&client_id={id}&client_secret={secret}&x=1&x=2"),
        ),
        (
            "secret-without-id",
            format!("\n{grant}&client_secret={secret}"),
        ),
        (
            "scope-malformed",
            format!("\n{grant}&scope=a%22b&client_id={id}&client_secret={secret}"),
        ),
        (
            "percent-broken",
            format!("\n{grant}&client_id=%zz%&client_secret=%C3%28"),
        ),
        (
            "id-too-long",
            format!("\n{grant}&client_id={}&client_secret=x", "a".repeat(300)),
        ),
        ("empty", String::new()),
    ];
    seeds
        .into_iter()
        .map(|(name, text)| (name.to_owned(), text.into_bytes()))
        .collect()
}
