//! Progress toward an MCP client, bounded by the call and never by the
//! client.
//!
//! A guest may report progress far faster than a client reads it, and a
//! client may stop reading altogether. So the call runs on its own, whatever
//! the client does: at most one notification is being sent at a time, and
//! while it is, newer reports replace each other in a single slot (the
//! client sees the latest state, never a backlog). When the call ends, the
//! last report still goes out before the result, but a client that has not
//! taken the one before it within [`FLUSH_GRACE`] gets none: the result is
//! not held for it.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::mpsc;

use toolhost_runtime::GuestEvent;

/// How long a finished call waits for a slow client to take its last
/// progress notification before the result goes out without it.
pub(super) const FLUSH_GRACE: Duration = Duration::from_millis(100);

type Sending = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Drives `call` to its end while forwarding the progress events that
/// arrive on `received` through `send`, coalesced as the module says.
/// Log events are dropped: they are not progress.
pub(super) async fn forward<T>(
    call: impl Future<Output = T>,
    mut received: mpsc::UnboundedReceiver<GuestEvent>,
    send: impl Fn(GuestEvent) -> Sending,
) -> T {
    tokio::pin!(call);
    let mut latest: Option<GuestEvent> = None;
    let mut sending: Option<Sending> = None;
    let mut open = true;
    loop {
        if sending.is_none()
            && let Some(event) = latest.take()
        {
            sending = Some(send(event));
        }
        tokio::select! {
            biased;
            result = &mut call => {
                while let Ok(event) = received.try_recv() {
                    keep_progress(&mut latest, event);
                }
                finish(sending, latest, &send).await;
                return result;
            }
            () = async { sending.as_mut().expect("guarded").await }, if sending.is_some() => {
                sending = None;
            }
            event = received.recv(), if open => match event {
                Some(event) => {
                    keep_progress(&mut latest, event);
                    while let Ok(event) = received.try_recv() {
                        keep_progress(&mut latest, event);
                    }
                }
                None => open = false,
            },
        }
    }
}

/// Keeps `event` in the slot if it is progress, replacing what was there.
fn keep_progress(latest: &mut Option<GuestEvent>, event: GuestEvent) {
    if matches!(event, GuestEvent::Progress { .. }) {
        *latest = Some(event);
    }
}

/// Sends what is left after the call ended, within [`FLUSH_GRACE`].
async fn finish(
    sending: Option<Sending>,
    latest: Option<GuestEvent>,
    send: &impl Fn(GuestEvent) -> Sending,
) {
    let flush = async {
        if let Some(sending) = sending {
            sending.await;
        }
        if let Some(event) = latest {
            send(event).await;
        }
    };
    let _ = tokio::time::timeout(FLUSH_GRACE, flush).await;
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    fn progress(done: u64) -> GuestEvent {
        GuestEvent::Progress {
            done,
            total: None,
            message: None,
        }
    }

    fn done_of(event: &GuestEvent) -> u64 {
        match event {
            GuestEvent::Progress { done, .. } => *done,
            _ => panic!("a log line was forwarded"),
        }
    }

    /// A call that reports `n` events, yielding between them, then returns `n`.
    async fn reporting_call(events: mpsc::UnboundedSender<GuestEvent>, n: u64) -> u64 {
        for done in 1..=n {
            let _ = events.send(progress(done));
            let _ = events.send(GuestEvent::Log {
                level: "info",
                message: "not progress".into(),
            });
            tokio::task::yield_now().await;
        }
        n
    }

    #[tokio::test]
    async fn a_client_that_never_reads_neither_stalls_the_call_nor_grows_a_backlog() {
        let (events, received) = mpsc::unbounded_channel();
        let started = Arc::new(Mutex::new(Vec::new()));
        let seen = started.clone();
        let send = move |event: GuestEvent| -> Sending {
            seen.lock().unwrap().push(done_of(&event));
            // The client never takes it.
            Box::pin(std::future::pending())
        };
        let result = forward(reporting_call(events, 100_000), received, send).await;
        assert_eq!(result, 100_000);
        // One send started and never finished; nothing queued behind it.
        assert_eq!(*started.lock().unwrap(), vec![1]);
    }

    #[tokio::test]
    async fn a_slow_client_sees_the_latest_state_and_the_last_report_before_the_result() {
        let (events, received) = mpsc::unbounded_channel();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let seen = sent.clone();
        let send = move |event: GuestEvent| -> Sending {
            let seen = seen.clone();
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                seen.lock().unwrap().push(done_of(&event));
            })
        };
        let call = async move {
            for done in 1..=1_000 {
                let _ = events.send(progress(done));
                if done % 10 == 0 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        };
        forward(call, received, send).await;
        let sent = sent.lock().unwrap();
        assert!(sent.len() < 1_000 / 5, "coalesced: {} sent", sent.len());
        assert!(sent.windows(2).all(|w| w[0] < w[1]), "in order: {sent:?}");
        assert_eq!(sent.last(), Some(&1_000), "the last report goes out");
    }

    #[tokio::test]
    async fn a_client_that_keeps_up_gets_the_final_state() {
        let (events, received) = mpsc::unbounded_channel();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let seen = sent.clone();
        let send = move |event: GuestEvent| -> Sending {
            seen.lock().unwrap().push(done_of(&event));
            Box::pin(async {})
        };
        forward(reporting_call(events, 50), received, send).await;
        assert_eq!(sent.lock().unwrap().last(), Some(&50));
    }
}
