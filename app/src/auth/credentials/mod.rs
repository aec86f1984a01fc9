//! How a person proves who they are: a password (`password`, Argon2id on threads of its own), and
//! one-time codes as a second factor (`one_time`: TOTP and recovery codes).

pub(crate) mod one_time;
pub mod password;
