use std::sync::atomic::AtomicBool;

use super::*;

/// By node: the slots counted and the number of its last request applied.
type NodeSlots = HashMap<String, (u64, u64)>;

/// A store in memory, as Redis's scripts behave (without refill, so counts
/// are exact, and without leases lapsing), counting its requests.
#[derive(Default)]
struct Memory {
    buckets: Mutex<HashMap<String, u64>>,
    /// By key, by node: the slots counted and the last request's number.
    slots: Mutex<HashMap<String, NodeSlots>>,
    takes: AtomicU64,
    broken: AtomicBool,
    /// Slot requests are applied, then never answered (a reply lost).
    mute: AtomicBool,
    nodes: AtomicU64,
}

impl Memory {
    fn check(&self) -> Result<(), StoreError> {
        if self.broken.load(Ordering::Relaxed) {
            return Err(StoreError("connection refused".into()));
        }
        Ok(())
    }

    /// The slots counted under `key`, all nodes together.
    fn slots_counted(&self, key: &str) -> u64 {
        self.slots
            .lock()
            .unwrap()
            .get(key)
            .map_or(0, |nodes| nodes.values().map(|(n, _)| n).sum())
    }

    /// Lowers `node`'s count under `key` to `holding`, unless a later
    /// request got there first: false then.
    fn hold(&self, key: &str, node: &str, holding: Holding) -> bool {
        let mut slots = self.slots.lock().unwrap();
        let (count, seq) = slots
            .entry(key.to_string())
            .or_default()
            .entry(node.to_string())
            .or_default();
        if holding.seq <= *seq && *seq != 0 {
            return false;
        }
        *seq = holding.seq;
        *count = (*count).min(holding.held);
        true
    }

    async fn answer<T>(&self, answer: T) -> T {
        if self.mute.load(Ordering::Relaxed) {
            std::future::pending::<()>().await;
        }
        answer
    }
}

/// One node's view of a [`Memory`].
struct Member {
    memory: Arc<Memory>,
    name: String,
}

impl Store for Member {
    fn take<'a>(
        &'a self,
        key: &'a str,
        pool: Pool,
        want: u64,
        min: u64,
    ) -> BoxFuture<'a, Result<Grant, StoreError>> {
        Box::pin(async move {
            let memory = &self.memory;
            memory.check()?;
            memory.takes.fetch_add(1, Ordering::Relaxed);
            let mut map = memory.buckets.lock().unwrap();
            let left = map.entry(key.to_string()).or_insert(pool.capacity());
            let granted = want.min(*left);
            if granted < min {
                return Ok(Grant {
                    granted: 0,
                    retry_after: Duration::from_millis(500),
                });
            }
            *left -= granted;
            Ok(Grant {
                granted,
                retry_after: Duration::ZERO,
            })
        })
    }

    fn give<'a>(
        &'a self,
        key: &'a str,
        _: Pool,
        amount: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.memory.check()?;
            *self
                .memory
                .buckets
                .lock()
                .unwrap()
                .get_mut(key)
                .expect("given back after taken") += amount;
            Ok(())
        })
    }

    fn take_slots<'a>(
        &'a self,
        key: &'a str,
        capacity: u64,
        want: u64,
        min: u64,
        holding: Holding,
    ) -> BoxFuture<'a, Result<Grant, StoreError>> {
        Box::pin(async move {
            let memory = &self.memory;
            memory.check()?;
            memory.takes.fetch_add(1, Ordering::Relaxed);
            if !memory.hold(key, &self.name, holding) {
                return memory
                    .answer(Ok(Grant {
                        granted: 0,
                        retry_after: Duration::ZERO,
                    }))
                    .await;
            }
            let granted = want.min(capacity.saturating_sub(memory.slots_counted(key)));
            let grant = if granted < min {
                Grant {
                    granted: 0,
                    retry_after: Duration::from_millis(500),
                }
            } else {
                let mut slots = memory.slots.lock().unwrap();
                slots.get_mut(key).unwrap().get_mut(&self.name).unwrap().0 += granted;
                Grant {
                    granted,
                    retry_after: Duration::ZERO,
                }
            };
            memory.answer(Ok(grant)).await
        })
    }

    fn hold_slots<'a>(
        &'a self,
        key: &'a str,
        holding: Holding,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.memory.check()?;
            self.memory.hold(key, &self.name, holding);
            self.memory.answer(Ok(())).await
        })
    }

    fn renew(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move { self.memory.check() })
    }

    fn cache_get<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        Box::pin(async move { self.memory.check().map(|()| None) })
    }

    fn cache_put<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
        _: Vec<u8>,
        _: CacheBounds,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move { self.memory.check() })
    }
}

fn node(store: &Arc<Memory>, nodes: u32) -> Arc<Shared> {
    let config = SharedConfig {
        nodes,
        lease: Duration::from_millis(40),
        ..SharedConfig::default()
    };
    let name = format!("node-{}", store.nodes.fetch_add(1, Ordering::Relaxed));
    let member = Member {
        memory: store.clone(),
        name,
    };
    Shared::new(Arc::new(member), config)
}

const RATE: Pool = Pool::Bucket {
    capacity: 100,
    per_second: 0.001,
};

async fn admitted(node: &Shared, key: &str, pool: Pool, calls: usize) -> usize {
    let mut yes = 0;
    for _ in 0..calls {
        if let Taken::Yes(()) = node.take_one(key, pool).await {
            yes += 1;
        }
    }
    yes
}

#[tokio::test]
async fn calls_take_permits_in_batches_not_one_request_each() {
    let store = Arc::new(Memory::default());
    let one = node(&store, 1);
    assert_eq!(admitted(&one, "t", RATE, 100).await, 100);
    let takes = store.takes.load(Ordering::Relaxed);
    // Batches of 8: 13 requests for 100 calls, not 100.
    assert_eq!(takes, 13, "{takes} store requests for 100 calls");
    assert!(matches!(one.take_one("t", RATE).await, Taken::No(_)));
    // The bucket is known empty for a while: refusals are not asked again.
    let takes = store.takes.load(Ordering::Relaxed);
    assert!(matches!(one.take_one("t", RATE).await, Taken::No(_)));
    assert_eq!(store.takes.load(Ordering::Relaxed), takes);
}

#[tokio::test]
async fn nodes_together_admit_what_one_node_would() {
    let store = Arc::new(Memory::default());
    let (a, b, c) = (node(&store, 3), node(&store, 3), node(&store, 3));
    let mut total = 0;
    for _ in 0..60 {
        total += admitted(&a, "t", RATE, 1).await;
        total += admitted(&b, "t", RATE, 1).await;
        total += admitted(&c, "t", RATE, 1).await;
    }
    assert_eq!(total, 100, "three nodes admitted {total} of a quota of 100");
}

#[tokio::test]
async fn slots_in_use_never_pass_the_quota_and_spares_go_back_when_idle() {
    let store = Arc::new(Memory::default());
    let (a, b) = (node(&store, 2), node(&store, 2));
    let slots = Pool::Slots { capacity: 6 };
    // Batches of at most 6 / (2 × 2) = 1: no node hoards spares.
    let held_a = admitted(&a, "s", slots, 10).await;
    let held_b = admitted(&b, "s", slots, 10).await;
    assert_eq!((held_a, held_b), (6, 0));
    for _ in 0..6 {
        a.release("s", slots);
    }
    // One spare stays with `a` until it has been idle for half a lease.
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(admitted(&b, "s", slots, 10).await, 5);
    tokio::time::sleep(Duration::from_millis(25)).await;
    a.return_idle(Instant::now()).await;
    assert_eq!(admitted(&b, "s", slots, 10).await, 1);
}

#[tokio::test]
async fn unused_rate_permits_lapse_after_a_lease_and_go_back() {
    let store = Arc::new(Memory::default());
    let a = node(&store, 1);
    assert_eq!(admitted(&a, "t", RATE, 1).await, 1);
    // `a` holds 7 more; after a lease they go back to the store.
    tokio::time::sleep(Duration::from_millis(45)).await;
    a.return_idle(Instant::now()).await;
    assert_eq!(store.buckets.lock().unwrap()["t"], 99);
}

#[tokio::test]
async fn a_failing_store_is_not_asked_again_until_the_retry_time() {
    let store = Arc::new(Memory::default());
    let a = node(&store, 1);
    store.broken.store(true, Ordering::Relaxed);
    assert!(matches!(a.take_one("t", RATE).await, Taken::Down(_)));
    let requests = a.stats().requests;
    assert!(matches!(a.take_one("t", RATE).await, Taken::Down(_)));
    assert_eq!(a.stats().requests, requests, "asked again while down");
    assert!(!a.stats().up);
    store.broken.store(false, Ordering::Relaxed);
    *a.down_until.lock().unwrap() = Some(Instant::now());
    assert!(matches!(a.take_one("t", RATE).await, Taken::Yes(())));
    assert!(a.stats().up, "up again once it answers");
}

#[tokio::test]
async fn fuel_is_reserved_from_slices_and_refunds_stay_local() {
    let store = Arc::new(Memory::default());
    let a = node(&store, 1);
    let fuel = Pool::Bucket {
        capacity: 8_000,
        per_second: 0.001,
    };
    // A slice is 8000 / 8 = 1000 beyond what the call needs.
    assert!(matches!(
        a.reserve("f", fuel, 500, 80).await,
        Taken::Yes(500)
    ));
    assert_eq!(store.takes.load(Ordering::Relaxed), 1);
    a.refund("f", fuel, 400);
    assert!(matches!(
        a.reserve("f", fuel, 1_000, 80).await,
        Taken::Yes(1_000)
    ));
    assert_eq!(
        store.takes.load(Ordering::Relaxed),
        1,
        "served from the slice"
    );
    // What is left in the store, then clamped to it, then refused.
    assert!(matches!(
        a.reserve("f", fuel, 100_000, 80).await,
        Taken::Yes(6_900)
    ));
    assert!(matches!(a.reserve("f", fuel, 100, 80).await, Taken::No(_)));
}

const FOUR_SLOTS: Pool = Pool::Slots { capacity: 4 };

/// `a` holds two spare slots of [`FOUR_SLOTS`] (batches of 4 / 2 = 2).
async fn spares(a: &Shared) {
    assert_eq!(admitted(a, "s", FOUR_SLOTS, 1).await, 1);
    a.lease("s", FOUR_SLOTS).lease().release(1, Instant::now());
}

fn store_back(store: &Memory, a: &Shared) {
    store.broken.store(false, Ordering::Relaxed);
    store.mute.store(false, Ordering::Relaxed);
    *a.down_until.lock().unwrap() = None;
}

#[tokio::test]
async fn spare_slots_whose_give_back_failed_are_given_back_later() {
    let store = Arc::new(Memory::default());
    let a = node(&store, 1);
    spares(&a).await;
    store.broken.store(true, Ordering::Relaxed);
    a.return_idle(Instant::now() + a.config.lease).await;
    store_back(&store, &a);
    a.return_idle(Instant::now() + a.config.lease).await;
    let admitted = admitted(&a, "s", FOUR_SLOTS, 4).await;
    assert_eq!(admitted, 4, "{admitted} of 4 slots once the store is back");
}

#[tokio::test]
async fn slots_taken_by_a_request_whose_answer_was_lost_come_back() {
    let store = Arc::new(Memory::default());
    let a = node(&store, 1);
    store.mute.store(true, Ordering::Relaxed);
    // The store's timeout: the store applied the take, the node never heard.
    assert!(matches!(a.take_one("s", FOUR_SLOTS).await, Taken::Down(_)));
    // A caller that goes away while the store answers.
    store_back(&store, &a);
    store.mute.store(true, Ordering::Relaxed);
    let gone = tokio::time::timeout(Duration::from_millis(5), a.take_one("s", FOUR_SLOTS)).await;
    assert!(gone.is_err(), "the take was answered");
    store_back(&store, &a);
    a.return_idle(Instant::now() + a.config.lease).await;
    let admitted = admitted(&a, "s", FOUR_SLOTS, 4).await;
    assert_eq!(admitted, 4, "{admitted} of 4 slots after two lost answers");
}

#[tokio::test]
async fn slots_a_node_lost_track_of_go_to_others_and_never_past_the_quota() {
    let store = Arc::new(Memory::default());
    let (a, b) = (node(&store, 1), node(&store, 1));
    store.mute.store(true, Ordering::Relaxed);
    assert!(matches!(a.take_one("s", FOUR_SLOTS).await, Taken::Down(_)));
    store_back(&store, &a);
    // `a`'s lost 2 still count: `b` gets the other 2, no more.
    assert_eq!(admitted(&b, "s", FOUR_SLOTS, 4).await, 2);
    a.return_idle(Instant::now()).await;
    assert_eq!(store.slots_counted("s"), 2, "only b's slots still count");
    assert_eq!(admitted(&a, "s", FOUR_SLOTS, 4).await, 2);
    assert_eq!(admitted(&b, "s", FOUR_SLOTS, 4).await, 0);
    assert_eq!(store.slots_counted("s"), 4);
}
