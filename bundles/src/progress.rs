//! Progress reporting: machine-readable JSON lines (one [`Event`] per line, normally on stdout)
//! for the executor, and a human log through `tracing` (on stderr in `arcd worker`).
//!
//! Events, each a JSON object with an `event` field:
//! - `{"event":"start","template":"arc-file","artifact":"file a.bin"}`
//! - `{"event":"blob","digest":"sha256:…","bytes":123,"status":"copied"}` — one per blob or file
//!   moved (`status`: `copied`, `skipped` when the destination had it, `mounted`)
//! - `{"event":"progress","bytes":…,"blobs":…}` — running totals, at most once a second
//! - `{"event":"pushed","reference":"…","digest":"sha256:…"}` — a manifest, tag or object published
//! - `{"event":"digest_changed","from":"sha256:…","to":"sha256:…","reason":"…"}`
//! - `{"event":"summary","ok":true,"bytes":…,"blobs":…,"skipped":…,"pushed":[…],"duration_ms":…}`
//!   — always the last line; on failure `ok` is false and `error` holds `kind` and `message`.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{Error, ErrorKind};

/// Least time between two `progress` events.
const PROGRESS_INTERVAL_MILLIS: u64 = 1000;

/// What happened to a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BlobStatus {
    /// Bytes were transferred.
    Copied,
    /// The destination already had it.
    Skipped,
    /// The destination mounted it from another repository.
    Mounted,
}

/// Something published at the destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Pushed {
    /// Where: an image reference, an object URL, a file path.
    pub reference: String,
    /// Its digest (`sha256:…`).
    pub digest: String,
}

/// The error part of a failed summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorSummary {
    /// The error kind (`not_found`, `checksum_mismatch`, ...).
    pub kind: ErrorKind,
    /// The full message (kind, artifact, endpoint, reason).
    pub message: String,
}

/// One JSON progress line.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The pipeline starts.
    Start {
        /// Template name.
        template: String,
        /// Artifact description.
        artifact: String,
    },
    /// A blob or file was moved (or skipped).
    Blob {
        /// Its digest.
        digest: String,
        /// Its size.
        bytes: u64,
        /// What happened.
        status: BlobStatus,
    },
    /// Running totals.
    Progress {
        /// Bytes transferred so far.
        bytes: u64,
        /// Blobs completed so far.
        blobs: u64,
    },
    /// Something was published.
    Pushed(Pushed),
    /// An artifact's digest changed on the way (e.g. a platform subset of an index).
    DigestChanged {
        /// The source digest.
        from: String,
        /// The destination digest.
        to: String,
        /// Why.
        reason: String,
    },
    /// The final line.
    Summary(Summary),
}

/// The outcome of one pipeline run; also the `summary` event.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Whether the artifact arrived.
    pub ok: bool,
    /// Template name.
    pub template: String,
    /// Artifact description.
    pub artifact: String,
    /// Bytes transferred (skipped blobs not counted).
    pub bytes: u64,
    /// Blobs/files transferred or mounted.
    pub blobs: u64,
    /// Blobs the destination already had.
    pub skipped: u64,
    /// Everything published.
    pub pushed: Vec<Pushed>,
    /// Wall time.
    pub duration_ms: u64,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorSummary>,
}

#[derive(Default)]
struct Totals {
    template: String,
    artifact: String,
    bytes: u64,
    blobs: u64,
    skipped: u64,
    pushed: Vec<Pushed>,
    last_progress: Option<Instant>,
}

struct Inner {
    sink: Mutex<Box<dyn Write + Send>>,
    totals: Mutex<Totals>,
    started: Instant,
}

/// Reports progress as JSON lines and keeps the totals for the summary. Cheap to clone; safe to
/// use from parallel transfers.
#[derive(Clone)]
pub struct Reporter {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter").finish_non_exhaustive()
    }
}

impl Reporter {
    /// Writes JSON lines to `sink` (flushed after every line).
    pub fn new(sink: Box<dyn Write + Send>) -> Self {
        Self {
            inner: Arc::new(Inner {
                sink: Mutex::new(sink),
                totals: Mutex::new(Totals::default()),
                started: Instant::now(),
            }),
        }
    }

    /// Writes JSON lines to standard output.
    pub fn stdout() -> Self {
        Self::new(Box::new(std::io::stdout()))
    }

    /// Discards the JSON lines (totals are still kept).
    pub fn discard() -> Self {
        Self::new(Box::new(std::io::sink()))
    }

    /// Keeps the JSON lines in memory; read them with [`Captured::events`].
    pub fn capture() -> (Self, Captured) {
        let buffer = Captured::default();
        (Self::new(Box::new(buffer.clone())), buffer)
    }

    fn emit(&self, event: &Event) {
        let mut line = match serde_json::to_vec(event) {
            Ok(line) => line,
            Err(e) => {
                tracing::warn!("cannot encode progress event: {e}");
                return;
            }
        };
        line.push(b'\n');
        let mut sink = self.inner.sink.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = sink.write_all(&line).and_then(|()| sink.flush()) {
            tracing::warn!("cannot write progress event: {e}");
        }
    }

    fn totals(&self) -> std::sync::MutexGuard<'_, Totals> {
        self.inner.totals.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The pipeline starts (`start` event).
    pub fn start(&self, template: &str, artifact: &str) {
        {
            let mut t = self.totals();
            t.template = template.to_string();
            t.artifact = artifact.to_string();
        }
        tracing::info!("{template}: moving {artifact}");
        self.emit(&Event::Start {
            template: template.to_string(),
            artifact: artifact.to_string(),
        });
    }

    /// Counts `bytes` transferred so far (while a blob streams); emits a `progress` event at
    /// most once a second.
    pub fn add_bytes(&self, bytes: u64) {
        let event = {
            let mut t = self.totals();
            t.bytes += bytes;
            let due = t
                .last_progress
                .is_none_or(|at| at.elapsed() >= Duration::from_millis(PROGRESS_INTERVAL_MILLIS));
            if !due {
                return;
            }
            t.last_progress = Some(Instant::now());
            Event::Progress {
                bytes: t.bytes,
                blobs: t.blobs,
            }
        };
        self.emit(&event);
    }

    /// A blob or file is complete (`blob` event). Its bytes must already have been counted with
    /// [`Reporter::add_bytes`] when copied; skipped and mounted blobs count no bytes.
    pub fn blob(&self, digest: &str, bytes: u64, status: BlobStatus) {
        {
            let mut t = self.totals();
            match status {
                BlobStatus::Skipped => t.skipped += 1,
                BlobStatus::Copied | BlobStatus::Mounted => t.blobs += 1,
            }
        }
        tracing::info!(
            "blob {digest} ({bytes} bytes) {}",
            match status {
                BlobStatus::Copied => "copied",
                BlobStatus::Skipped => "already present, skipped",
                BlobStatus::Mounted => "mounted",
            }
        );
        self.emit(&Event::Blob {
            digest: digest.to_string(),
            bytes,
            status,
        });
    }

    /// Something was published at the destination (`pushed` event).
    pub fn pushed(&self, reference: &str, digest: &str) {
        let pushed = Pushed {
            reference: reference.to_string(),
            digest: digest.to_string(),
        };
        self.totals().pushed.push(pushed.clone());
        tracing::info!("published {reference} ({digest})");
        self.emit(&Event::Pushed(pushed));
    }

    /// The artifact's digest changed on the way (`digest_changed` event).
    pub fn digest_changed(&self, from: &str, to: &str, reason: &str) {
        tracing::info!("digest changed {from} -> {to}: {reason}");
        self.emit(&Event::DigestChanged {
            from: from.to_string(),
            to: to.to_string(),
            reason: reason.to_string(),
        });
    }

    /// The summary so far (without emitting it).
    pub fn summary(&self, error: Option<&Error>) -> Summary {
        let t = self.totals();
        Summary {
            ok: error.is_none(),
            template: t.template.clone(),
            artifact: t.artifact.clone(),
            bytes: t.bytes,
            blobs: t.blobs,
            skipped: t.skipped,
            pushed: t.pushed.clone(),
            duration_ms: u64::try_from(self.inner.started.elapsed().as_millis())
                .unwrap_or(u64::MAX),
            error: error.map(|e| ErrorSummary {
                kind: e.kind(),
                message: e.to_string(),
            }),
        }
    }

    /// Emits the final `summary` event and returns it.
    pub fn finish(&self, error: Option<&Error>) -> Summary {
        let summary = self.summary(error);
        self.emit(&Event::Summary(summary.clone()));
        summary
    }
}

/// JSON lines kept in memory by [`Reporter::capture`].
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Every event written so far, parsed.
    pub fn events(&self) -> Vec<serde_json::Value> {
        let bytes = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(|l| serde_json::from_str(l).expect("progress lines are JSON"))
            .collect()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_json_lines_and_summary_totals() {
        let (r, captured) = Reporter::capture();
        r.start("arc-file", "file a");
        r.add_bytes(10);
        r.add_bytes(5);
        r.blob("sha256:ab", 15, BlobStatus::Copied);
        r.blob("sha256:cd", 7, BlobStatus::Skipped);
        r.pushed("dir:/x/a", "sha256:ab");
        let s = r.finish(None);
        assert_eq!((s.bytes, s.blobs, s.skipped, s.pushed.len()), (15, 1, 1, 1));
        let events = captured.events();
        let names: Vec<_> = events
            .iter()
            .map(|e| e["event"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            names,
            ["start", "progress", "blob", "blob", "pushed", "summary"]
        );
        assert_eq!(events[2]["digest"], "sha256:ab");
        assert_eq!(events[2]["bytes"], 15);
        assert_eq!(events[5]["ok"], true);
        assert_eq!(events[5]["pushed"][0]["reference"], "dir:/x/a");
    }

    #[test]
    fn failed_summary_carries_the_error() {
        let (r, captured) = Reporter::capture();
        let e = Error::new(ErrorKind::ChecksumMismatch, "x").with_artifact("file a");
        r.finish(Some(&e));
        let last = captured.events().pop().unwrap();
        assert_eq!(last["ok"], false);
        assert_eq!(last["error"]["kind"], "checksum_mismatch");
    }
}
