//! W3C Trace Context (`traceparent`): which distributed trace a Europace call belongs to.
//!
//! A partner (or its gateway) may send `traceparent: 00-<trace-id>-<parent-id>-<flags>` with its
//! request; every Europace call made for that request then continues the same trace: same
//! trace-id, a new parent-id (span-id) per outbound call, the `sampled` flag kept. Without one the
//! service starts a new trace. Only the trace-id and the flag travel through the core: span ids
//! are made per call by the adapter that sends it ([`TraceContext::traceparent`]).
//!
//! [`Importer::submit`](crate::Importer::submit) makes the context of its
//! [`NewImport`](crate::NewImport) the one every [`TraceId`](crate::TraceId) of that request carries
//! ([`TraceId::for_import`](crate::TraceId::for_import)), through a Tokio task-local: the steps of
//! an import build their trace ids deep inside the use case, and threading the context through
//! every step would change every internal signature for one value that never changes within a
//! request. An import driven outside a request (the background resume) has its trace derived from
//! its own id instead, so all of its calls still share one trace.

use std::future::Future;

use uuid::Uuid;

/// The `sampled` bit of the W3C `trace-flags`.
const SAMPLED: u8 = 0x01;

/// The trace a request belongs to: a W3C trace-id and whether the caller samples (records) it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceContext {
    trace_id: [u8; 16],
    sampled: bool,
}

tokio::task_local! {
    /// The trace of the request [`Importer::submit`](crate::Importer::submit) is driving.
    static REQUEST_TRACE: TraceContext;
}

impl TraceContext {
    /// The context of a W3C `traceparent` header value, or `None` when it is not one (then the
    /// caller starts a new trace, as the W3C recommendation says).
    ///
    /// Accepts version `00` exactly (55 characters) and, as the recommendation asks, a higher
    /// version by its first four fields; refuses version `ff`, upper-case or non-hex digits, an
    /// all-zero trace-id or parent-id, and anything of another shape.
    #[must_use]
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim_matches([' ', '\t']);
        let bytes = value.as_bytes();
        // ASCII only, so the byte positions below are character boundaries.
        if bytes.len() < 55 || !value.is_ascii() {
            return None;
        }
        let version = hex_bytes::<1>(&value[0..2])?[0];
        if version == 0xff || (version == 0 && bytes.len() != 55) {
            return None;
        }
        if bytes.len() > 55 && bytes[55] != b'-' {
            return None;
        }
        if bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
            return None;
        }
        let trace_id = hex_bytes::<16>(&value[3..35])?;
        let parent_id = hex_bytes::<8>(&value[36..52])?;
        let flags = hex_bytes::<1>(&value[53..55])?[0];
        if trace_id == [0; 16] || parent_id == [0; 8] {
            return None;
        }
        Some(Self {
            trace_id,
            sampled: flags & SAMPLED != 0,
        })
    }

    /// A new trace with a random trace-id, not sampled (this service records no spans).
    #[must_use]
    pub fn new_root() -> Self {
        Self {
            trace_id: *Uuid::new_v4().as_bytes(),
            sampled: false,
        }
    }

    /// The trace of an import driven outside a request: its trace-id is the import's id, so the
    /// calls of one import share one trace, found by our Vorgangsnummer.
    #[must_use]
    pub fn for_import(id: Uuid) -> Self {
        Self {
            trace_id: *id.as_bytes(),
            sampled: false,
        }
    }

    /// The trace-id as 32 lower-case hex digits.
    #[must_use]
    pub fn trace_id(&self) -> String {
        hex(&self.trace_id)
    }

    /// Whether the caller asked for the trace to be recorded (`trace-flags` bit 0).
    #[must_use]
    pub const fn sampled(&self) -> bool {
        self.sampled
    }

    /// The `traceparent` header value of an outbound call in this trace whose own span id is
    /// `span_id` (8 bytes, not all zero: each call makes a new random one).
    #[must_use]
    pub fn traceparent(&self, span_id: [u8; 8]) -> String {
        format!(
            "00-{}-{}-{:02x}",
            self.trace_id(),
            hex(&span_id),
            u8::from(self.sampled)
        )
    }

    /// Runs `future` with `trace` (if any) as the context [`TraceContext::current`] answers: the
    /// request's trace while [`Importer::submit`](crate::Importer::submit) drives it.
    pub(crate) async fn within<F: Future>(trace: Option<Self>, future: F) -> F::Output {
        match trace {
            Some(trace) => REQUEST_TRACE.scope(trace, future).await,
            None => future.await,
        }
    }

    /// The context of the request being driven on this task, if any.
    pub(crate) fn current() -> Option<Self> {
        REQUEST_TRACE.try_with(|trace| *trace).ok()
    }
}

/// Lower-case hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut out, byte| {
        let _ = write!(out, "{byte:02x}");
        out
    })
}

/// `N` bytes from exactly `2 * N` lower-case hex digits.
fn hex_bytes<const N: usize>(text: &str) -> Option<[u8; N]> {
    let digits = text.as_bytes();
    if digits.len() != 2 * N {
        return None;
    }
    let nibble = |digit: u8| match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn parses_the_recommendation_example_and_continues_it() {
        let context = TraceContext::parse(EXAMPLE);
        assert_eq!(
            context.map(|c| (c.trace_id(), c.sampled())),
            Some(("0af7651916cd43dd8448eb211c80319c".to_owned(), true))
        );
        let next = context.map(|c| c.traceparent([0, 0, 0, 0, 0, 0, 0, 42]));
        assert_eq!(
            next.as_deref(),
            Some("00-0af7651916cd43dd8448eb211c80319c-000000000000002a-01")
        );
        // Surrounding blanks (optional whitespace of a header) are fine; flags keep only sampled.
        let unsampled = TraceContext::parse(&format!(" {}\t", EXAMPLE.replace("-01", "-02")));
        assert_eq!(unsampled.map(|c| c.sampled()), Some(false));
    }

    #[test]
    fn a_future_version_is_read_by_its_first_fields() {
        let future = format!("cc{}-what-comes-later", &EXAMPLE[2..]);
        assert!(TraceContext::parse(&future).is_some());
        assert!(TraceContext::parse(&format!("cc{}", &EXAMPLE[2..])).is_some());
        assert!(TraceContext::parse(&format!("cc{}x", &EXAMPLE[2..])).is_none());
    }

    #[test]
    fn refuses_what_is_not_a_traceparent() {
        for bad in [
            "",
            "00",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            "00_0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319g-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0x",
            "0-00af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn new_traces_differ_and_an_import_trace_is_its_id() {
        assert_ne!(TraceContext::new_root(), TraceContext::new_root());
        let id = Uuid::from_u128(0x0af7_6519_16cd_43dd_8448_eb21_1c80_319c);
        assert_eq!(
            TraceContext::for_import(id).trace_id(),
            "0af7651916cd43dd8448eb211c80319c"
        );
    }

    #[tokio::test]
    async fn the_request_trace_is_current_only_within() {
        let trace = TraceContext::parse(EXAMPLE);
        assert_eq!(TraceContext::current(), None);
        let seen = TraceContext::within(trace, async { TraceContext::current() }).await;
        assert_eq!(seen, trace);
        assert_eq!(TraceContext::current(), None);
    }
}
