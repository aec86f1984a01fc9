//! The references `scripts/bench.sh` measures Baton against, on the same machine in the same run:
//! - `bench-reference serve 127.0.0.1:PORT`: the barest axum server (`GET /` → "Hello, World!"),
//!   same runtime and allocator as Baton: the ceiling for any request this machine can answer.
//! - `bench-reference hash`: the time of one Argon2id hash at Baton's default parameters
//!   (19 MiB, t=2, p=1), the floor of a login; printed in ms, the median of 9.

use argon2::{Algorithm, Argon2, Params, PasswordHasher, Version};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") => serve(args.get(1).map_or("127.0.0.1:3900", String::as_str)),
        Some("hash") => hash(),
        _ => {
            eprintln!("usage: bench-reference serve ADDR | hash");
            std::process::exit(2);
        }
    }
}

#[tokio::main]
async fn serve(addr: &str) {
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "Hello, World!" }));
    let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
    axum::serve(listener, app).await.expect("serve");
}

fn hash() {
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid parameters");
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let salt = argon2::password_hash::SaltString::from_b64("c2FsdHNhbHRzYWx0c2FsdA").expect("salt");
    let mut times: Vec<f64> = (0..9)
        .map(|_| {
            let started = Instant::now();
            argon2.hash_password(b"correct horse battery staple", &salt).expect("hash");
            started.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    println!("{:.2}", times[4]);
}
