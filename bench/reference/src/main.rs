//! The references `scripts/bench.sh` measures Baton against, on the same machine in the same run:
//! - `bench-reference serve 127.0.0.1:PORT`: the barest axum server (`GET /` → "Hello, World!"),
//!   same runtime as Baton: the ceiling for any request this machine can answer. `GET /headers`
//!   answers the same with the security headers every Baton response carries, written as constants:
//!   what those bytes alone cost (to send, and for the benchmark client on the same cores to read).
//! - `bench-reference hash`: the time of one Argon2id hash at Baton's default parameters
//!   (19 MiB, t=2, p=1), the floor of a login; printed in ms, the median of 9. Then, on the same
//!   line, the time of one hash while every core hashes at once (9 per core, one median): the
//!   cores share one cache and one memory bus, so a login flood's ceiling is cores ÷ this one.

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

/// As Baton sends them on a JSON answer (server/src/security_headers.rs).
const SECURITY_HEADERS: [(&str, &str); 6] = [
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    (
        "permissions-policy",
        "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), payment=(), usb=()",
    ),
    ("cross-origin-opener-policy", "same-origin"),
    ("content-security-policy", "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"),
];

#[tokio::main]
async fn serve(addr: &str) {
    let app = axum::Router::new()
        .route("/", axum::routing::get(|| async { "Hello, World!" }))
        .route("/headers", axum::routing::get(|| async { (SECURITY_HEADERS, "Hello, World!") }));
    let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
    axum::serve(listener, app).await.expect("serve");
}

fn hash() {
    let alone = hash_times(9);
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let start = std::sync::Barrier::new(cores);
    let together: Vec<f64> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..cores)
            .map(|_| {
                scope.spawn(|| {
                    start.wait();
                    hash_times(9)
                })
            })
            .collect();
        threads.into_iter().flat_map(|thread| thread.join().expect("hash thread")).collect()
    });
    println!("{:.2} {:.2}", median(alone), median(together));
}

/// The milliseconds each of `n` hashes took, one after another.
fn hash_times(n: usize) -> Vec<f64> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid parameters");
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let salt = argon2::password_hash::SaltString::from_b64("c2FsdHNhbHRzYWx0c2FsdA").expect("salt");
    (0..n)
        .map(|_| {
            let started = Instant::now();
            argon2.hash_password(b"correct horse battery staple", &salt).expect("hash");
            started.elapsed().as_secs_f64() * 1000.0
        })
        .collect()
}

fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}
