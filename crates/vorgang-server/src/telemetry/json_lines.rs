//! The JSON line formatter: the lines `tracing_subscriber::fmt().json()` writes (with the
//! current span, without the span list), byte for byte except for the cost.
//!
//! Why our own: the stock formatter keeps a span's fields as a JSON *string*. Each
//! `Span::record` parses that string into a map and serialises it again, and each event parses
//! it once more to copy it into the line. A request records three fields into its span after it
//! started (`route`, `client_id`, `drkleinrkVorgangsnummer`) and writes two lines, so an import
//! paid for five parses and five serialisations of its span besides the lines themselves: about
//! 15 % of the service's CPU under issue 10's load went to logging at `info`
//! (docs/performance.md, round 4). Here a span keeps its fields as a sorted list of values that
//! are already JSON, so recording replaces one entry and an event copies bytes.
//!
//! The shape, which log pipelines and our tests rely on, is the stock one:
//!
//! ```json
//! {"timestamp":"2026-12-01T15:55:02.472352Z","level":"INFO",
//!  "fields":{"message":"import state stored","import":"…","from":"SENDING","to":"COMPLETED"},
//!  "target":"vorgang_core::resolver",
//!  "span":{"client_id":"…","method":"POST","request_id":"…","route":"/vorgang","trace_id":"…","name":"request"}}
//! ```
//!
//! - `timestamp`: UTC, RFC 3339 with microseconds; `level` in capitals; `target` of the event
//!   (for events forwarded from the `log` crate, the record's target).
//! - `fields`: the event's fields in the order of its call site, `message` first; strings and
//!   `Debug`/`Display` values as JSON strings, integers, floats and booleans as JSON numbers and
//!   booleans.
//! - `span`: the event's span (its explicit parent, else the current one), if any: its fields
//!   sorted by name (those not recorded yet are absent; `log.*` fields are left out, a raw
//!   identifier's `r#` is dropped), then its `name`.
//!
//! A unit test writes the same events through both formatters and compares the lines.

use std::cell::RefCell;
use std::fmt;
use std::io::Write as _;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_log::NormalizeEvent as _;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// The layer writing one JSON line per event to `W` (see the module documentation).
#[derive(Debug)]
pub struct JsonLines<W> {
    make_writer: W,
}

impl<W> JsonLines<W> {
    /// A layer writing to `make_writer` (stderr, a file, a test's capture).
    pub fn new(make_writer: W) -> Self {
        Self { make_writer }
    }
}

/// A span's fields, kept in its extensions: `(name, value as JSON)`, sorted by name.
#[derive(Debug, Default)]
struct SpanFields(Vec<(&'static str, Vec<u8>)>);

impl SpanFields {
    fn set(&mut self, name: &'static str, json: Vec<u8>) {
        match self.0.binary_search_by(|(known, _)| known.cmp(&name)) {
            Ok(at) => self.0[at].1 = json,
            Err(at) => self.0.insert(at, (name, json)),
        }
    }
}

/// Where a visitor puts the fields it is shown.
enum Fields<'a> {
    /// Into a span's sorted fields, as the stock JSON field formatter records them: `log.*`
    /// fields left out, a raw identifier's `r#` dropped.
    Span(&'a mut SpanFields),
    /// Appended to a line as the members of a JSON object, in call-site order.
    Event { out: &'a mut Vec<u8>, first: bool },
}

impl Fields<'_> {
    fn put(&mut self, field: &Field, value: &(impl serde::Serialize + ?Sized)) {
        match self {
            Self::Span(fields) => {
                let name = field.name();
                if name.starts_with("log.") {
                    return;
                }
                let name = name.strip_prefix("r#").unwrap_or(name);
                let mut json = Vec::new();
                if serde_json::to_writer(&mut json, value).is_ok() {
                    fields.set(name, json);
                }
            }
            Self::Event { out, first } => {
                if !*first {
                    out.push(b',');
                }
                *first = false;
                // Writing JSON into a Vec fails only for a value whose Serialize fails: a
                // Debug impl returning an error, which the stock formatter drops as well.
                let _ = serde_json::to_writer(&mut **out, field.name());
                out.push(b':');
                let _ = serde_json::to_writer(&mut **out, value);
            }
        }
    }
}

impl Visit for Fields<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, &value);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, &value);
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, &value);
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, &value);
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value);
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, &format_args!("{value:?}"));
    }
}

thread_local! {
    /// The line being written, reused by the thread's next event.
    static LINE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl<S, W> Layer<S> for JsonLines<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_new_span(&self, attributes: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = SpanFields::default();
        attributes.record(&mut Fields::Span(&mut fields));
        span.extensions_mut().insert(fields);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(fields) = extensions.get_mut::<SpanFields>() {
            values.record(&mut Fields::Span(fields));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        // For events forwarded from the `log` crate: the record's target, file and line.
        let normalized = event.normalized_metadata();
        let metadata = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let write = |line: &mut Vec<u8>| {
            line.clear();
            Self::format(event, metadata, &ctx, line);
            // A log line that cannot be written has nowhere to be reported.
            let _ = self.make_writer.make_writer_for(metadata).write_all(line);
        };
        // tracing drops an event raised while a thread is inside the subscriber, so the buffer
        // is free here; should it not be, the line gets a buffer of its own, not a panic.
        LINE.with(|cell| match cell.try_borrow_mut() {
            Ok(mut line) => {
                write(&mut line);
                if line.capacity() > 64 * 1024 {
                    *line = Vec::new();
                }
            }
            Err(_) => write(&mut Vec::new()),
        });
    }
}

impl<W> JsonLines<W> {
    /// Appends `event`'s line, newline included, to `out`; `metadata` is the event's,
    /// normalised.
    fn format<S>(
        event: &Event<'_>,
        metadata: &tracing::Metadata<'_>,
        ctx: &Context<'_, S>,
        out: &mut Vec<u8>,
    ) where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        out.extend_from_slice(b"{\"timestamp\":\"");
        out.extend_from_slice(now.as_bytes());
        out.extend_from_slice(b"\",\"level\":\"");
        out.extend_from_slice(metadata.level().as_str().as_bytes());
        out.extend_from_slice(b"\",\"fields\":{");
        event.record(&mut Fields::Event {
            out: &mut *out,
            first: true,
        });
        out.extend_from_slice(b"},\"target\":");
        let _ = serde_json::to_writer(&mut *out, metadata.target());
        let span = event
            .parent()
            .and_then(|id| ctx.span(id))
            .or_else(|| ctx.lookup_current());
        if let Some(span) = span {
            out.extend_from_slice(b",\"span\":{");
            if let Some(fields) = span.extensions().get::<SpanFields>() {
                for (name, json) in &fields.0 {
                    let _ = serde_json::to_writer(&mut *out, name);
                    out.push(b':');
                    out.extend_from_slice(json);
                    out.push(b',');
                }
            }
            out.extend_from_slice(b"\"name\":");
            let _ = serde_json::to_writer(&mut *out, span.metadata().name());
            out.push(b'}');
        }
        out.extend_from_slice(b"}\n");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;
    use crate::telemetry::tests::Captured;

    impl Captured {
        /// The lines written, each without its `timestamp` member (the one difference allowed).
        fn lines(&self) -> Vec<String> {
            let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
            text.lines()
                .map(|line| {
                    let (head, tail) = line.split_once("\",\"level\"").unwrap();
                    assert!(head.starts_with("{\"timestamp\":\""), "{line}");
                    let stamp = &head["{\"timestamp\":\"".len()..];
                    assert_eq!(stamp.len(), "2026-12-01T15:55:02.472352Z".len(), "{line}");
                    assert!(
                        chrono::DateTime::parse_from_rfc3339(stamp).is_ok(),
                        "{line}"
                    );
                    format!("{{\"level\"{tail}")
                })
                .collect()
        }
    }

    #[derive(Debug)]
    #[allow(dead_code)] // read through Debug only
    struct Thing {
        name: &'static str,
        list: Vec<u8>,
    }

    /// Events and spans of every kind of field, nested spans, fields recorded late, text that
    /// needs escaping.
    fn emit() {
        tracing::info!("no span, only a message");
        tracing::warn!(
            answer = 42_u64,
            negative = -7_i64,
            ratio = 0.25_f64,
            yes = true,
            "numbers"
        );
        tracing::error!(
            nan = f64::NAN,
            text = "quote \" backslash \\ newline \n tab \t bell \u{7} ümlaut ✓",
            "escapes"
        );
        let span = tracing::info_span!(
            "request",
            method = "POST",
            route = tracing::field::Empty,
            request_id = %"req-1",
            client_id = tracing::field::Empty,
            count = 3_u64,
        );
        let _entered = span.enter();
        tracing::info!(thing = ?Thing { name: "x\"y", list: vec![1, 2] }, shown = %"display", "debug and display");
        span.record("route", "/vorgang");
        span.record("client_id", tracing::field::display("drk_1"));
        tracing::info!(target: "custom::target", r#type = "raw", "after record");
        span.record("route", "/vorgang/{id}");
        {
            let inner = tracing::info_span!("inner", step = "two");
            let _inner = inner.enter();
            tracing::info!("in the inner span");
        }
        tracing::debug!(parent: &span, "explicit parent");
        tracing::info!(message = "message as a field", extra = 1_u64);
        tracing::info!(empty = "", "");
    }

    #[test]
    fn lines_are_those_of_the_stock_json_formatter() {
        let ours = Captured::default();
        let writer = ours.clone();
        let subscriber = tracing_subscriber::registry()
            .with(JsonLines::new(move || writer.clone()))
            .with(tracing_subscriber::filter::LevelFilter::DEBUG);
        tracing::subscriber::with_default(subscriber, emit);

        let stock = Captured::default();
        let writer = stock.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::DEBUG)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, emit);

        let (ours, stock) = (ours.lines(), stock.lines());
        assert_eq!(ours.len(), 9);
        for (ours, stock) in ours.iter().zip(&stock) {
            assert_eq!(ours, stock);
        }
        assert_eq!(ours, stock);
    }

    #[test]
    fn a_writer_that_logs_while_writing_does_not_break_the_line() {
        /// Logs an event of its own on its first write (tracing drops an event raised inside
        /// the subscriber; the line being written must come out whole all the same).
        #[derive(Clone)]
        struct Chatty(Captured, Arc<Mutex<bool>>);
        impl std::io::Write for Chatty {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                let first = std::mem::replace(&mut *self.1.lock().unwrap(), false);
                if first {
                    tracing::info!("from inside the writer");
                }
                self.0.write(buf)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let captured = Captured::default();
        let writer = Chatty(captured.clone(), Arc::new(Mutex::new(true)));
        let subscriber =
            tracing_subscriber::registry().with(JsonLines::new(move || writer.clone()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("outer");
            tracing::info!("second");
        });
        let lines = captured.lines();
        assert!(
            lines
                .iter()
                .any(|line| line.contains("\"message\":\"outer\"")),
            "{lines:?}"
        );
        assert!(
            lines.last().unwrap().contains("\"message\":\"second\""),
            "{lines:?}"
        );
    }
}
