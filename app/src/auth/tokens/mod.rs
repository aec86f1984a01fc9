//! What Baton issues and checks: access JWTs (`access`), the refresh token's format (`refresh`),
//! the keys every instance shares (`keys`), and DPoP, the binding of a session to a client's key
//! (`dpop`).

pub mod access;
pub mod dpop;
pub mod keys;
pub(crate) mod refresh;
