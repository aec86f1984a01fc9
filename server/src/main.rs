use app::auth::{Config, TokenSigner};
use leptos::config::get_configuration;
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

const USAGE: &str = "usage: server [rotate-signing-key]\n\
    Serves Baton on LEPTOS_SITE_ADDR; configuration comes from the environment (see README.md).\n\
    rotate-signing-key: add a new JWT signing key; old keys keep verifying until their tokens expire.";

#[tokio::main]
async fn main() -> ExitCode {
    dotenvy::dotenv().ok();
    tracing_subscriber::fmt()
        // Colour codes only for a terminal: log files and collectors get plain `key=value` lines.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn")))
        .init();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match std::env::args().nth(1).as_deref() {
        None => {}
        Some("rotate-signing-key") => {
            return match TokenSigner::rotate(&config.data_dir) {
                Ok(kid) => {
                    println!("new signing key {kid}; restart the server to sign with it");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Some(_) => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    }
    let leptos = match get_configuration(None) {
        Ok(conf) => conf.leptos_options,
        Err(e) => {
            eprintln!("error: leptos configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let addr = leptos.site_addr;
    let state = match app::auth::AuthService::start(config).await {
        Ok(auth) => server::AppState::new(auth, leptos),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: LEPTOS_SITE_ADDR {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The bound address, not the configured one: with port 0 the OS picks, and scripts read this line.
    match listener.local_addr() {
        Ok(bound) => tracing::info!("listening on http://{bound}"),
        Err(_) => tracing::info!("listening on http://{addr}"),
    }
    if let Err(e) = server::serve(listener, state, shutdown_signal()).await {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// SIGINT or SIGTERM: stop accepting, finish what is in flight, exit.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
}
