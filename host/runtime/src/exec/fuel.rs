//! Fuel quotas that calls draw on, such as a tenant's fuel per minute.
//!
//! The executor reserves an attempt's whole fuel budget from the account
//! when the attempt is admitted, before any instance exists, and gives back
//! what the guest did not burn when it ends. Calls that run at once thus
//! never spend more than the account holds, and an attempt whose future is
//! dropped mid-run (a client that hung up) is charged its whole reservation,
//! since what it burned can no longer be read.

use std::sync::Arc;

use futures::future::BoxFuture;

use crate::outcome::Outcome;

/// A fuel quota calls draw on. Implement it to enforce your own quotas;
/// `serve` implements it for each tenant's `fuel_per_minute`.
pub trait FuelAccount: std::fmt::Debug + Send + Sync {
    /// Reserves fuel for one attempt whose budget is `budget`. Returns the
    /// fuel granted, at most `budget` (the attempt runs with that much), or
    /// the outcome that refuses the call, such as `rate-limited` with the
    /// time until the account holds enough again. (Boxed so the trait
    /// stays usable as `dyn FuelAccount`; an account kept elsewhere, such
    /// as a shared store, may have to ask it.)
    fn reserve(&self, budget: u64) -> BoxFuture<'_, Result<u64, Outcome>>;

    /// Gives back `fuel` that a reservation did not use.
    fn refund(&self, fuel: u64);
}

/// One attempt's reservation: refunds what was not burned when dropped.
pub(crate) struct Reservation {
    account: Arc<dyn FuelAccount>,
    /// The fuel granted.
    pub(crate) granted: u64,
    /// The fuel the attempt burned, once known.
    burned: Option<u64>,
}

impl Reservation {
    /// Reserves up to `budget` from `account`.
    pub(crate) async fn take(account: &Arc<dyn FuelAccount>, budget: u64) -> Result<Self, Outcome> {
        let granted = account.reserve(budget).await?.min(budget);
        Ok(Self {
            account: account.clone(),
            granted,
            burned: None,
        })
    }

    /// Records what the attempt burned; `None` (not read) charges it all.
    pub(crate) fn burned(&mut self, fuel: Option<u64>) {
        self.burned = fuel;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let burned = self.burned.unwrap_or(self.granted);
        let unused = self.granted.saturating_sub(burned);
        if unused > 0 {
            self.account.refund(unused);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Debug)]
    struct Pot(Mutex<u64>);

    impl FuelAccount for Pot {
        fn reserve(&self, budget: u64) -> BoxFuture<'_, Result<u64, Outcome>> {
            let mut left = self.0.lock().unwrap();
            let taken = if *left == 0 {
                Err(Outcome::RateLimited {
                    message: "spent".into(),
                    retry_after_ms: 1,
                })
            } else {
                let granted = budget.min(*left);
                *left -= granted;
                Ok(granted)
            };
            Box::pin(std::future::ready(taken))
        }

        fn refund(&self, fuel: u64) {
            *self.0.lock().unwrap() += fuel;
        }
    }

    fn take(pot: &Arc<dyn FuelAccount>, budget: u64) -> Result<Reservation, Outcome> {
        futures::executor::block_on(Reservation::take(pot, budget))
    }

    #[test]
    fn what_is_not_burned_goes_back_and_an_unread_attempt_pays_all() {
        let pot: Arc<dyn FuelAccount> = Arc::new(Pot(Mutex::new(100)));
        let left = |pot: &Arc<dyn FuelAccount>| format!("{pot:?}");
        let mut first = take(&pot, 60).unwrap();
        let second = take(&pot, 60).unwrap();
        assert_eq!(
            (first.granted, second.granted),
            (60, 40),
            "clamped to what is left"
        );
        assert!(take(&pot, 1).is_err());
        first.burned(Some(10));
        drop(first);
        assert!(left(&pot).contains("50"), "{}", left(&pot));
        drop(second);
        assert!(left(&pot).contains("50"), "dropped unread: all charged");
    }
}
