//! Storage mechanisms: the database pool (`db`), the one write queue with its group commit
//! (`writer`), and files only the server's user may read (`secret_file`). Nothing here knows a
//! use case: what a job writes is the caller's business.

pub mod db;
pub(crate) mod secret_file;
pub(crate) mod writer;
