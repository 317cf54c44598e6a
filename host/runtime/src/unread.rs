//! A queue toward a reader that may fall behind: a batch's events, an
//! agent's. Items are read in the order they were sent, except two kinds a
//! sender may ask to be held as the latest state rather than as a backlog:
//!
//! - an item sent under a key ([`UnreadSender::send_latest`]) replaces, in
//!   its place, the item that key sent and the reader has not taken yet
//!   (a call's progress: a guest may report every 10 ms for as long as it
//!   runs);
//! - an item may be merged into the last unread one
//!   ([`UnreadSender::send_or_merge`]; a model's text, a piece at a time).
//!
//! So what a reader that stops reading makes the sender's side hold is
//! bounded by the keys and the merges, not by how long it is away. A reader
//! that keeps up is sent every item as it was sent. Once the reader is gone,
//! what is sent is dropped.

use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

/// A queue of items of type `T` for one reader (see the module).
pub fn channel<T>() -> (UnreadSender<T>, UnreadReceiver<T>) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue {
            items: VecDeque::new(),
            read: 0,
            latest: HashMap::new(),
            senders: 1,
            receiver_gone: false,
            reader: None,
        }),
    });
    (
        UnreadSender {
            shared: shared.clone(),
        },
        UnreadReceiver { shared },
    )
}

#[derive(Debug)]
struct Queue<T> {
    items: VecDeque<T>,
    /// Items read so far: the one at the front has this number.
    read: u64,
    /// The number of the item each key sent last.
    latest: HashMap<u64, u64>,
    senders: usize,
    receiver_gone: bool,
    /// The reader waiting for an item.
    reader: Option<Waker>,
}

#[derive(Debug)]
struct Shared<T> {
    queue: Mutex<Queue<T>>,
}

impl<T> Shared<T> {
    fn queue(&self) -> MutexGuard<'_, Queue<T>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the queue with `change`, then wakes the reader if it waits.
    fn with(&self, change: impl FnOnce(&mut Queue<T>)) {
        let reader = {
            let mut queue = self.queue();
            if queue.receiver_gone {
                return;
            }
            change(&mut queue);
            queue.reader.take()
        };
        if let Some(reader) = reader {
            reader.wake();
        }
    }
}

/// The sending half of [`channel`]; clones send to the same reader.
#[derive(Debug)]
pub struct UnreadSender<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Clone for UnreadSender<T> {
    fn clone(&self) -> Self {
        self.shared.queue().senders += 1;
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for UnreadSender<T> {
    fn drop(&mut self) {
        let reader = {
            let mut queue = self.shared.queue();
            queue.senders -= 1;
            if queue.senders > 0 {
                return;
            }
            queue.reader.take()
        };
        if let Some(reader) = reader {
            reader.wake();
        }
    }
}

impl<T> UnreadSender<T> {
    /// Sends `item`, kept until it is read. Never waits.
    pub fn send(&self, item: T) {
        self.shared.with(|queue| queue.items.push_back(item));
    }

    /// Sends `item` in place of the item `key` sent last if that is still
    /// unread; otherwise at the end. Never waits.
    pub fn send_latest(&self, key: u64, item: T) {
        self.shared.with(|queue| {
            if let Some(&number) = queue.latest.get(&key)
                && let Some(unread) = number
                    .checked_sub(queue.read)
                    .and_then(|at| usize::try_from(at).ok())
                    .and_then(|at| queue.items.get_mut(at))
            {
                *unread = item;
                return;
            }
            let number = queue.read + queue.items.len() as u64;
            queue.items.push_back(item);
            queue.latest.insert(key, number);
        });
    }

    /// Sends `item`, unless `merge` takes it into the last unread item: it
    /// gives the item back when it does not. Never waits.
    pub fn send_or_merge(&self, item: T, merge: impl FnOnce(&mut T, T) -> Option<T>) {
        self.shared.with(|queue| {
            let item = match queue.items.back_mut() {
                Some(last) => merge(last, item),
                None => Some(item),
            };
            if let Some(item) = item {
                queue.items.push_back(item);
            }
        });
    }
}

/// The reading half of [`channel`].
#[derive(Debug)]
pub struct UnreadReceiver<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Drop for UnreadReceiver<T> {
    fn drop(&mut self) {
        let mut queue = self.shared.queue();
        queue.receiver_gone = true;
        queue.items.clear();
        queue.latest.clear();
    }
}

impl<T> UnreadReceiver<T> {
    /// The next item, in the order they were sent (see the module); `None`
    /// once every sender is gone and every item has been read.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut queue = self.shared.queue();
        if let Some(item) = queue.items.pop_front() {
            queue.read += 1;
            return Poll::Ready(Some(item));
        }
        if queue.senders == 0 {
            return Poll::Ready(None);
        }
        queue.reader = Some(cx.waker().clone());
        Poll::Pending
    }

    /// [`UnreadReceiver::poll_recv`] as a future.
    pub async fn recv(&mut self) -> Option<T> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Items waiting to be read.
    pub fn len(&self) -> usize {
        self.shared.queue().items.len()
    }

    /// True when no item waits to be read.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read_all(mut receiver: UnreadReceiver<u32>) -> Vec<u32> {
        let mut items = Vec::new();
        while let Some(item) = receiver.recv().await {
            items.push(item);
        }
        items
    }

    #[tokio::test]
    async fn an_unread_item_of_a_key_is_replaced_in_place_by_the_key_s_newest() {
        let (sender, mut receiver) = channel();
        sender.send_latest(1, 10);
        sender.send(0);
        sender.send_latest(1, 11);
        sender.send_latest(2, 20);
        sender.send_latest(1, 12);
        assert_eq!(receiver.recv().await, Some(12));
        // Read: the key's next item is a new one, after what waits.
        sender.send_latest(1, 13);
        sender.send_latest(1, 14);
        drop(sender);
        assert_eq!(read_all(receiver).await, [0, 20, 14]);
    }

    #[tokio::test]
    async fn an_item_merges_into_the_last_unread_one_or_is_sent() {
        let (sender, receiver) = channel();
        let add_to_odd = |last: &mut u32, item: u32| {
            if *last % 2 == 1 {
                *last += item;
                None
            } else {
                Some(item)
            }
        };
        sender.send_or_merge(1, add_to_odd);
        sender.send_or_merge(2, add_to_odd);
        sender.send_or_merge(4, add_to_odd);
        sender.send(6);
        sender.send_or_merge(5, add_to_odd);
        assert_eq!(receiver.len(), 3);
        drop(sender);
        assert_eq!(read_all(receiver).await, [7, 6, 5]);
    }

    /// A reader that keeps up is sent every item as it was sent.
    #[tokio::test]
    async fn a_reader_that_keeps_up_gets_every_item() {
        let (sender, mut receiver) = channel();
        let (read, mut was_read) = tokio::sync::mpsc::channel(1);
        let sending = tokio::spawn(async move {
            for n in 1..=100 {
                sender.send_latest(7, n);
                sender.send_or_merge(0, |last, item| {
                    *last += item;
                    None
                });
                sender.send(1_000 + n);
                was_read.recv().await;
            }
        });
        let mut seen = Vec::new();
        while let Some(item) = receiver.recv().await {
            seen.push(item);
            if receiver.is_empty() {
                let _ = read.send(()).await;
            }
        }
        sending.await.unwrap();
        let expected: Vec<u32> = (1..=100).flat_map(|n| [n, 1_000 + n]).collect();
        assert_eq!(seen, expected);
    }

    #[tokio::test]
    async fn a_gone_reader_holds_nothing() {
        let (sender, receiver) = channel();
        sender.send(1);
        drop(receiver);
        for n in 0..1_000u32 {
            sender.send(n);
            sender.send_latest(u64::from(n), n);
        }
        let queue = sender.shared.queue();
        assert!(queue.items.is_empty() && queue.latest.is_empty());
    }

    /// The reader is woken by a send and by the last sender going.
    #[tokio::test]
    async fn a_waiting_reader_is_woken() {
        let (sender, receiver) = channel();
        let reading = tokio::spawn(read_all(receiver));
        tokio::task::yield_now().await;
        sender.send(3);
        tokio::task::yield_now().await;
        drop(sender);
        assert_eq!(reading.await.unwrap(), [3]);
    }
}
