//! GET of one object and LIST of a collection, with Kubernetes resourceVersion semantics,
//! snapshot-consistent pagination and continue tokens.

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use super::filter::ListFilter;
use super::{Ctx, json_response, present_list, single_response};
use crate::server::errors::ApiError;
use crate::server::negotiate::{Shape, negotiate};
use crate::server::object::{
    collection_prefix, decode, is_storage_alias, storage_key, stored_with_resource_version,
};
use crate::storage::{ListRequest, Revision, StorageError};

/// How long a "not older than N" read waits for the store to reach N before answering 504.
const FUTURE_REVISION_WAIT: Duration = Duration::from_secs(3);

/// GET of one object (or its status subresource, which returns the whole object).
pub(super) async fn get(ctx: &Ctx<'_>) -> Result<Response, ApiError> {
    let name = ctx.target.name.as_deref().unwrap_or_default();
    let object = load(ctx, name).await?.0;
    single_response(ctx, StatusCode::OK, &object, &[])
}

/// Reads one object and its mod revision; 404 when missing.
pub(super) async fn load(ctx: &Ctx<'_>, name: &str) -> Result<(Value, Revision), ApiError> {
    let key = storage_key(ctx.kind, ctx.namespace(), name);
    let subject = ctx.subject(name);
    let kv = ctx
        .state
        .store
        .get(&key)
        .await
        .map_err(|e| ApiError::from_storage(e, &subject))?
        .ok_or_else(|| ApiError::NotFound(subject.clone()))?;
    let object = decode(ctx.kind, &kv).map_err(ApiError::Internal)?;
    Ok((object, kv.mod_revision))
}

/// The position a continue token encodes: the list's revision and the last key returned,
/// relative to the collection prefix.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ContinueToken {
    pub revision: Revision,
    pub after: String,
}

impl ContinueToken {
    /// Encodes like upstream: base64url of `{"v":"meta.k8s.io/v1","rv":N,"start":"<key>\u0000"}`.
    pub fn encode(&self) -> String {
        let body = json!({"v": "meta.k8s.io/v1", "rv": self.revision, "start": format!("{}\u{0}", self.after)});
        URL_SAFE_NO_PAD.encode(body.to_string())
    }

    /// Decodes a token, rejecting malformed ones and ones that escape the collection.
    pub fn decode(token: &str) -> Result<Self, ApiError> {
        let invalid = |why: &str| ApiError::BadRequest(format!("invalid continue token: {why}"));
        let bytes = URL_SAFE_NO_PAD
            .decode(token.trim_end_matches('='))
            .map_err(|_| invalid("not base64"))?;
        let body: Value = serde_json::from_slice(&bytes).map_err(|_| invalid("not JSON"))?;
        if body["v"] != "meta.k8s.io/v1" {
            return Err(invalid("unknown version"));
        }
        let revision = body["rv"]
            .as_i64()
            .ok_or_else(|| invalid("no resource version"))?;
        let start = body["start"]
            .as_str()
            .ok_or_else(|| invalid("no start key"))?;
        let after = start.strip_suffix('\u{0}').unwrap_or(start).to_string();
        if after.starts_with('/') || after.split('/').any(|p| p == "..") {
            return Err(invalid("key escapes the collection"));
        }
        Ok(Self { revision, after })
    }
}

/// How a LIST picks the revision to read at (Kubernetes API concepts, "resourceVersion for list").
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReadAt {
    /// A consistent read at the current revision.
    Latest,
    /// At least this revision (served from the latest state once the store has reached it).
    NotOlderThan(Revision),
    /// Exactly this revision.
    Exact(Revision),
}

/// Parses and checks the list options that select a revision (`resourceVersion`,
/// `resourceVersionMatch`, `continue`, `limit`), returning the read position and continue state.
pub(crate) fn read_position(ctx: &Ctx<'_>) -> Result<(ReadAt, Option<ContinueToken>), ApiError> {
    let q = &ctx.query;
    let rv = q.get("resourceVersion").unwrap_or("");
    let rv_match = q.get("resourceVersionMatch").unwrap_or("");
    let token = q.non_empty("continue");
    let invalid = |field: &str, msg: &str| ApiError::Invalid {
        subject: crate::server::errors::Subject {
            group: "meta.k8s.io".into(),
            kind: "ListOptions".into(),
            ..Default::default()
        },
        causes: vec![crate::server::errors::Cause {
            reason: "FieldValueForbidden".into(),
            message: msg.into(),
            field: field.into(),
        }],
    };
    if q.flag("sendInitialEvents")? {
        return Err(invalid(
            "sendInitialEvents",
            "Forbidden: sendInitialEvents is forbidden for list",
        ));
    }
    let parsed_rv = if rv.is_empty() {
        None
    } else {
        Some(
            rv.parse::<Revision>()
                .map_err(|_| ApiError::BadRequest(format!("invalid resource version: {rv:?}")))?,
        )
    };
    if !rv_match.is_empty() {
        if token.is_some() {
            return Err(invalid(
                "resourceVersionMatch",
                "Forbidden: resourceVersionMatch is forbidden when continue is provided",
            ));
        }
        if parsed_rv.is_none() {
            return Err(invalid(
                "resourceVersionMatch",
                "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
            ));
        }
        if !matches!(rv_match, "Exact" | "NotOlderThan") {
            return Err(invalid(
                "resourceVersionMatch",
                &format!(
                    "Unsupported value: {rv_match:?}: supported values: \"Exact\", \"NotOlderThan\""
                ),
            ));
        }
        if rv_match == "Exact" && parsed_rv == Some(0) {
            return Err(invalid(
                "resourceVersionMatch",
                "Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
            ));
        }
    }
    if let Some(token) = token {
        if parsed_rv.is_some_and(|r| r != 0) {
            return Err(ApiError::BadRequest(
                "specifying resource version is not allowed when using continue".into(),
            ));
        }
        let token = ContinueToken::decode(token)?;
        let at = if token.revision > 0 {
            ReadAt::Exact(token.revision)
        } else {
            ReadAt::Latest
        };
        return Ok((at, Some(token)));
    }
    let limited = q.integer("limit")?.is_some_and(|l| l > 0);
    let at = match (parsed_rv, rv_match) {
        (None, _) | (Some(0), _) => ReadAt::Latest,
        (Some(n), "Exact") => ReadAt::Exact(n),
        (Some(n), "NotOlderThan") => ReadAt::NotOlderThan(n),
        (Some(n), _) if limited => ReadAt::Exact(n),
        (Some(n), _) => ReadAt::NotOlderThan(n),
    };
    Ok((at, None))
}

/// Waits until the store has reached `revision` (up to [`FUTURE_REVISION_WAIT`]), else 504.
pub(crate) async fn wait_for_revision(ctx: &Ctx<'_>, revision: Revision) -> Result<(), ApiError> {
    let deadline = tokio::time::Instant::now() + FUTURE_REVISION_WAIT;
    loop {
        let current = ctx
            .state
            .store
            .current_revision()
            .await
            .map_err(storage_error)?;
        if current >= revision {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::TooLargeResourceVersion {
                requested: revision,
                current,
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn storage_error(e: StorageError) -> ApiError {
    ApiError::from_storage(e, &Default::default())
}

/// The result of reading a collection.
pub(crate) struct Listing {
    pub items: Vec<Value>,
    /// With `raw` reads: the stored objects as JSON bytes with `resourceVersion` set, undecoded.
    pub raw: Vec<Vec<u8>>,
    /// Whether the objects are in `raw` (else in `items`).
    pub is_raw: bool,
    pub revision: Revision,
    pub continue_token: Option<String>,
    pub remaining: Option<u64>,
}

/// Reads a collection at a position, filtered, at most `limit` items (0 = all).
pub(crate) async fn read_collection(
    ctx: &Ctx<'_>,
    at: ReadAt,
    token: Option<ContinueToken>,
    filter: &ListFilter,
    limit: usize,
) -> Result<Listing, ApiError> {
    read_collection_as(ctx, at, token, filter, limit, false).await
}

/// [`read_collection`]; with `raw` (and no selector) the objects are returned as stored bytes
/// with `resourceVersion` spliced in, without decoding them — the fast path of plain JSON lists.
pub(crate) async fn read_collection_as(
    ctx: &Ctx<'_>,
    at: ReadAt,
    token: Option<ContinueToken>,
    filter: &ListFilter,
    limit: usize,
    raw: bool,
) -> Result<Listing, ApiError> {
    let raw = raw && filter.is_empty() && !is_storage_alias(ctx.kind);
    let prefix = collection_prefix(ctx.kind, ctx.namespace());
    let mut revision = match at {
        ReadAt::Latest => None,
        ReadAt::Exact(n) => Some(n),
        ReadAt::NotOlderThan(n) => {
            wait_for_revision(ctx, n).await?;
            None
        }
    };
    let mut start_after = token.as_ref().map(|t| format!("{prefix}{}", t.after));
    let mut items = Vec::new();
    let mut raw_items = Vec::new();
    let mut count = 0;
    let mut continue_key = None;
    let mut remaining = None;
    loop {
        let want = if limit == 0 { 0 } else { limit - count };
        let request = ListRequest {
            prefix: prefix.clone(),
            start_after: start_after.clone(),
            limit: want,
            revision,
        };
        let page = ctx.state.store.list(request).await.map_err(|e| match e {
            StorageError::Compacted { .. } if token.is_some() => expired_continue(),
            other => storage_error(other),
        })?;
        revision = Some(page.revision);
        let page_len = page.items.len();
        for (i, kv) in page.items.iter().enumerate() {
            let fast = if raw {
                stored_with_resource_version(kv)
            } else {
                None
            };
            let keep = match fast {
                Some(bytes) => {
                    raw_items.push(bytes);
                    true
                }
                None => {
                    let object = decode(ctx.kind, kv).map_err(ApiError::Internal)?;
                    let keep = filter.matches(&object);
                    if keep {
                        if raw {
                            raw_items.push(serde_json::to_vec(&object).unwrap_or_default());
                        } else {
                            items.push(object);
                        }
                    }
                    keep
                }
            };
            if keep {
                count += 1;
                if limit > 0 && count == limit {
                    let more_in_page = i + 1 < page_len;
                    if more_in_page || page.remaining > 0 {
                        continue_key = Some(kv.key.clone());
                        if filter.is_empty() {
                            remaining = Some((page_len - i - 1) as u64 + page.remaining);
                        }
                    }
                    break;
                }
            }
        }
        let done = limit == 0 || count >= limit || page.remaining == 0 || page_len == 0;
        if done {
            break;
        }
        start_after = page.items.last().map(|kv| kv.key.clone());
    }
    let revision = revision.unwrap_or(0);
    let continue_token = continue_key.map(|key| {
        ContinueToken {
            revision,
            after: key.strip_prefix(&prefix).unwrap_or(&key).to_string(),
        }
        .encode()
    });
    Ok(Listing {
        items,
        raw: raw_items,
        is_raw: raw,
        revision,
        continue_token,
        remaining,
    })
}

fn expired_continue() -> ApiError {
    ApiError::Expired {
        message: "The provided continue parameter is too old to display a consistent list result. You can start a new \
list without the continue parameter, or use the continue token in this response to retrieve the remainder of the \
results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, \
or deleted between the time the first chunk was returned and now may show up in the list."
            .into(),
        continue_token: None,
    }
}

/// LIST of a collection.
pub(super) async fn list(ctx: &Ctx<'_>) -> Result<Response, ApiError> {
    let output = negotiate(&ctx.headers, Shape::List)?;
    let filter = ListFilter::from_query(ctx.kind, &ctx.query)?;
    let (at, token) = read_position(ctx)?;
    let limit = ctx.query.integer("limit")?.unwrap_or(0) as usize;
    let raw = output == crate::server::negotiate::Output::Json;
    let listing = match read_collection_as(ctx, at, token, &filter, limit, raw).await {
        Err(ApiError::Expired { message, .. }) if ctx.query.non_empty("continue").is_some() => {
            // Offer a token that continues at the latest revision after the same key.
            let token = ContinueToken::decode(ctx.query.non_empty("continue").unwrap_or_default())?;
            let fresh = ContinueToken {
                revision: -1,
                after: token.after,
            }
            .encode();
            return Err(ApiError::Expired {
                message,
                continue_token: Some(fresh),
            });
        }
        other => other?,
    };
    let mut meta = Map::new();
    meta.insert(
        "resourceVersion".into(),
        json!(listing.revision.to_string()),
    );
    if let Some(token) = &listing.continue_token {
        meta.insert("continue".into(), json!(token));
    }
    if let Some(n) = listing.remaining {
        meta.insert("remainingItemCount".into(), json!(n));
    }
    if listing.is_raw {
        return Ok(raw_list_response(ctx.kind, &meta, &listing.raw));
    }
    let body = present_list(ctx.kind, listing.items, meta, output, &ctx.query)?;
    Ok(json_response(StatusCode::OK, &body, &[]))
}

/// A JSON list assembled from already-encoded items (same shape as `present_list`'s JSON).
fn raw_list_response(
    kind: &crate::server::registry::ResourceKind,
    meta: &Map<String, Value>,
    items: &[Vec<u8>],
) -> Response {
    let head = json!({"apiVersion": kind.api_version(), "kind": kind.list_kind, "metadata": meta});
    let mut body = serde_json::to_vec(&head).unwrap_or_default();
    body.pop(); // the closing brace; "items" follows
    body.extend_from_slice(b",\"items\":[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(item);
    }
    body.extend_from_slice(b"]}");
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_token_round_trips_and_rejects_escapes() {
        let t = ContinueToken {
            revision: 42,
            after: "default/o3".into(),
        };
        assert_eq!(ContinueToken::decode(&t.encode()).unwrap(), t);
        assert!(ContinueToken::decode("!!!").is_err());
        let evil = URL_SAFE_NO_PAD
            .encode(json!({"v": "meta.k8s.io/v1", "rv": 1, "start": "../secrets/x"}).to_string());
        assert!(ContinueToken::decode(&evil).is_err());
    }
}
