//! The event feed for downstream services: Server-Sent Events (catch-up then live) and
//! pages for batch consumers.
//!
//! Each SSE event's `id` is its global position, so a client that reconnects with
//! `Last-Event-ID` resumes right after the last event it received: no gap, no duplicate.
//! The store's subscription is pulled by one task per subscriber into a bounded buffer; a
//! subscriber that leaves the buffer full for longer than the configured timeout is sent a
//! `close` event saying so and dropped, instead of the server buffering without bound.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::Stream;
use serde::Deserialize;
use serde_json::{Value, json};
use store::{Direction, EventFilter, Position, ReadFrom, SubscribeFrom, SubscriptionItem};
use tokio::sync::{mpsc, oneshot};

use crate::AppState;
use crate::auth::{Caller, Principal};
use crate::problem::{ApiResult, Problem};

/// Query parameters of the feed and of pages.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FeedParams {
    /// First position to deliver (inclusive). Ignored when `Last-Event-ID` is sent.
    from: Option<u64>,
    /// Only these event types (comma-separated).
    types: Option<String>,
    /// Only streams starting with one of these prefixes (comma-separated).
    stream_prefixes: Option<String>,
    /// Page size (pages only).
    limit: Option<usize>,
}

impl FeedParams {
    fn filter(&self) -> EventFilter {
        let list = |text: &Option<String>| -> Vec<String> {
            text.as_deref()
                .unwrap_or("")
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(str::to_string)
                .collect()
        };
        EventFilter {
            event_types: list(&self.types),
            stream_prefixes: list(&self.stream_prefixes),
        }
    }
}

fn may_follow(caller: &Principal) -> ApiResult<()> {
    if crate::policy::may_follow_feed(caller) {
        Ok(())
    } else {
        Err(Problem::forbidden())
    }
}

fn params(
    query: Result<Query<FeedParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<FeedParams> {
    query
        .map(|Query(params)| params)
        .map_err(|rejection| Problem::bad_request("invalid-query", rejection.body_text()))
}

/// The leaf index of the event at `position`, waiting up to `wait` for the tree's follower,
/// which reads the log a moment behind the appends (`None`: no tree, or it did not get there).
async fn leaf_index(
    tree: Option<&transparency::Transparency>,
    position: u64,
    wait: std::time::Duration,
) -> Option<u64> {
    match tree {
        Some(tree) => tree.leaf_index_waiting(position, wait).await,
        None => None,
    }
}

/// What the producer task hands the response stream.
enum Frame {
    Event {
        position: u64,
        event_type: String,
        data: String,
    },
    CaughtUp {
        head: Option<u64>,
    },
}

/// `GET /v1/events`: Server-Sent Events.
pub async fn feed(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    headers: HeaderMap,
    query: Result<Query<FeedParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    may_follow(&caller)?;
    let params = params(query)?;
    let last_event_id = match headers.get("last-event-id") {
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|text| text.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    Problem::bad_request("invalid-header", "Last-Event-ID must be a position")
                })?,
        ),
        None => None,
    };
    let from = match (last_event_id, params.from) {
        (Some(last), _) => SubscribeFrom::After(Position(last)),
        (None, Some(0) | None) => SubscribeFrom::Start,
        (None, Some(first)) => SubscribeFrom::After(Position(first - 1)),
    };
    let permit = state.subscribers.clone().try_acquire_owned().map_err(|_| {
        Problem::unavailable(
            "too-many-subscribers",
            "too many event feeds open; retry later",
        )
    })?;
    let (frames, receiver) = mpsc::channel::<Frame>(state.config.sse_buffer_events.max(1));
    let (close_sender, close) = oneshot::channel::<String>();
    let slow_timeout = state.config.sse_slow_client_timeout;
    let mut subscription = state.store.clone().subscribe_all(from, params.filter());
    let tree = state.transparency.clone();
    let leaf_wait = state.config.min_position_wait_max;
    let principal = caller.kind();
    tracing::info!(principal, "event feed opened");
    tokio::spawn(async move {
        let reason = loop {
            let item = tokio::select! {
                _ = frames.closed() => return,
                item = subscription.next() => item,
            };
            let frame = match item {
                None => break "the store closed".to_string(),
                Some(Err(error)) => {
                    tracing::error!(%error, "event feed subscription failed");
                    break "the event store failed; reconnect with Last-Event-ID".to_string();
                }
                Some(Ok(SubscriptionItem::CaughtUp { head })) => Frame::CaughtUp {
                    head: head.map(|p| p.0),
                },
                Some(Ok(SubscriptionItem::Event(event))) => Frame::Event {
                    position: event.position.0,
                    event_type: event.event_type.clone(),
                    data: crate::render::event_json_in_tree(
                        &event,
                        leaf_index(tree.as_ref(), event.position.0, leaf_wait).await,
                    )
                    .to_string(),
                },
            };
            match tokio::time::timeout(slow_timeout, frames.send(frame)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return,
                Err(_) => {
                    tracing::warn!(principal, "event feed subscriber too slow; dropping it");
                    break format!(
                        "subscriber too slow: its buffer stayed full for {} ms; reconnect with Last-Event-ID",
                        slow_timeout.as_millis()
                    );
                }
            }
        };
        let _ = close_sender.send(reason);
    });
    let feed = FeedState {
        receiver,
        close,
        shutdown: state.shutdown.clone(),
        _permit: permit,
        done: false,
    };
    let stream = futures::stream::unfold(feed, |mut feed| async move {
        if feed.done {
            return None;
        }
        let event = tokio::select! {
            biased;
            _ = feed.shutdown.wait_for(|stop| *stop) => {
                feed.done = true;
                close_event("the server is shutting down; reconnect with Last-Event-ID")
            }
            reason = &mut feed.close => {
                feed.done = true;
                close_event(&reason.unwrap_or_else(|_| "closed".to_string()))
            }
            frame = feed.receiver.recv() => match frame {
                Some(Frame::Event { position, event_type, data }) => SseEvent::default()
                    .id(position.to_string())
                    .event(event_type)
                    .data(data),
                Some(Frame::CaughtUp { head }) => SseEvent::default().comment(format!(
                    "caught up at {}",
                    head.map_or("(empty log)".to_string(), |h| h.to_string())
                )),
                None => return None,
            },
        };
        Some((Ok(event), feed))
    });
    Ok(Sse::new(stream).keep_alive(
        KeepAlive::new()
            .interval(state.config.sse_heartbeat)
            .text("heartbeat"),
    ))
}

/// The response side of one subscriber.
struct FeedState {
    receiver: mpsc::Receiver<Frame>,
    close: oneshot::Receiver<String>,
    shutdown: tokio::sync::watch::Receiver<bool>,
    /// Held for the feed's life: counts it against the subscriber limit.
    _permit: tokio::sync::OwnedSemaphorePermit,
    done: bool,
}

/// The last event of a feed: why it ends.
fn close_event(reason: &str) -> SseEvent {
    SseEvent::default()
        .event("close")
        .data(json!({ "reason": reason }).to_string())
}

/// `GET /v1/events/page`: up to `limit` events from `from` (inclusive), and where to go on.
pub async fn page(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    query: Result<Query<FeedParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    may_follow(&caller)?;
    let params = params(query)?;
    let limit = params
        .limit
        .unwrap_or(state.config.page_events_max)
        .clamp(1, state.config.page_events_max);
    let filter = params.filter();
    let mut from = ReadFrom::At(params.from.unwrap_or(0));
    let mut events = Vec::new();
    let mut next = params.from.unwrap_or(0);
    // Filtered pages read on until `limit` matching events or the end of the log, a bounded
    // number of reads so that a filter matching nothing cannot hold the request forever.
    for _ in 0..64 {
        let batch = state
            .store
            .read_all(from, Direction::Forwards, limit)
            .await
            .map_err(|error| {
                tracing::error!(%error, "reading an event page");
                Problem::internal()
            })?;
        let Some(last) = batch.last() else { break };
        let last_position = last.position.0;
        for event in batch.iter() {
            next = event.position.0 + 1;
            if filter.matches(event) {
                let leaf_index = leaf_index(
                    state.transparency.as_ref(),
                    event.position.0,
                    state.config.min_position_wait_max,
                )
                .await;
                events.push(crate::render::event_json_in_tree(event, leaf_index));
                if events.len() == limit {
                    break;
                }
            }
        }
        if events.len() == limit {
            break;
        }
        from = ReadFrom::At(last_position + 1);
    }
    let head = state.store.head().await.map_err(|_| Problem::internal())?;
    Ok(Json(json!({
        "events": events,
        "next_from": next,
        "position": head.map(|p| p.0),
    })))
}
