//! What Baton issues and checks: access JWTs (`access`), the refresh token's format (`refresh`),
//! the keys every instance shares (`keys`), and DPoP, the binding of a session to a client's key
//! (`dpop`); the single-use tokens of mailed `links`.

pub mod access;
pub mod dpop;
pub mod keys;
pub(crate) mod links;
pub(crate) mod refresh;
