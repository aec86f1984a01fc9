//! The real binary: bad configuration stops it with a message naming the variable.

use std::process::Command;

#[test]
fn bad_configuration_stops_the_server_naming_the_variable() {
    let bad = [
        ("ACCESS_TOKEN_TTL", "five minutes"),
        ("DATABASE_URL", "mysql://db"),
        ("ARGON2_MEMORY_KIB", "1"),
        ("REFRESH_REUSE_GRACE", "61"),
        ("REFRESH_IDLE_TTL", "60"), // shorter than the default ACCESS_TOKEN_TTL of 300
        ("JWT_LEEWAY", "30"),
    ];
    for (var, value) in bad {
        let out = Command::new(env!("CARGO_BIN_EXE_server"))
            .env(var, value)
            .env("BATON_DATA_DIR", std::env::temp_dir().join("baton-never-created"))
            .output()
            .expect("the server binary runs");
        assert_eq!(out.status.code(), Some(2), "{var}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(var), "{var}: {stderr}");
    }
}
