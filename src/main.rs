//! Entry point: parse settings, set up logging, bind, run until SIGTERM/SIGINT; or run a
//! subcommand (`token`, `chat`).

use clap::Parser;
use std::process::ExitCode;
use switchboard::app::{self, Listeners};
use switchboard::auth::{self, Claims};
use switchboard::cli::{Cli, Command, TokenArgs};
use switchboard::config::{Config, LogFormat};
use switchboard::gateway::Gateway;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Token(args)) => print_token(&args),
        Some(Command::Chat(args)) => switchboard::chat::main(args),
        None => serve(cli.config),
    }
}

fn print_token(args: &TokenArgs) -> ExitCode {
    let claims = Claims {
        sub: args.sub.clone(),
        exp: switchboard::clock::unix_now() + args.ttl.as_secs(),
        name: args.name.clone(),
        rating: args.rating,
        perms: args.perms.clone(),
        rooms: (!args.rooms.is_empty()).then(|| args.rooms.clone()),
        iss: args.issuer.clone(),
        aud: args.audience.clone(),
    };
    match auth::sign_hmac(args.alg, args.secret.as_bytes(), &claims) {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("switchboard token: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Log targets capped at debug whatever RUST_LOG says: at trace they print whole frames,
/// login tokens included.
const FRAME_DUMPING_TARGETS: [&str; 2] = ["tungstenite", "tokio_tungstenite"];

fn init_tracing(format: LogFormat) {
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    for target in FRAME_DUMPING_TARGETS {
        if let Ok(directive) = format!("{target}=debug").parse() {
            filter = filter.add_directive(directive);
        }
    }
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

#[tokio::main]
async fn serve(config: Config) -> ExitCode {
    init_tracing(config.log_format);
    let shutdown = shutdown_signal();
    if let Err(err) = config.validate() {
        eprintln!("switchboard: invalid configuration: {err}");
        return ExitCode::from(2);
    }
    raise_fd_limit(&config);
    // Listen first: probes answer (not ready) while the backend is still connecting.
    let listeners = match Listeners::bind(&config).await {
        Ok(l) => l,
        Err(err) => {
            tracing::error!(cause = %err, "cannot bind listeners");
            eprintln!("switchboard: {err}");
            return ExitCode::FAILURE;
        }
    };
    let gw = match Gateway::start(config).await {
        Ok(gw) => gw,
        Err(err) => {
            eprintln!("switchboard: {err}");
            return ExitCode::from(err.exit_code());
        }
    };
    if gw.verifier.is_dev() {
        tracing::warn!(
            listen = %gw.config.listen_addr(),
            "DEV MODE: GET /dev/token mints tokens for anyone who can reach this address. \
             Never run this in production: set SWITCHBOARD_JWT_SECRET or \
             SWITCHBOARD_JWT_PUBLIC_KEY_FILE and leave SWITCHBOARD_DEV unset."
        );
    }
    match app::run(gw, listeners, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(cause = %err, "server failed");
            ExitCode::FAILURE
        }
    }
}

/// Installs the SIGTERM/SIGINT handlers now (before anything is bound, so an early
/// signal is never fatal) and returns the future that resolves on either.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    #[cfg(unix)]
    let int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt());
    async move {
        #[cfg(unix)]
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {},
                    _ = int.recv() => {},
                }
            }
            (Err(err), _) | (_, Err(err)) => {
                tracing::error!(cause = %err, "cannot listen for shutdown signals");
                std::future::pending::<()>().await;
            }
        }
        #[cfg(not(unix))]
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(cause = %err, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
        tracing::info!("shutdown signal received");
    }
}

/// Raises the open-file soft limit to the hard one and logs both; warns when even the
/// hard limit cannot hold the configured connections (docs/OPERATIONS.md).
fn raise_fd_limit(config: &Config) {
    match switchboard::fdlimit::raise() {
        Ok(limit) => {
            tracing::info!(
                soft_before = limit.before,
                soft = limit.after,
                hard = limit.hard,
                "open file limit"
            );
            let needed =
                switchboard::fdlimit::needed(config.max_connections, config.max_pending_logins);
            if let Some(needed) = needed.filter(|n| limit.after < *n) {
                tracing::warn!(
                    soft = limit.after,
                    needed,
                    "open file limit below SWITCHBOARD_MAX_CONNECTIONS + SWITCHBOARD_MAX_PENDING_LOGINS + 256: \
                     raise the hard limit (ulimit -Hn, LimitNOFILE=, the container runtime) or lower the cap"
                );
            }
        }
        Err(err) => tracing::warn!(cause = %err, "cannot read or raise the open file limit"),
    }
}
