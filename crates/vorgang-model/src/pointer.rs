//! JSON pointers into a request body, and the violation reported at one.
//!
//! Both the strict parser (a duplicate key) and the validator (every rule) name the place of a
//! failure with an RFC 6901 pointer. A pointer is built from partner input (member names), so the
//! rendering decides what may be quoted: see [`is_nameable`].

use std::cmp::Ordering;

use i18n::Invalid;

/// One validation failure: where, and what is wrong — never the submitted value.
///
/// `detail` is a message id of the catalogue with its parameters (a limit, the allowed values),
/// not a text: the server renders it in the language of the answer
/// (`detail.text(Lang::De)` is `ist erforderlich`, `detail.text(Lang::En)` is `required`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON pointer (RFC 6901) into the request body, e.g. `/tippgeber/vorname`.
    pub pointer: String,
    /// What is wrong, without quoting the value, e.g. [`Invalid::Required`],
    /// [`Invalid::NotOneOf`] with `HERR, FRAU`.
    pub detail: Invalid,
}

/// Longest member name that an error pointer or a warning may quote.
const MAX_NAMEABLE_KEY_LEN: usize = 64;

/// Member names of our contract that are not identifiers but may be named all the same: they are
/// ours (documented in the partner guide), so quoting them reveals nothing the partner sent.
const CONTRACT_NAMES: &[&str] = &["vertriebsschlüssel"];

/// One step of a path into the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seg<'a> {
    /// A member named by the contract itself (e.g. a required field that is missing): always
    /// named.
    Key(&'a str),
    /// A member as the partner submitted it, with its 0-based position among the members of
    /// its object. Named only if [`is_nameable`], else rendered as `#position`.
    Member(&'a str, usize),
    /// An array element.
    Index(usize),
}

/// Whether a submitted member name may appear in an error pointer or a warning: an identifier
/// (1 to 64 ASCII letters, digits or `_`) or one of the contract's own names.
///
/// A member name is partner input like any value: it may hold a name, an e-mail address or
/// anything else (`{"Erika Mustermann": …}`), and docs/reference/http-api.md §1 forbids echoing
/// submitted data.
/// Identifiers cannot carry such data in a recognisable way and keep pointers readable for the
/// fields a partner really sends.
pub(crate) fn is_nameable(key: &str) -> bool {
    let identifier = !key.is_empty()
        && key.len() <= MAX_NAMEABLE_KEY_LEN
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    identifier || CONTRACT_NAMES.contains(&key)
}

/// The RFC 6901 JSON pointer of a path (`~` as `~0`, `/` as `~1`).
///
/// A submitted member whose name is not [`is_nameable`] appears as `#` and its 0-based position
/// in its object: `{"vorgang": {"a": 1, "Erika Mustermann": 2}}` names the second member
/// `/vorgang/#1`. `#` is an ordinary character in a JSON pointer, and no nameable member starts
/// with it, so such a segment always means a position. Both the 422 `errors[].pointer`s and the
/// `WARN unknown-field` messages use this rendering.
pub(crate) fn pointer_of(path: &[Seg<'_>]) -> String {
    fn push_escaped(out: &mut String, key: &str) {
        for c in key.chars() {
            match c {
                '~' => out.push_str("~0"),
                '/' => out.push_str("~1"),
                c => out.push(c),
            }
        }
    }
    let mut out = String::new();
    for seg in path {
        out.push('/');
        match *seg {
            Seg::Key(key) => push_escaped(&mut out, key),
            Seg::Member(key, _) if is_nameable(key) => push_escaped(&mut out, key),
            Seg::Member(_, position) => {
                out.push('#');
                out.push_str(&position.to_string());
            }
            Seg::Index(i) => out.push_str(&i.to_string()),
        }
    }
    out
}

/// Orders JSON pointers segment by segment, array indexes and member positions numerically
/// (`/a/2` before `/a/10`, `/a/#2` before `/a/#10`).
pub(crate) fn cmp_pointers(a: &str, b: &str) -> Ordering {
    let mut left = a.split('/');
    let mut right = b.split('/');
    loop {
        match (left.next(), right.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                // Array indexes and member positions (`#3`) sort numerically.
                let number = |seg: &str| seg.strip_prefix('#').unwrap_or(seg).parse::<u64>();
                let order = match (number(x), number(y)) {
                    (Ok(m), Ok(n)) => m.cmp(&n).then_with(|| x.cmp(y)),
                    _ => x.cmp(y),
                };
                if order != Ordering::Equal {
                    return order;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_escape_tilde_and_slash_in_contract_names() {
        assert_eq!(pointer_of(&[]), "");
        assert_eq!(
            pointer_of(&[
                Seg::Key("a/b"),
                Seg::Index(3),
                Seg::Key("m~n"),
                Seg::Key("")
            ]),
            "/a~1b/3/m~0n/"
        );
    }

    #[test]
    fn submitted_names_are_quoted_only_if_identifiers() {
        let long = "a".repeat(64);
        let too_long = "a".repeat(65);
        for (name, expected) in [
            ("antragsteller1", "antragsteller1"),
            ("snake_Case_09", "snake_Case_09"),
            (long.as_str(), long.as_str()),
            ("vertriebsschlüssel", "vertriebsschlüssel"),
            (too_long.as_str(), "#7"),
            ("", "#7"),
            ("Erika Mustermann", "#7"),
            ("erika@example.org", "#7"),
            ("a/b", "#7"),
            ("x~y", "#7"),
            ("#3", "#7"),
            ("straße", "#7"),
            ("a-b", "#7"),
            ("nul\0", "#7"),
        ] {
            assert_eq!(
                pointer_of(&[Seg::Key("vorgang"), Seg::Member(name, 7)]),
                format!("/vorgang/{expected}"),
                "{name:?}"
            );
        }
    }

    #[test]
    fn positions_sort_numerically() {
        let mut pointers = vec!["/a/#10", "/a/#2", "/a/b"];
        pointers.sort_by(|a, b| cmp_pointers(a, b));
        assert_eq!(pointers, ["/a/#2", "/a/#10", "/a/b"]);
    }

    #[test]
    fn pointers_sort_indexes_numerically() {
        let mut pointers = vec!["/b", "/a/10", "/a/2/x", "/a/2", "/a", "", "/a/b"];
        pointers.sort_by(|a, b| cmp_pointers(a, b));
        assert_eq!(
            pointers,
            ["", "/a", "/a/2", "/a/2/x", "/a/10", "/a/b", "/b"]
        );
    }
}
