//! Entry point: parse settings, set up logging, bind, run until SIGTERM/SIGINT; or run a
//! subcommand (`token`, `chat`).

use clap::Parser;
use std::process::ExitCode;
use switchboard::app::{self, Listeners};
use switchboard::auth::{self, Claims};
use switchboard::cli::{Cli, Command, TokenArgs};
use switchboard::config::{Config, LogFormat};
use switchboard::gateway::Gateway;

/// jemalloc, purging freed pages from background threads: with glibc's malloc, memory
/// freed by a mass disconnect stayed in the process (loadtest/RESULTS.md, "Memory").
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Token(args)) => print_token(&args),
        Some(Command::Chat(args)) => switchboard::chat::main(args),
        None => serve_on_runtime(cli.config),
    }
}

/// tokio's multi-threaded runtime as `#[tokio::main]` builds it (workers from
/// `TOKIO_WORKER_THREADS` or one per core), plus a park hook: a worker going idle gives
/// its allocator cache back (at most once a second), so memory freed by a burst leaves
/// the process even when the worker has nothing more to do.
fn serve_on_runtime(config: Config) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_park(switchboard::metrics::allocator::trim_thread_cache)
        .build();
    match runtime {
        Ok(runtime) => runtime.block_on(serve(config)),
        Err(err) => {
            eprintln!("switchboard: cannot start the runtime: {err}");
            ExitCode::FAILURE
        }
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
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{Layer, fmt};
    let env = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let layer = match format {
        LogFormat::Json => fmt::layer().json().boxed(),
        LogFormat::Text => fmt::layer().boxed(),
    };
    tracing_subscriber::registry()
        .with(layer.with_filter(capped(env)))
        .init();
}

/// `env` with [`FRAME_DUMPING_TARGETS`] capped at debug. A cap, not a directive:
/// `tungstenite=debug` added to the EnvFilter would raise these targets to debug under
/// `RUST_LOG=warn` (50,000 lines on a mass disconnect).
fn capped<S: tracing::Subscriber>(
    env: tracing_subscriber::EnvFilter,
) -> impl tracing_subscriber::layer::Filter<S> {
    use tracing_subscriber::filter::{FilterExt, LevelFilter, Targets};
    let cap = Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_targets(FRAME_DUMPING_TARGETS.map(|t| (t, LevelFilter::DEBUG)));
    env.and(cap)
}

async fn serve(config: Config) -> ExitCode {
    init_tracing(config.log_format);
    let shutdown = shutdown_signal();
    let renamed = switchboard::config::refuse_renamed(|name| std::env::var_os(name).is_some());
    if let Err(err) = renamed.and_then(|()| config.validate()) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::{Context, SubscriberExt};

    /// Counts the events that pass the filter it is wrapped in.
    struct Count(Arc<AtomicUsize>);
    impl<S: tracing::Subscriber> Layer<S> for Count {
        fn on_event(&self, _: &tracing::Event<'_>, _: Context<'_, S>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How many of a trace, debug and warn event from tungstenite pass `RUST_LOG=env`.
    fn tungstenite_events_passing(env: &str) -> usize {
        let seen = Arc::new(AtomicUsize::new(0));
        let filter = capped(tracing_subscriber::EnvFilter::new(env));
        let subscriber =
            tracing_subscriber::registry().with(Count(seen.clone()).with_filter(filter));
        tracing::subscriber::with_default(subscriber, || {
            tracing::trace!(target: "tungstenite", "frame dump with a token");
            tracing::debug!(target: "tokio_tungstenite", "start_send error");
            tracing::warn!(target: "tungstenite", "warning");
        });
        seen.load(Ordering::Relaxed)
    }

    #[test]
    fn frame_dumps_are_capped_at_debug_and_never_raised() {
        assert_eq!(
            tungstenite_events_passing("trace"),
            2,
            "trace lets debug + warn"
        );
        assert_eq!(tungstenite_events_passing("warn"), 1, "warn lets only warn");
        assert_eq!(tungstenite_events_passing("off"), 0);
    }
}
