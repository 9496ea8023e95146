//! The language of an answer, chosen from the request's `Accept-Language` (RFC 9110 §12.5.4).

/// A language the service answers in: German, the language of the partner documentation and the
/// default, or English on request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Lang {
    /// German (`de`): the default.
    #[default]
    De,
    /// English (`en`).
    En,
}

/// A weight in thousandths: `q=0.5` is 500, `q=1` (or no `q`) is 1000.
type Weight = u16;

/// The best weight a language got so far, and the position of the range that gave it (an earlier
/// range wins a tie).
#[derive(Debug, Clone, Copy)]
struct Score {
    weight: Weight,
    position: usize,
}

impl Score {
    /// Whether `self` beats `other`: a higher weight, or the same weight from an earlier range.
    fn beats(self, other: Self) -> bool {
        self.weight > other.weight
            || (self.weight == other.weight && self.position < other.position)
    }
}

impl Lang {
    /// Every language, the default first.
    pub const ALL: [Self; 2] = [Self::De, Self::En];

    /// The language tag, as sent in `Content-Language`: `de` or `en`.
    #[must_use]
    pub const fn tag(self) -> &'static str {
        match self {
            Self::De => "de",
            Self::En => "en",
        }
    }

    /// The language an answer is given in, from the values of the request's `Accept-Language`
    /// headers (all of them, as one list: HTTP allows a list header to be split over several
    /// lines). English when the request prefers it, German otherwise.
    ///
    /// Each language range (RFC 4647 basic range, e.g. `en`, `en-US`, `*`) carries an optional
    /// weight `q` (0 to 1, three decimals at most; absent is 1). A range counts for the language
    /// of its primary subtag (`en-GB` asks for English, and English is what we have); `*` counts
    /// for every language no range names. A language's weight is the highest of the ranges that
    /// name it, so `en;q=0` refuses English even next to `*`. The language with the highest
    /// weight above 0 wins; on a tie, the one named first (`en, de` is English), and German when
    /// both got it from `*` alone. No acceptable language at all (`fr`, an empty or a malformed
    /// header): German. A malformed entry (a bad range or a bad weight) is skipped, the rest of
    /// the list still counts.
    ///
    /// ```
    /// use i18n::Lang;
    ///
    /// assert_eq!(Lang::negotiate(["en-US,en;q=0.9,de;q=0.8"]), Lang::En);
    /// assert_eq!(Lang::negotiate(["de, en;q=0.5"]), Lang::De);
    /// assert_eq!(Lang::negotiate(["fr"]), Lang::De);
    /// assert_eq!(Lang::negotiate(["*"]), Lang::De);
    /// assert_eq!(Lang::negotiate([]), Lang::De);
    /// ```
    pub fn negotiate<'a>(accept_language: impl IntoIterator<Item = &'a str>) -> Self {
        // Per language (in the order of `ALL`) the best score of a range naming it; then `*`.
        let mut named: [Option<Score>; 2] = [None, None];
        let mut wildcard: Option<Score> = None;
        let entries = accept_language
            .into_iter()
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .filter(|entry| !entry.is_empty());
        for (position, entry) in entries.enumerate() {
            let Some((range, weight)) = parse_entry(entry) else {
                continue;
            };
            let score = Score { weight, position };
            let slot = if range == "*" {
                &mut wildcard
            } else {
                let primary = range.split('-').next().unwrap_or(range);
                match Self::ALL
                    .iter()
                    .position(|lang| primary.eq_ignore_ascii_case(lang.tag()))
                {
                    Some(index) => &mut named[index],
                    None => continue,
                }
            };
            if slot.is_none_or(|best| score.beats(best)) {
                *slot = Some(score);
            }
        }
        let mut chosen: Option<(Score, Self)> = None;
        for (index, lang) in Self::ALL.into_iter().enumerate() {
            // A range naming the language decides over `*`, also when it refuses it (q=0).
            let Some(score) = named[index].or(wildcard) else {
                continue;
            };
            if score.weight == 0 {
                continue;
            }
            // `ALL` lists German first: on a complete tie (both from `*`) it stays chosen.
            if chosen.is_none_or(|(best, _)| score.beats(best)) {
                chosen = Some((score, lang));
            }
        }
        chosen.map_or(Self::default(), |(_, lang)| lang)
    }
}

/// One entry of the list: its language range and its weight, or `None` if it is malformed.
fn parse_entry(entry: &str) -> Option<(&str, Weight)> {
    let mut parts = entry.split(';');
    let range = parts.next()?.trim();
    if !is_language_range(range) {
        return None;
    }
    let mut weight = 1000;
    for parameter in parts {
        let parameter = parameter.trim();
        let (name, value) = parameter.split_once('=')?;
        if name.trim().eq_ignore_ascii_case("q") {
            weight = parse_qvalue(value.trim())?;
        }
        // RFC 9110 defines no other parameter for Accept-Language: ignored.
    }
    Some((range, weight))
}

/// RFC 4647 §2.1 basic language range: `*`, or 1 to 8 letters followed by any number of `-` and
/// 1 to 8 letters or digits.
fn is_language_range(range: &str) -> bool {
    if range == "*" {
        return true;
    }
    let mut subtags = range.split('-');
    let primary_ok = subtags
        .next()
        .is_some_and(|s| (1..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphabetic()));
    primary_ok
        && subtags
            .all(|s| (1..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// RFC 9110 §12.4.2 `qvalue`: `0` to `1` with at most three decimals, in thousandths.
fn parse_qvalue(text: &str) -> Option<Weight> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0, |n: Weight, digit| n * 10 + Weight::from(digit - b'0'));
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lang(header: &str) -> Lang {
        Lang::negotiate([header])
    }

    #[test]
    fn the_examples_of_the_contract() {
        assert_eq!(lang("en-US,en;q=0.9,de;q=0.8"), Lang::En);
        assert_eq!(lang("de, en;q=0.5"), Lang::De);
        assert_eq!(lang("fr"), Lang::De);
        assert_eq!(lang("*"), Lang::De);
    }

    #[test]
    fn quality_values_decide() {
        for (header, expected) in [
            ("en", Lang::En),
            ("EN", Lang::En),
            ("en-GB", Lang::En),
            ("de-CH", Lang::De),
            ("de;q=0.4, en;q=0.5", Lang::En),
            ("de;q=0.5, en;q=0.4", Lang::De),
            ("de;q=0.999, en", Lang::En),
            ("en;q=0.001", Lang::En),
            ("en;q=0", Lang::De),
            ("en;q=0.000", Lang::De),
            ("en;Q=0.7", Lang::En),
            ("en ; q=0.7", Lang::En),
            ("fr;q=1, en;q=0.1", Lang::En),
            ("fr, de;q=0.1, en;q=0.2", Lang::En),
            ("en-US;q=0.2, en;q=0.9, de;q=0.5", Lang::En),
            ("de;q=0, en;q=0", Lang::De),
        ] {
            assert_eq!(lang(header), expected, "{header}");
        }
    }

    #[test]
    fn ties_go_to_the_language_named_first() {
        assert_eq!(lang("en, de"), Lang::En);
        assert_eq!(lang("de, en"), Lang::De);
        assert_eq!(lang("en;q=0.5, de;q=0.5"), Lang::En);
        assert_eq!(lang("de;q=0.5, en;q=0.5"), Lang::De);
    }

    #[test]
    fn the_wildcard_counts_for_languages_no_range_names() {
        assert_eq!(lang("*;q=0.5, en"), Lang::En);
        assert_eq!(lang("en;q=0.5, *"), Lang::De);
        assert_eq!(lang("en, *"), Lang::En);
        assert_eq!(lang("de;q=0, *"), Lang::En);
        assert_eq!(lang("en;q=0, *"), Lang::De);
        assert_eq!(lang("*;q=0"), Lang::De);
        assert_eq!(lang("fr, *;q=0.1"), Lang::De);
    }

    #[test]
    fn several_header_lines_are_one_list() {
        assert_eq!(Lang::negotiate(["de;q=0.5", "en"]), Lang::En);
        assert_eq!(Lang::negotiate(["en;q=0.5", "de"]), Lang::De);
        assert_eq!(Lang::negotiate(["", "en"]), Lang::En);
    }

    #[test]
    fn malformed_entries_are_skipped_and_nothing_acceptable_is_german() {
        for (header, expected) in [
            ("", Lang::De),
            (",,,", Lang::De),
            ("en;q=2", Lang::De),
            ("en;q=1.5", Lang::De),
            ("en;q=0.5555", Lang::De),
            ("en;q=-1", Lang::De),
            ("en;q=", Lang::De),
            ("en;q", Lang::De),
            ("en;q=abc", Lang::De),
            ("en;q=1.001", Lang::De),
            ("englishplease", Lang::De),
            ("en_US", Lang::De),
            ("e n", Lang::De),
            ("en-", Lang::De),
            ("-en", Lang::De),
            ("ü", Lang::De),
            ("en;q=oops, en;q=0.3", Lang::En),
            ("garbage, en", Lang::En),
            ("en;q=1.000", Lang::En),
            ("en;q=1.", Lang::En),
            ("en;q=0.", Lang::De),
            ("en;level=1", Lang::En),
        ] {
            assert_eq!(lang(header), expected, "{header:?}");
        }
    }

    #[test]
    fn qvalues_parse_to_thousandths() {
        assert_eq!(parse_qvalue("1"), Some(1000));
        assert_eq!(parse_qvalue("0.5"), Some(500));
        assert_eq!(parse_qvalue("0.05"), Some(50));
        assert_eq!(parse_qvalue("0.125"), Some(125));
        assert_eq!(parse_qvalue("0"), Some(0));
        assert_eq!(parse_qvalue("1.1"), None);
        assert_eq!(parse_qvalue("01"), None);
        assert_eq!(parse_qvalue(".5"), None);
        assert_eq!(parse_qvalue("0.5x"), None);
    }

    #[test]
    fn tags() {
        assert_eq!(Lang::De.tag(), "de");
        assert_eq!(Lang::En.tag(), "en");
        assert_eq!(Lang::default(), Lang::De);
    }
}
