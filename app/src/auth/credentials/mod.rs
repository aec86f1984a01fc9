//! How a person proves who they are: a password (`password`, Argon2id on threads of its own).

pub mod password;
