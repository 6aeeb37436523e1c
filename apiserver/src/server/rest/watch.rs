//! WATCH: a chunked stream of newline-delimited compact JSON events. Initial ADDED events for
//! "start at most recent/any", selector transitions (ADDED/DELETED), DELETED with the deletion
//! revision, bookmarks, streaming lists (`sendInitialEvents`), and the in-stream 410 rule.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use rand::Rng;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::Ctx;
use super::filter::ListFilter;
use super::present::{event_table, partial_metadata};
use super::read::{ReadAt, read_collection};
use crate::server::errors::{ApiError, Cause, Subject};
use crate::server::negotiate::{Output, Shape, negotiate};
use crate::server::object::{collection_prefix, decode, set_resource_version};
use crate::server::registry::ResourceKind;
use crate::server::request::Query;
use crate::storage::{Revision, StorageError, WatchEvent};

/// Events buffered per watcher; a watcher further behind than this is closed (it re-watches).
const WATCH_BUFFER_EVENTS: usize = 1024;

/// Encodes events for one watcher in its negotiated representation.
struct Encoder {
    /// The server state and the watched kind's row in it (no copy of the row per watch).
    state: std::sync::Arc<crate::server::state::ApiState>,
    kind_index: usize,
    output: Output,
    query: Query,
    sent_table_header: bool,
}

impl Encoder {
    fn kind(&self) -> &ResourceKind {
        &self.state.kinds[self.kind_index]
    }

    fn event(&mut self, type_: &str, object: &Value) -> Bytes {
        let object = match self.output {
            Output::Table(version) => {
                let with_columns = !self.sent_table_header;
                self.sent_table_header = true;
                event_table(self.kind(), object, version, &self.query, with_columns)
                    .unwrap_or_else(|e| e.status())
            }
            Output::PartialObjectMetadata => partial_metadata(object),
            _ => object.clone(),
        };
        line(&json!({"type": type_, "object": object}))
    }

    fn bookmark(&self, revision: Revision, initial_events_end: bool) -> Bytes {
        let mut metadata = json!({"resourceVersion": revision.to_string()});
        if initial_events_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let object = match self.output {
            Output::PartialObjectMetadata => {
                json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": metadata})
            }
            _ => {
                json!({"kind": self.kind().kind, "apiVersion": self.kind().api_version(), "metadata": metadata})
            }
        };
        line(&json!({"type": "BOOKMARK", "object": object}))
    }
}

fn line(value: &Value) -> Bytes {
    let mut bytes = serde_json::to_vec(value).unwrap_or_default();
    bytes.push(b'\n');
    Bytes::from(bytes)
}

fn error_event(error: &ApiError) -> Bytes {
    line(&json!({"type": "ERROR", "object": error.status()}))
}

fn watch_invalid(message: &str, field: &str) -> ApiError {
    ApiError::Invalid {
        subject: Subject {
            group: "meta.k8s.io".into(),
            kind: "ListOptions".into(),
            ..Default::default()
        },
        causes: vec![Cause {
            reason: "FieldValueForbidden".into(),
            message: message.into(),
            field: field.into(),
        }],
    }
}

/// WATCH handler.
pub(super) async fn watch(ctx: &Ctx<'_>) -> Result<Response, ApiError> {
    let output = negotiate(&ctx.headers, Shape::Watch)?;
    let filter = ListFilter::from_query(ctx.kind, &ctx.query)?;
    let send_initial = ctx.query.optional_flag("sendInitialEvents")?;
    let rv_match = ctx.query.get("resourceVersionMatch").unwrap_or("");
    let bookmarks = ctx.query.flag("allowWatchBookmarks")?;
    match (send_initial, rv_match) {
        (Some(_), "NotOlderThan") | (None, "") => {}
        (Some(_), _) => {
            return Err(watch_invalid(
                "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                "sendInitialEvents",
            ));
        }
        (None, _) => {
            return Err(watch_invalid(
                "Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
                "resourceVersionMatch",
            ));
        }
    }
    let rv = ctx.query.get("resourceVersion").unwrap_or("");
    let start: Option<Revision> = if rv.is_empty() {
        None
    } else {
        Some(
            rv.parse()
                .map_err(|_| ApiError::BadRequest(format!("invalid resource version: {rv:?}")))?,
        )
    };
    let timeout = match ctx.query.integer("timeoutSeconds")? {
        Some(secs) => Duration::from_secs(secs as u64),
        None => {
            let min = ctx.state.options.min_watch_timeout;
            min + min.mul_f64(rand::rng().random_range(0.0..1.0))
        }
    };

    let mut encoder = Encoder {
        state: ctx.state.clone(),
        kind_index: ctx.target.kind,
        output,
        query: ctx.query.clone(),
        sent_table_header: false,
    };
    let (tx, rx) = mpsc::channel::<Bytes>(WATCH_BUFFER_EVENTS);

    // Initial state: for "start at most recent/any" (and streaming lists) send the current objects.
    let wants_initial = match send_initial {
        Some(explicit) => explicit,
        None => matches!(start, None | Some(0)),
    };
    let mut after = start.unwrap_or(0);
    let mut initial = Vec::new();
    if wants_initial {
        let at = match start {
            Some(n) if n > 0 => ReadAt::NotOlderThan(n),
            _ => ReadAt::Latest,
        };
        let listing = read_collection(ctx, at, None, &filter, 0).await?;
        after = listing.revision;
        for object in &listing.items {
            initial.push(encoder.event("ADDED", object));
        }
        if send_initial == Some(true) {
            initial.push(encoder.bookmark(listing.revision, true));
        }
    }
    let prefix = collection_prefix(ctx.kind, ctx.namespace());
    let store_stream = ctx.state.store.watch(&prefix, after).await;
    let shutdown = ctx.state.shutdown.clone();
    let bookmark_interval = ctx.state.options.bookmark_interval;
    tokio::spawn(async move {
        for bytes in initial {
            if tx.send(bytes).await.is_err() {
                return;
            }
        }
        let mut stream = match store_stream {
            Ok(s) => s,
            Err(e) => {
                let _ = tx.send(error_event(&watch_error(e))).await;
                return;
            }
        };
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut last_revision = after;
        let mut last_bookmark = tokio::time::Instant::now();
        loop {
            let next = tokio::select! {
                _ = &mut deadline => {
                    if bookmarks {
                        let _ = tx.try_send(encoder.bookmark(last_revision, false));
                    }
                    return;
                }
                _ = shutdown.cancelled() => return,
                _ = tx.closed() => return,
                next = stream.next() => next,
            };
            let event = match next {
                None => return,
                Some(Err(e)) => {
                    let _ = tx.send(error_event(&watch_error(e))).await;
                    return;
                }
                Some(Ok(event)) => event,
            };
            last_revision = last_revision.max(event.revision());
            let bytes = match event {
                WatchEvent::Progress(rev) => {
                    if bookmarks && last_bookmark.elapsed() >= bookmark_interval {
                        last_bookmark = tokio::time::Instant::now();
                        Some(encoder.bookmark(rev, false))
                    } else {
                        None
                    }
                }
                WatchEvent::Put { kv, prev } => {
                    let new = decode(encoder.kind(), &kv).ok();
                    let old = prev.as_ref().and_then(|p| decode(encoder.kind(), p).ok());
                    let new_matches = new.as_ref().is_some_and(|o| filter.matches(o));
                    let old_matches = old.as_ref().is_some_and(|o| filter.matches(o));
                    match (old_matches, new_matches, new, old) {
                        (true, true, Some(o), _) => Some(encoder.event("MODIFIED", &o)),
                        (false, true, Some(o), _) => Some(encoder.event("ADDED", &o)),
                        (true, false, _, Some(mut o)) => {
                            set_resource_version(&mut o, kv.mod_revision);
                            Some(encoder.event("DELETED", &o))
                        }
                        _ => None,
                    }
                }
                WatchEvent::Delete { prev, revision } => match decode(encoder.kind(), &prev) {
                    Ok(mut o) if filter.matches(&o) => {
                        set_resource_version(&mut o, revision);
                        Some(encoder.event("DELETED", &o))
                    }
                    _ => None,
                },
            };
            if let Some(bytes) = bytes {
                // A watcher that cannot keep up is closed rather than silently skipped.
                if tx.try_send(bytes).is_err() {
                    return;
                }
            }
        }
    });
    let body =
        Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx).map(Ok::<_, Infallible>));
    let mut response = (StatusCode::OK, body).into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response.headers_mut().insert(
        "cache-control",
        HeaderValue::from_static("no-cache, private"),
    );
    Ok(response)
}

fn watch_error(error: StorageError) -> ApiError {
    match error {
        StorageError::Compacted {
            requested,
            compacted,
        } => ApiError::Expired {
            message: format!("too old resource version: {requested} ({compacted})"),
            continue_token: None,
        },
        other => ApiError::from_storage(other, &Subject::default()),
    }
}
