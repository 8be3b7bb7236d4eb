//! The `auditlog` command: run the server, or work on a data directory.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use auditlog_engine::{Engine, Timestamp};
use auditlog_server::api::auth::Role;
use auditlog_server::api::{router, AppState};
use auditlog_server::cmd::{ingest, open, query, stats};
use auditlog_server::config::{parse_sync, ServeConfig};
use auditlog_server::tokens::{generate_token, hash_token, TokenEntry, TokenSet};
use clap::{Parser, Subcommand};

// Ingest allocates and frees many short-lived event buffers on several
// threads; mimalloc measured 19% more events/s than the system allocator
// (docs/PERFORMANCE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "auditlog", version, about = "An audit-log store and server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where a client subcommand finds the store: a data directory (the
/// server must not be running on it) or a running server.
#[derive(clap::Args, Debug)]
struct StoreArgs {
    /// Data directory to open directly.
    #[arg(long, default_value = "./data", conflicts_with = "url")]
    data: PathBuf,
    /// A running server instead, e.g. http://127.0.0.1:7600.
    #[arg(long)]
    url: Option<String>,
    /// Bearer token for --url (default: $AUDITLOG_TOKEN).
    #[arg(long, env = "AUDITLOG_TOKEN", hide_env_values = true, requires = "url")]
    token: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (data in ./data, listening on 127.0.0.1:7600).
    ///
    /// Without tokens in the config file the API is open and the server
    /// refuses to listen beyond loopback. See docs/OPERATIONS.md.
    Serve {
        /// TOML config file (keys: data, listen, retention_days, sync,
        /// max_body_bytes, max_event_bytes, [[tokens]]); flags override it.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Data directory [default: ./data].
        #[arg(long)]
        data: Option<PathBuf>,
        /// Address to listen on [default: 127.0.0.1:7600].
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Initial retention period: drop segments whose newest event is
        /// older than this many days; 0 keeps everything [default: 180].
        /// A period set with PUT /v1/settings/retention wins over it.
        #[arg(long)]
        retention_days: Option<u32>,
        /// batch (default: fsync before every acknowledgement), none, or
        /// interval:<ms> (see docs/OPERATIONS.md for what each risks).
        #[arg(long)]
        sync: Option<String>,
    },
    /// Append NDJSON events (one JSON object per line) from a file, or - for
    /// stdin, into a data directory or to a running server (--url).
    ///
    /// Each batch is all-or-nothing; on an invalid line the command stops
    /// and names the line.
    Ingest {
        /// NDJSON file, or - for standard input.
        file: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
        /// Events per batch (one request with --url).
        #[arg(long, default_value_t = 1000)]
        batch: usize,
    },
    /// Print events matching a filter, newest first.
    Query {
        /// Filter, e.g. "actor.type = 'user' AND action_name = 'items.update'"
        /// (docs/QUERY.md).
        filter: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
        /// Only events at or after this RFC 3339 time.
        #[arg(long)]
        from: Option<String>,
        /// Only events before this RFC 3339 time.
        #[arg(long)]
        to: Option<String>,
        /// Events to print, at most (1 to 10000).
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Oldest first instead of newest first.
        #[arg(long)]
        oldest_first: bool,
        /// Print the count of matching events instead of the events.
        #[arg(long)]
        count: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = query::Format::Table)]
        format: query::Format,
    },
    /// Check every checksum in a data directory; exit 1 on damage.
    Verify {
        #[arg(long, default_value = "./data")]
        data: PathBuf,
    },
    /// Drop segments whose newest event is older than N days (server stopped).
    Retention {
        #[arg(long)]
        older_than_days: u32,
        #[arg(long, default_value = "./data")]
        data: PathBuf,
    },
    /// Make a new access token: prints the token (shown only this once)
    /// and the `[[tokens]]` entry, holding only its hash, for the config file.
    Token {
        /// A name for the token's holder; recorded as the actor of the
        /// reads it makes (e.g. "siem-exporter").
        #[arg(long)]
        name: String,
        /// ingest (may only append), read (queries, exports, tail) or
        /// admin (everything, settings included).
        #[arg(long, value_parser = parse_role)]
        role: Role,
    },
    /// Print counts and sizes of a store.
    Stats {
        #[command(flatten)]
        store: StoreArgs,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

impl StoreArgs {
    fn ingest_target(self) -> ingest::Target {
        match self.url {
            Some(url) => ingest::Target::Url {
                url,
                token: self.token,
            },
            None => ingest::Target::Dir(self.data),
        }
    }
    fn query_source(self) -> query::Source {
        match self.url {
            Some(url) => query::Source::Url {
                url,
                token: self.token,
            },
            None => query::Source::Dir(self.data),
        }
    }
    fn stats_source(self) -> stats::Source {
        match self.url {
            Some(url) => stats::Source::Url {
                url,
                token: self.token,
            },
            None => stats::Source::Dir(self.data),
        }
    }
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Serve {
            config,
            data,
            listen,
            retention_days,
            sync,
        } => {
            let mut cfg = ServeConfig::default();
            if let Some(path) = config {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                cfg.apply_file(&text)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            }
            if let Some(v) = data {
                cfg.data = v;
            }
            if let Some(v) = listen {
                cfg.listen = v;
            }
            if let Some(v) = retention_days {
                cfg.retention_days = v;
            }
            if let Some(v) = sync {
                cfg.sync = parse_sync(&v).map_err(anyhow::Error::msg)?;
            }
            serve(cfg)
        }
        Command::Ingest { file, store, batch } => {
            ingest::run(&file, store.ingest_target(), batch.max(1))
        }
        Command::Query {
            filter,
            store,
            from,
            to,
            limit,
            oldest_first,
            count,
            format,
        } => query::run(
            store.query_source(),
            query::Args {
                filter,
                from,
                to,
                limit,
                oldest_first,
                count,
                format,
            },
        ),
        Command::Verify { data } => {
            let (engine, report) = Engine::open(&data, Default::default())?;
            let mut problems = 0usize;
            for (path, why) in &report.quarantined {
                println!("QUARANTINED {}: {why}", path.display());
                problems += 1;
            }
            for d in engine.verify() {
                println!("DAMAGED {d}");
                problems += 1;
            }
            // Damage set aside by an earlier open stays a problem until an
            // operator has dealt with it and emptied quarantine/; the torn
            // tails of interrupted appends (never acknowledged) are noted.
            let reported: Vec<&std::path::Path> = report
                .quarantined
                .iter()
                .map(|(p, _)| p.as_path())
                .collect();
            let mut earlier: Vec<PathBuf> = std::fs::read_dir(data.join("quarantine"))
                .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
                .unwrap_or_default();
            earlier.sort();
            for path in earlier.iter().filter(|p| !reported.contains(&p.as_path())) {
                let name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default();
                if name.contains(".torn-tail-at-") {
                    println!(
                        "NOTE {}: torn tail of an interrupted append (never acknowledged)",
                        path.display()
                    );
                } else {
                    println!("QUARANTINED {}: set aside earlier", path.display());
                    problems += 1;
                }
            }
            let stats = engine.stats();
            if problems == 0 {
                println!("OK: {} segments, {} events", stats.segments, stats.events);
                Ok(())
            } else {
                println!(
                    "{problems} problem(s) found; serving {} events in {} segments",
                    stats.events, stats.segments
                );
                std::process::exit(1)
            }
        }
        Command::Retention {
            older_than_days,
            data,
        } => {
            let engine = open(&data)?;
            let cutoff = Timestamp(
                Timestamp::now()
                    .as_micros()
                    .saturating_sub(i64::from(older_than_days) * 86_400_000_000),
            );
            let r = engine.drop_before(cutoff)?;
            println!(
                "dropped {} segments, {} events, {} bytes",
                r.segments, r.events, r.bytes
            );
            Ok(())
        }
        Command::Token { name, role } => {
            let token = generate_token().map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
            // Check the entry the way the server will read it.
            TokenSet::from_entries(&[TokenEntry {
                name: name.clone(),
                role,
                hash: hash_token(&token),
            }])
            .map_err(anyhow::Error::msg)?;
            let role_name = serde_json::to_value(role)?;
            let name_toml = serde_json::to_string(&name.trim())?;
            eprintln!("New token (shown only now; store it in a secret manager):");
            println!("{token}");
            eprintln!("\nAdd this to the server's config file (it holds only the hash):\n");
            eprintln!(
                "[[tokens]]\nname = {name_toml}\nrole = {role_name}\nhash = \"{}\"",
                hash_token(&token)
            );
            Ok(())
        }
        Command::Stats { store, json } => stats::run(store.stats_source(), json),
    }
}

fn parse_role(s: &str) -> Result<Role, String> {
    match s {
        "ingest" => Ok(Role::Ingest),
        "read" => Ok(Role::Read),
        "admin" => Ok(Role::Admin),
        other => Err(format!("unknown role {other:?}: use ingest, read or admin")),
    }
}

fn serve(cfg: ServeConfig) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let (engine, report) = Engine::open(&cfg.data, cfg.engine_config())
            .with_context(|| format!("opening data directory {}", cfg.data.display()))?;
        for (path, why) in &report.quarantined {
            tracing::warn!(file = %path.display(), reason = %why, "set aside at startup");
        }
        tracing::info!(data = %cfg.data.display(), segments = report.sealed_segments, head_events = report.head_events, "store open");
        if cfg.tokens.is_empty() {
            if !cfg.listen.ip().is_loopback() {
                bail!(
                    "no access tokens are configured: refusing to listen on {} beyond loopback \
                     (make tokens with `auditlog token` and list them in the config file)",
                    cfg.listen
                );
            }
            tracing::warn!(
                "NO ACCESS TOKENS CONFIGURED: the API is open, with admin rights, to anyone who can reach {}",
                cfg.listen
            );
        } else {
            tracing::info!(tokens = cfg.tokens.len(), "bearer tokens required");
        }
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .with_context(|| format!("listening on {}", cfg.listen))?;
        tracing::info!(addr = %cfg.listen, "auditlog listening");
        let state = AppState::new(engine.clone(), cfg)?;
        tracing::info!(days = state.retention.days(), "retention period (0 keeps everything)");
        tokio::spawn(
            state
                .retention
                .clone()
                .run(engine.clone(), state.metrics.clone()),
        );
        axum::serve(
            listener,
            router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown_signal())
        .await?;
        tracing::info!("shutting down");
        let closing = engine.clone();
        tokio::task::spawn_blocking(move || closing.close()).await??;
        Ok(())
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
