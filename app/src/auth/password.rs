//! Argon2id hashing off the async executor, with bounded concurrency.
//!
//! Each hash takes ~20 MiB and tens of milliseconds of one core. Running it on the executor would
//! stall every other request; running unboundedly would let a login flood exhaust memory. So
//! hashes run on the blocking pool, at most `max_concurrent` at once, and a caller that cannot get
//! a turn within a few seconds gets a 503 instead of queueing forever.

use super::config::Argon2Settings;
use crate::domain::Password;
use crate::error::AppError;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

const QUEUE_WAIT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    permits: Arc<Semaphore>,
    /// Verified against when the user does not exist, so that answer takes as long as a wrong password.
    dummy_hash: Arc<str>,
}

pub struct Verified {
    pub ok: bool,
    /// The stored hash used other parameters than the configured ones.
    pub needs_rehash: bool,
}

impl PasswordHasher {
    pub async fn new(settings: Argon2Settings, max_concurrent: usize) -> Result<Self, AppError> {
        let params = Params::new(settings.memory_kib, settings.iterations, settings.parallelism, None)
            .map_err(AppError::internal)?;
        let mut hasher = Self {
            params,
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            dummy_hash: Arc::from(""),
        };
        let random = uuid::Uuid::new_v4().to_string();
        hasher.dummy_hash = hasher.hash(&Password::parse(&random)?).await?.into();
        Ok(hasher)
    }

    fn argon2(params: Params) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
    }

    #[tracing::instrument(skip_all)]
    pub async fn hash(&self, password: &Password) -> Result<String, AppError> {
        let password = password.clone();
        let params = self.params.clone();
        self.run_blocking(move || {
            let salt = SaltString::generate(&mut rand::rngs::OsRng);
            Self::argon2(params)
                .hash_password(password.expose().as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(AppError::internal)
        })
        .await
    }

    /// `stored` is `None` for an unknown user: the dummy hash is verified instead, and fails.
    #[tracing::instrument(skip_all)]
    pub async fn verify(&self, password: &Password, stored: Option<&str>) -> Result<Verified, AppError> {
        let known = stored.is_some();
        let stored = stored.map_or_else(|| self.dummy_hash.to_string(), str::to_owned);
        let password = password.clone();
        let params = self.params.clone();
        self.run_blocking(move || {
            let parsed = PasswordHash::new(&stored).map_err(AppError::internal)?;
            let ok = Argon2::default().verify_password(password.expose().as_bytes(), &parsed).is_ok();
            let current = Params::try_from(&parsed).ok();
            let needs_rehash = parsed.algorithm != argon2::ARGON2ID_IDENT
                || current.is_none_or(|p| {
                    p.m_cost() != params.m_cost() || p.t_cost() != params.t_cost() || p.p_cost() != params.p_cost()
                });
            Ok(Verified { ok: ok && known, needs_rehash })
        })
        .await
    }

    async fn run_blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, AppError> + Send + 'static,
    ) -> Result<T, AppError> {
        let permit = tokio::time::timeout(QUEUE_WAIT, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| AppError::Busy { retry_after: 2 })?
            .map_err(AppError::internal)?;
        tokio::task::spawn_blocking(move || {
            // Held until the hash is done, even if the request that asked was cancelled meanwhile.
            let _permit = permit;
            work()
        })
        .await
        .map_err(AppError::internal)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(memory_kib: u32) -> Argon2Settings {
        Argon2Settings { memory_kib, iterations: 1, parallelism: 1 }
    }

    #[tokio::test]
    async fn hashes_verify_and_report_parameter_changes() {
        let old = PasswordHasher::new(settings(8 * 1024), 2).await.unwrap();
        let pw = Password::parse("correct horse battery").unwrap();
        let wrong = Password::parse("incorrect horse battery").unwrap();
        let hash = old.hash(&pw).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=8192,t=1,p=1$"));
        let v = old.verify(&pw, Some(&hash)).await.unwrap();
        assert!(v.ok && !v.needs_rehash);
        assert!(!old.verify(&wrong, Some(&hash)).await.unwrap().ok);
        assert!(!old.verify(&pw, None).await.unwrap().ok, "unknown users never verify");

        let new = PasswordHasher::new(settings(9 * 1024), 2).await.unwrap();
        let v = new.verify(&pw, Some(&hash)).await.unwrap();
        assert!(v.ok && v.needs_rehash, "old parameters still verify and ask for a rehash");
    }
}
