//! Catch-up subscriptions: read the log from a position, then follow it live.
//!
//! A subscription pulls pages from the store with `read_all` and, once it has read everything,
//! waits for the store's head to move. It holds one page at a time and nothing per writer, so
//! a slow subscriber never blocks writers and never grows memory: it simply reads further
//! behind. The hand-over from catch-up to live is the same loop, so there is no gap and no
//! duplicate at it, and resuming `After(p)` continues exactly after `p`.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use futures::StreamExt;
use tokio::sync::watch;

use crate::{
    Direction, EventFilter, EventStore, Position, ReadFrom, RecordedEvent, StoreError,
    SubscribeFrom,
};

/// Events read per page while catching up.
pub const SUBSCRIPTION_PAGE_EVENTS: usize = 1024;

/// What a subscription delivers.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum SubscriptionItem {
    /// The next matching event.
    Event(RecordedEvent),
    /// The subscription has delivered everything up to the log's head as it was when catch-up
    /// finished; everything after this is live. Sent once.
    CaughtUp {
        /// The head at that moment (`None`: the log was empty).
        head: Option<Position>,
    },
}

/// A running subscription: a stream of items, ended only by an error or a closed store.
pub struct Subscription {
    inner: Pin<Box<dyn Stream<Item = Result<SubscriptionItem, StoreError>> + Send>>,
}

impl Subscription {
    /// Wraps any stream of items (backends with their own subscription protocol use this).
    pub fn from_stream(
        stream: impl Stream<Item = Result<SubscriptionItem, StoreError>> + Send + 'static,
    ) -> Self {
        Self {
            inner: Box::pin(stream),
        }
    }

    /// The next item; `None` once the store has closed.
    pub async fn next(&mut self) -> Option<Result<SubscriptionItem, StoreError>> {
        self.inner.next().await
    }

    /// The next event, skipping the caught-up marker.
    pub async fn next_event(&mut self) -> Option<Result<RecordedEvent, StoreError>> {
        loop {
            match self.next().await? {
                Ok(SubscriptionItem::Event(event)) => return Some(Ok(event)),
                Ok(SubscriptionItem::CaughtUp { .. }) => continue,
                Err(error) => return Some(Err(error)),
            }
        }
    }
}

impl Stream for Subscription {
    type Item = Result<SubscriptionItem, StoreError>;

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

struct CatchUp<S: ?Sized> {
    store: Arc<S>,
    head: watch::Receiver<Option<Position>>,
    filter: EventFilter,
    /// The next position to read (inclusive); `None` before the first event of the log.
    next_from: ReadFrom,
    page: VecDeque<RecordedEvent>,
    caught_up_sent: bool,
    failed: bool,
}

/// Builds a catch-up subscription over any store that publishes its head position on a
/// `watch` channel (updated after every durable append).
pub fn catch_up<S: EventStore + ?Sized>(
    store: Arc<S>,
    head: watch::Receiver<Option<Position>>,
    from: SubscribeFrom,
    filter: EventFilter,
) -> Subscription {
    let next_from = match from {
        SubscribeFrom::Start => ReadFrom::Start,
        SubscribeFrom::After(position) => ReadFrom::At(position.0.saturating_add(1)),
        SubscribeFrom::End => match *head.borrow() {
            Some(position) => ReadFrom::At(position.0.saturating_add(1)),
            None => ReadFrom::Start,
        },
    };
    let state = CatchUp {
        store,
        head,
        filter,
        next_from,
        page: VecDeque::new(),
        caught_up_sent: false,
        failed: false,
    };
    Subscription::from_stream(futures::stream::unfold(state, |mut state| async move {
        if state.failed {
            return None;
        }
        let item = state.next_item().await;
        if item.is_err() {
            state.failed = true;
        }
        Some((item, state))
    }))
}

impl<S: EventStore + ?Sized> CatchUp<S> {
    async fn next_item(&mut self) -> Result<SubscriptionItem, StoreError> {
        loop {
            if let Some(event) = self.page.pop_front() {
                return Ok(SubscriptionItem::Event(event));
            }
            // Mark the head as seen before reading, so that an append landing after the read
            // wakes the wait below instead of being missed.
            let head_seen = *self.head.borrow_and_update();
            let page = self
                .store
                .read_all(
                    self.next_from,
                    Direction::Forwards,
                    SUBSCRIPTION_PAGE_EVENTS,
                )
                .await?;
            if let Some(last) = page.last() {
                self.next_from = ReadFrom::At(last.position.0 + 1);
                self.page
                    .extend(page.into_iter().filter(|event| self.filter.matches(event)));
                continue;
            }
            if !self.caught_up_sent {
                self.caught_up_sent = true;
                return Ok(SubscriptionItem::CaughtUp { head: head_seen });
            }
            if self.head.changed().await.is_err() {
                return Err(StoreError::Closed);
            }
        }
    }
}
