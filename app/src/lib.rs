//! Baton's shared crate: the pages and the route guard (compiled for both server and browser),
//! the wire types and errors, the server functions, and behind `ssr` the auth core.

pub mod api;
pub mod domain;
pub mod error;
pub mod server_fns;

#[cfg(feature = "ssr")]
pub mod auth;

mod ui;
pub use ui::{shell, App, SplitChunks, Stylesheet};
