use leptos::config::get_configuration;
use server::cli::{Invocation, USAGE};
use server::settings::Settings;
use std::process::ExitCode;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::EnvFilter;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    server::memory::release_freed_memory_at_once();
    let huge_pages_off = server::memory::no_transparent_huge_pages();
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime.block_on(serve_or_run(huge_pages_off)),
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve_or_run(huge_pages_off: bool) -> ExitCode {
    dotenvy::dotenv().ok();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let invocation = match Invocation::parse(&args) {
        Ok(invocation) => invocation,
        Err(e) => {
            eprintln!("error: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let json = match std::env::var("LOG_FORMAT").as_deref().map(str::trim) {
        Err(_) | Ok("" | "text") => false,
        Ok("json") => true,
        Ok(other) => {
            eprintln!("error: configuration: LOG_FORMAT: {other:?} is neither text nor json");
            return ExitCode::from(2);
        }
    };
    // A command's own output goes to stdout, so its log lines go to stderr.
    init_logging(json, !matches!(invocation, Invocation::Serve));
    if !huge_pages_off {
        tracing::warn!("could not turn transparent huge pages off: memory use may be 26 to 35 MB higher");
    }
    let settings = Settings::from_env();
    let settings = match invocation {
        Invocation::Help => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Invocation::Run(command) => return command.run(settings).await,
        Invocation::Serve => match settings {
            Ok(settings) => settings,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let leptos = match get_configuration(None) {
        Ok(conf) => conf.leptos_options,
        Err(e) => {
            eprintln!("error: leptos configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let metrics_addr = match std::env::var("METRICS_ADDR").ok().filter(|v| !v.trim().is_empty()) {
        None => None,
        Some(raw) => match raw.trim().parse::<std::net::SocketAddr>() {
            Ok(addr) => Some(addr),
            Err(_) => {
                eprintln!("error: configuration: METRICS_ADDR: {raw:?} is not an address like 127.0.0.1:9100");
                return ExitCode::from(2);
            }
        },
    };
    let addr = leptos.site_addr;
    for warning in settings.auth.warnings(!addr.ip().is_loopback()) {
        tracing::warn!("{warning}");
    }
    let state = match app::auth::AuthService::start(settings.auth).await {
        Ok(auth) => server::AppState::new(auth, settings.http, leptos),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(metrics_addr) = metrics_addr {
        if let Err(e) = serve_metrics(metrics_addr, state.auth.clone()).await {
            eprintln!("error: METRICS_ADDR {metrics_addr}: {e}");
            return ExitCode::FAILURE;
        }
    }
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: LEPTOS_SITE_ADDR {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The bound address, not the configured one: with port 0 the OS picks, and scripts read this line.
    match listener.local_addr() {
        Ok(bound) => {
            state.auth.listening_at(bound);
            tracing::info!("listening on http://{bound}")
        }
        Err(_) => tracing::info!("listening on http://{addr}"),
    }
    if let Err(e) = server::serve(listener, state, shutdown_signal()).await {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// Installs the metrics recorder and serves `/metrics` on `addr` in the background.
async fn serve_metrics(addr: std::net::SocketAddr, auth: app::auth::AuthService) -> Result<(), String> {
    let handle = server::metrics::install()?;
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| e.to_string())?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!("metrics on http://{bound}/metrics");
    tokio::spawn(async move {
        if let Err(e) = server::metrics::serve(listener, handle, auth).await {
            tracing::error!(error = %e, "metrics listener failed");
        }
    });
    Ok(())
}

/// `LOG_FORMAT=json`: one JSON object per line, the event's fields at the top level (a security
/// event's `event`, `user_id`, `ip` …), for log shippers. Otherwise `key=value` text, coloured only
/// on a terminal.
fn init_logging(json: bool, to_stderr: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let (writer, terminal) = if to_stderr {
        (BoxMakeWriter::new(std::io::stderr), std::io::IsTerminal::is_terminal(&std::io::stderr()))
    } else {
        (BoxMakeWriter::new(std::io::stdout), std::io::IsTerminal::is_terminal(&std::io::stdout()))
    };
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    if json {
        logs.json().flatten_event(true).init();
    } else {
        logs.with_ansi(terminal).init();
    }
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
