//! Log output: journald with structured fields when started by systemd, human-readable lines on
//! a terminal, JSON lines on request.
//!
//! Code logs the objects it works on as fields named `order`, `artifact`, `endpoint` and
//! `namespace` (e.g. `tracing::info!(namespace = %ns, order = %name, "...")`); the journald
//! output turns them into the journal fields `ORDER`, `ARTIFACT`, `ENDPOINT` and `NAMESPACE`, so
//! `journalctl -u arcd ORDER=nightly` finds every line about one Order.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogFormat, LogSettings};

/// The output actually chosen (after resolving `auto`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogOutput {
    /// Native journald entries.
    Journald,
    /// Text lines on stderr.
    Text,
    /// JSON lines on stderr.
    Json,
}

/// Resolves `auto`: journald when stderr is connected to the journal (`JOURNAL_STREAM` set, as
/// systemd does for services), text otherwise.
pub fn resolve(format: LogFormat) -> LogOutput {
    match format {
        LogFormat::Journald => LogOutput::Journald,
        LogFormat::Text => LogOutput::Text,
        LogFormat::Json => LogOutput::Json,
        LogFormat::Auto if std::env::var_os("JOURNAL_STREAM").is_some() => LogOutput::Journald,
        LogFormat::Auto => LogOutput::Text,
    }
}

/// Installs the global subscriber. `RUST_LOG`, when set, overrides the configured level.
/// If journald cannot be reached, falls back to text on stderr and says so.
pub fn init(settings: &LogSettings) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|directives| EnvFilter::builder().parse(directives).ok())
        .unwrap_or_else(|| EnvFilter::builder().parse_lossy(&settings.level));
    let output = resolve(settings.format);
    let registry = tracing_subscriber::registry().with(filter);
    let result = match output {
        LogOutput::Journald => match tracing_journald::layer() {
            Ok(layer) => registry
                .with(
                    layer
                        .with_field_prefix(None)
                        .with_syslog_identifier("arcd".to_string()),
                )
                .try_init(),
            Err(error) => {
                let result = registry.with(text_layer()).try_init();
                tracing::warn!(%error, "journald is not reachable; logging to stderr");
                result
            }
        },
        LogOutput::Text => registry.with(text_layer()).try_init(),
        LogOutput::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr)
                    .with_current_span(false),
            )
            .try_init(),
    };
    // A second init (tests, or a command that already logged) keeps the first subscriber.
    let _ = result;
}

fn text_layer<S>() -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    use std::io::IsTerminal;
    tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_formats_are_kept() {
        assert_eq!(resolve(LogFormat::Json), LogOutput::Json);
        assert_eq!(resolve(LogFormat::Text), LogOutput::Text);
        assert_eq!(resolve(LogFormat::Journald), LogOutput::Journald);
    }
}
