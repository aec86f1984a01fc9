//! Password confirmations (change password, delete account) count per address (the login's
//! allowance, in a bucket of their own) and per account, at most one of an account's at a time: a
//! right password clears the login backoff, so without this an account holder could loop them
//! and keep the hashing threads busy for everyone else.

use super::rate::Action;
use crate::auth::caller::ClientInfo;
use crate::auth::AuthService;
use crate::error::AppError;
use std::collections::HashSet;
use std::sync::Mutex;

/// The accounts whose password is being checked again right now.
pub(crate) type InFlight = std::sync::Arc<Mutex<HashSet<String>>>;

/// An account's one place among [`InFlight`], given back when dropped.
pub(crate) struct Confirming {
    set: InFlight,
    user_id: String,
}

impl Confirming {
    fn claim(set: &InFlight, user_id: &str) -> Option<Self> {
        let fresh = set.lock().unwrap_or_else(|p| p.into_inner()).insert(user_id.to_owned());
        fresh.then(|| Self { set: set.clone(), user_id: user_id.to_owned() })
    }
}

impl Drop for Confirming {
    fn drop(&mut self) {
        self.set.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.user_id);
    }
}

impl AuthService {
    /// A password confirmation of `user_id` from `client`: limited per address (as logins are)
    /// and per account, and at most one of the account's at a time (on this instance). The
    /// returned guard holds that place until dropped.
    pub(crate) async fn limit_confirmation(&self, user_id: &str, client: &ClientInfo) -> Result<Confirming, AppError> {
        self.limit_rate(Action::ConfirmPassword, client).await?;
        let limits = self.inner.rate_limiter.account_bucket(user_id);
        self.enforce(Action::ConfirmPassword, limits, client).await?;
        Confirming::claim(&self.inner.confirming, user_id).ok_or(AppError::TooManyRequests { retry_after: 1 })
    }
}
