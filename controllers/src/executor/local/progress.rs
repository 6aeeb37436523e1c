//! Reads the worker's progress: one JSON object per stdout line, with an `event` field
//! (`start`, `blob`, `progress`, `pushed`, `digest_changed`, `summary`; defined by the data
//! plane). What can be parsed is kept — bytes moved, digests pushed, the final verdict and
//! error message; anything else on stdout is ignored.

use serde_json::Value;

/// Most digests kept for one workflow's status.
pub const PUSHED_DIGESTS_MAX: usize = 1000;

/// What the worker reported so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// Bytes transferred.
    pub bytes: Option<u64>,
    /// Digests pushed or copied to the destination, in order, without repeats.
    pub pushed_digests: Vec<String>,
    /// The summary's verdict, once the summary arrived.
    pub ok: Option<bool>,
    /// The summary's error message, if it failed.
    pub error_message: Option<String>,
}

impl Progress {
    fn add_digest(&mut self, digest: &str) {
        if digest.is_empty() || self.pushed_digests.len() >= PUSHED_DIGESTS_MAX {
            return;
        }
        if !self.pushed_digests.iter().any(|d| d == digest) {
            self.pushed_digests.push(digest.to_string());
        }
    }

    /// Takes one stdout line into account; returns whether it was a progress event.
    pub fn observe(&mut self, line: &str) -> bool {
        let Ok(Value::Object(event)) = serde_json::from_str::<Value>(line.trim()) else {
            return false;
        };
        let kind = event
            .get("event")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let bytes = event.get("bytes").and_then(Value::as_u64);
        let digest = event.get("digest").and_then(Value::as_str);
        match kind {
            "progress" => {
                if let Some(b) = bytes {
                    self.bytes = Some(self.bytes.unwrap_or(0).max(b));
                }
            }
            "blob" => {
                let status = event
                    .get("status")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if matches!(status, "copied" | "mounted") {
                    self.add_digest(digest.unwrap_or_default());
                }
            }
            "pushed" => self.add_digest(digest.unwrap_or_default()),
            "summary" => {
                if let Some(b) = bytes {
                    self.bytes = Some(b);
                }
                for pushed in event
                    .get("pushed")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    self.add_digest(
                        pushed
                            .get("digest")
                            .and_then(Value::as_str)
                            .unwrap_or_default(),
                    );
                }
                self.ok = event.get("ok").and_then(Value::as_bool);
                self.error_message = event
                    .get("error")
                    .and_then(|e| e.get("message"))
                    .and_then(Value::as_str)
                    .map(str::to_string);
            }
            "start" | "digest_changed" => {}
            _ => return false,
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_bytes_digests_and_the_verdict() {
        let mut p = Progress::default();
        let lines = [
            r#"{"event":"start","template":"arc-oci","artifact":"image a"}"#,
            r#"{"event":"blob","digest":"sha256:aa","bytes":10,"status":"copied"}"#,
            r#"{"event":"blob","digest":"sha256:bb","bytes":10,"status":"skipped"}"#,
            r#"{"event":"progress","bytes":10,"blobs":1}"#,
            "not json at all",
            r#"{"event":"pushed","reference":"r/a:1","digest":"sha256:cc"}"#,
            r#"{"event":"pushed","reference":"r/a:latest","digest":"sha256:cc"}"#,
        ];
        let parsed: Vec<bool> = lines.iter().map(|l| p.observe(l)).collect();
        assert_eq!(parsed, vec![true, true, true, true, false, true, true]);
        assert_eq!(p.bytes, Some(10));
        assert_eq!(p.pushed_digests, vec!["sha256:aa", "sha256:cc"]);
        assert_eq!(p.ok, None);
        p.observe(r#"{"event":"summary","ok":false,"bytes":12,"blobs":1,"skipped":1,"pushed":[{"reference":"x","digest":"sha256:dd"}],"duration_ms":5,"error":{"kind":"auth","message":"401 from registry"}}"#);
        assert_eq!(p.bytes, Some(12));
        assert_eq!(
            p.pushed_digests,
            vec!["sha256:aa", "sha256:cc", "sha256:dd"]
        );
        assert_eq!(p.ok, Some(false));
        assert_eq!(p.error_message.as_deref(), Some("401 from registry"));
    }

    #[test]
    fn unknown_events_and_odd_values_are_ignored() {
        let mut p = Progress::default();
        assert!(!p.observe(r#"{"event":"telemetry","bytes":5}"#));
        assert!(!p.observe(r#"[1,2]"#));
        assert!(p.observe(r#"{"event":"progress","bytes":-1}"#));
        assert_eq!(p, Progress::default());
    }
}
