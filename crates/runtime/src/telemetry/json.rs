//! The JSON line format of every log event: `timestamp`, `level`, the fields of the spans the
//! event is in (outermost first, so `role` then `request_id`), then `message` and the event's
//! own fields — one flat object per line.
//!
//! It plugs into tracing-subscriber's `fmt` layer (which owns span storage, the per-thread
//! buffer and the writer) as a [`FormatEvent`] and a [`FormatFields`]. Span fields are
//! formatted once, when the span is created, as a ready-to-paste JSON fragment
//! (`"role":"data-api"`), so an event only concatenates them. bench/http measured the
//! general-purpose JSON layers at ~25k instructions per line, half of a `/api` request; this
//! is a few thousand.

use std::fmt::{self, Write};
use std::time::SystemTime;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Formats a whole event as one JSON object per line; the timestamp is RFC 3339 UTC with
/// nanoseconds.
#[derive(Debug, Default)]
pub(super) struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        writer.write_str("{\"timestamp\":\"")?;
        write!(
            writer,
            "{}",
            humantime::format_rfc3339_nanos(SystemTime::now())
        )?;
        writer.write_str("\",\"level\":\"")?;
        writer.write_str(event.metadata().level().as_str())?;
        writer.write_char('"')?;
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                if let Some(fields) = extensions.get::<FormattedFields<N>>()
                    && !fields.fields.is_empty()
                {
                    writer.write_char(',')?;
                    writer.write_str(&fields.fields)?;
                }
            }
        }
        let mut visitor = FieldWriter::new(&mut writer, true);
        event.record(&mut visitor);
        visitor.result?;
        writer.write_str("}\n")
    }
}

/// Formats span fields as a JSON object's members without the braces, for [`JsonLines`].
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct JsonFields;

impl<'writer> FormatFields<'writer> for JsonFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut visitor = FieldWriter::new(&mut writer, false);
        fields.record(&mut visitor);
        visitor.result
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        // Members are joined by commas; the default joins them with a space.
        let leading_comma = !current.fields.is_empty();
        let mut writer = current.as_writer();
        let mut visitor = FieldWriter::new(&mut writer, leading_comma);
        fields.record(&mut visitor);
        visitor.result
    }
}

/// Writes each recorded field as `,"name":value`; the first without its comma unless
/// `comma` says a member precedes it.
struct FieldWriter<'a, 'w> {
    writer: &'a mut Writer<'w>,
    comma: bool,
    result: fmt::Result,
}

impl<'a, 'w> FieldWriter<'a, 'w> {
    fn new(writer: &'a mut Writer<'w>, comma: bool) -> Self {
        Self {
            writer,
            comma,
            result: Ok(()),
        }
    }

    fn member(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'w>) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        self.result = (|| {
            if self.comma {
                self.writer.write_char(',')?;
            }
            self.comma = true;
            self.writer.write_char('"')?;
            Escaped(self.writer).write_str(field.name())?;
            self.writer.write_str("\":")?;
            value(self.writer)
        })();
    }
}

impl Visit for FieldWriter<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.member(field, |w| {
            w.write_char('"')?;
            Escaped(w).write_str(value)?;
            w.write_char('"')
        });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%x` fields and the message arrive here; both are written as strings.
        self.member(field, |w| {
            w.write_char('"')?;
            write!(Escaped(w), "{value:?}")?;
            w.write_char('"')
        });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.member(field, |w| write!(w, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.member(field, |w| write!(w, "{value}"));
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.member(field, |w| write!(w, "{value}"));
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.member(field, |w| write!(w, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.member(field, |w| w.write_str(if value { "true" } else { "false" }));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinity.
        if value.is_finite() {
            self.member(field, |w| write!(w, "{value}"));
        } else {
            self.member(field, |w| w.write_str("null"));
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.member(field, |w| {
            w.write_char('"')?;
            write!(Escaped(w), "{value}")?;
            w.write_char('"')
        });
    }
}

/// A writer that escapes what it is given as the inside of a JSON string (RFC 8259 §7).
/// serde_json's escaper is only reachable through `io::Write`, and this sits on a
/// `fmt::Write`; runs that need no escape are written whole.
struct Escaped<'a, W: Write>(&'a mut W);

impl<W: Write> Write for Escaped<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Almost every string needs no escape: check in 16-byte chunks without an early exit,
        // which the compiler vectorises, and write it whole.
        let mut chunks = s.as_bytes().chunks(16);
        if !chunks.any(|c| c.iter().fold(false, |dirty, &b| dirty | needs_escape(b))) {
            return self.0.write_str(s);
        }
        let mut start = 0;
        for (i, byte) in s.bytes().enumerate() {
            if !needs_escape(byte) {
                continue;
            }
            self.0.write_str(&s[start..i])?;
            match byte {
                b'"' => self.0.write_str("\\\"")?,
                b'\\' => self.0.write_str("\\\\")?,
                b'\n' => self.0.write_str("\\n")?,
                b'\r' => self.0.write_str("\\r")?,
                b'\t' => self.0.write_str("\\t")?,
                _ => write!(self.0, "\\u{byte:04x}")?,
            }
            start = i + 1;
        }
        self.0.write_str(&s[start..])
    }
}

fn needs_escape(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(s: &str) -> String {
        let mut out = String::new();
        Escaped(&mut out).write_str(s).unwrap();
        out
    }

    #[test]
    fn escaping_round_trips_through_a_json_parser() {
        for s in [
            "plain",
            "quote \" backslash \\ slash /",
            "line\nfeed\rtab\tbell\u{7}nul\u{0}esc\u{1b}",
            "été 日本 🦀",
            "",
            "\u{1f}\u{20}\u{7f}",
        ] {
            let json = format!("\"{}\"", escaped(s));
            let back: String = serde_json::from_str(&json).unwrap();
            assert_eq!(back, s, "{json}");
        }
    }
}
