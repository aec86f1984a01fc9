//! Integration tests over real HTTP against the server on port 0, each with a fresh database.
//! Run on SQLite by default and on PostgreSQL with `BATON_TEST_PG_URL` (see scripts/test.sh).

mod accounts;
mod assets;
mod cli;
mod common;
mod confirmations;
mod dpop;
mod dpop_client;
mod http;
mod instances;
mod keys;
mod limits;
mod load;
mod logs;
mod mail;
mod mail_sink;
mod metrics;
mod one_time_codes;
mod outage;
mod sessions;
mod shutdown;
mod startup;
mod storage;
mod throttling;
mod tokens;
mod tutorial;
