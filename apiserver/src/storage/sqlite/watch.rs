//! Watches on the SQLite store: replay from the revision log, then follow the writer's live
//! broadcast.
//!
//! Each watch is a task that tracks `position`: every matching event with a revision up to it has
//! been sent. It subscribes to the broadcast *before* reading the log, so nothing committed in
//! between is lost, and drops broadcast batches it has already read from the log. Batches carry
//! their first and last revision, so a gap is noticed; a gap, or falling behind the broadcast
//! (lagging), sends the task back to the log from `position`. A consumer that reads slowly thus
//! gets every event, late. If the log no longer holds `position` (compacted), the stream ends with
//! [`StorageError::Compacted`].

use std::sync::Arc;

use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use super::Shared;
use super::reader::{self, ReadPool};
use crate::storage::keys::KeyRange;
use crate::storage::{PROGRESS_INTERVAL, Revision, StorageError, WatchEvent, WatchStream};

/// Events read from the log per query while catching up.
const REPLAY_CHUNK_EVENTS: usize = 1000;

/// Events buffered between a watch task and its consumer.
const STREAM_BUFFER_EVENTS: usize = 256;

/// Starts a watch of `prefix` for the events after `after`.
pub(super) fn start(
    shared: Arc<Shared>,
    reads: Arc<ReadPool>,
    prefix: String,
    after: Revision,
) -> WatchStream {
    let (sender, receiver) = mpsc::channel(STREAM_BUFFER_EVENTS);
    let watch = Watch {
        shared,
        reads,
        range: KeyRange::new(&prefix, None),
        prefix,
        after,
        sender,
    };
    tokio::spawn(watch.run());
    Box::pin(futures::stream::unfold(
        receiver,
        |mut receiver| async move { receiver.recv().await.map(|item| (item, receiver)) },
    ))
}

struct Watch {
    shared: Arc<Shared>,
    reads: Arc<ReadPool>,
    prefix: String,
    range: KeyRange,
    after: Revision,
    sender: mpsc::Sender<Result<WatchEvent, StorageError>>,
}

/// Why the watch task stops.
enum Stop {
    /// The consumer dropped the stream.
    Dropped,
    /// The stream ends with this error.
    Failed(StorageError),
}

impl Watch {
    async fn run(self) {
        if let Err(Stop::Failed(error)) = self.follow().await {
            let _ = self.sender.send(Err(error)).await;
        }
    }

    async fn follow(&self) -> Result<(), Stop> {
        let mut position = self.after;
        // The newest store revision this watch knows about.
        let mut seen: Revision = 0;
        let mut idle_until = Instant::now() + PROGRESS_INTERVAL;
        loop {
            let mut live = self.shared.events.subscribe();
            loop {
                let prefix = self.prefix.clone();
                let chunk = self
                    .reads
                    .run(move |conn| reader::replay(conn, &prefix, position, REPLAY_CHUNK_EVENTS))
                    .await
                    .map_err(Stop::Failed)?;
                for event in chunk.events {
                    position = event.revision();
                    self.send(event).await?;
                    idle_until = Instant::now() + PROGRESS_INTERVAL;
                }
                position = position.max(chunk.reached);
                seen = seen.max(chunk.reached);
                if chunk.complete {
                    break;
                }
            }
            // Follow the writer until a gap or lag sends us back to the log.
            loop {
                tokio::select! {
                    () = self.sender.closed() => return Err(Stop::Dropped),
                    () = self.shared.closed.cancelled() => {
                        return Err(Stop::Failed(StorageError::Unavailable("the SQLite store was closed".into())));
                    }
                    () = tokio::time::sleep_until(idle_until) => {
                        // A watch from a future revision reports nothing until the store gets there.
                        if seen >= position {
                            self.send(WatchEvent::Progress(position)).await?;
                        }
                        idle_until = Instant::now() + PROGRESS_INTERVAL;
                    }
                    received = live.recv() => match received {
                        Ok(batch) => {
                            seen = seen.max(batch.last);
                            if batch.last <= position {
                                continue;
                            }
                            if batch.first > position + 1 {
                                break;
                            }
                            for event in batch.events.iter().filter(|e| e.revision() > position && self.matches(e)) {
                                self.send(event.clone()).await?;
                                idle_until = Instant::now() + PROGRESS_INTERVAL;
                            }
                            position = batch.last;
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => break,
                        Err(broadcast::error::RecvError::Closed) => {
                            return Err(Stop::Failed(StorageError::Unavailable("the SQLite store was closed".into())));
                        }
                    },
                }
            }
        }
    }

    fn matches(&self, event: &WatchEvent) -> bool {
        match event {
            WatchEvent::Put { kv, .. } => self.range.contains(kv.key.as_bytes()),
            WatchEvent::Delete { prev, .. } => self.range.contains(prev.key.as_bytes()),
            WatchEvent::Progress(_) => false,
        }
    }

    async fn send(&self, event: WatchEvent) -> Result<(), Stop> {
        self.sender.send(Ok(event)).await.map_err(|_| Stop::Dropped)
    }
}
