//! Counts the requests a `kube::Client` sends, by kind (reads, watches, writes), as a tower
//! layer: `ClientBuilder::try_from(config)?.with_layer(&counter).build()`. The benchmark uses
//! it for requests per reconcile and requests per second at idle; the daemon can export it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use http::{Method, Request};
use tower::{Layer, Service};

#[derive(Debug, Default)]
struct Counts {
    reads: AtomicU64,
    watches: AtomicU64,
    writes: AtomicU64,
}

/// A snapshot of the counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// GET requests that are not watches (get, list).
    pub reads: u64,
    /// Watch requests (each is one long-running request).
    pub watches: u64,
    /// POST, PUT, PATCH and DELETE requests.
    pub writes: u64,
}

impl RequestCounts {
    /// Every request.
    pub fn total(&self) -> u64 {
        self.reads + self.watches + self.writes
    }

    /// The difference to an earlier snapshot.
    pub fn since(&self, earlier: &RequestCounts) -> RequestCounts {
        RequestCounts {
            reads: self.reads - earlier.reads,
            watches: self.watches - earlier.watches,
            writes: self.writes - earlier.writes,
        }
    }
}

/// The layer; clones share their counts.
#[derive(Debug, Clone, Default)]
pub struct RequestCounter {
    counts: Arc<Counts>,
}

impl RequestCounter {
    /// A counter at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// The counts so far.
    pub fn snapshot(&self) -> RequestCounts {
        RequestCounts {
            reads: self.counts.reads.load(Ordering::Relaxed),
            watches: self.counts.watches.load(Ordering::Relaxed),
            writes: self.counts.writes.load(Ordering::Relaxed),
        }
    }
}

impl<S> Layer<S> for RequestCounter {
    type Service = Counted<S>;

    fn layer(&self, inner: S) -> Counted<S> {
        Counted {
            inner,
            counts: self.counts.clone(),
        }
    }
}

/// The counting service.
#[derive(Debug, Clone)]
pub struct Counted<S> {
    inner: S,
    counts: Arc<Counts>,
}

impl<S, B> Service<Request<B>> for Counted<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let counter = if request.method() == Method::GET {
            let watch = request
                .uri()
                .query()
                .is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"));
            if watch {
                &self.counts.watches
            } else {
                &self.counts.reads
            }
        } else {
            &self.counts.writes
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;

    #[tokio::test]
    async fn counts_reads_watches_and_writes() {
        let counter = RequestCounter::new();
        let mut svc = counter.layer(tower::service_fn(|_: Request<()>| async {
            Ok::<_, Infallible>(())
        }));
        for (method, uri) in [
            (Method::GET, "/apis/x/v1/orders"),
            (
                Method::GET,
                "/apis/x/v1/orders?watch=true&resourceVersion=1",
            ),
            (Method::PATCH, "/apis/x/v1/namespaces/d/orders/o/status"),
            (Method::POST, "/apis/x/v1/namespaces/d/orders"),
        ] {
            let req = Request::builder()
                .method(method)
                .uri(uri)
                .body(())
                .expect("request");
            svc.call(req).await.expect("call");
        }
        let c = counter.snapshot();
        assert_eq!(
            c,
            RequestCounts {
                reads: 1,
                watches: 1,
                writes: 2
            }
        );
        assert_eq!(c.total(), 4);
        assert_eq!(
            c.since(&RequestCounts {
                reads: 1,
                watches: 0,
                writes: 1
            })
            .total(),
            2
        );
    }
}
