//! The `auditlog` command: run the server, or work on a data directory.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use auditlog_engine::{Engine, Timestamp};
use auditlog_server::api::auth::Role;
use auditlog_server::api::{router, AppState};
use auditlog_server::cmd::{export, ingest, integrity, open_signed, query, stats};
use auditlog_server::config::{
    default_key_path, parse_compact_level, parse_ingest_codec, parse_sync, ServeConfig,
};
use auditlog_server::live::Live;
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
        /// max_body_bytes, max_event_bytes, key, checkpoint_interval_secs,
        /// checkpoint_export, compact_level, [[tokens]]); flags override it.
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
        /// The Ed25519 signing key file, created on first start (default:
        /// beside the data directory, <data>.key). See docs/INTEGRITY.md.
        #[arg(long)]
        key: Option<PathBuf>,
        /// Seconds between signed checkpoints while events arrive (0: only
        /// at seals and shutdown) [default: 60].
        #[arg(long)]
        checkpoint_interval_secs: Option<u64>,
        /// zstd level sealed segments are compressed again at, in the
        /// background at the lowest CPU priority (0: no compaction)
        /// [default: 15].
        #[arg(long)]
        compact_level: Option<i32>,
        /// How blocks are compressed at ingest: auto (LZ4 while compaction
        /// is on, since compaction compresses every sealed segment again;
        /// zstd level 3 when it is off), lz4, or zstd:<level> [default: auto].
        #[arg(long)]
        ingest_codec: Option<String>,
        /// Days finished background export jobs and their files are kept
        /// (0: until deleted by hand) [default: 7].
        #[arg(long)]
        export_retention_days: Option<u32>,
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
    /// Write events matching a filter, oldest first, as CSV, NDJSON or JSON
    /// (the same bytes as GET /v1/export).
    Export {
        /// csv, ndjson or json.
        #[arg(long, default_value = "ndjson")]
        format: String,
        /// e.g. "action_name = 'items.update'"
        #[arg(long)]
        filter: Option<String>,
        /// RFC 3339; events at or after it.
        #[arg(long)]
        from: Option<String>,
        /// RFC 3339; events before it.
        #[arg(long)]
        to: Option<String>,
        /// Output file (written whole, then renamed into place); stdout when absent.
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long, default_value = "./data")]
        data: PathBuf,
    },
    /// Check a data directory (or a copy of one): every checksum, the hash
    /// chain, segment links, tombstones and signed checkpoints. Prints what
    /// was altered, removed, reordered or truncated, where; exit 1 if any.
    Verify {
        #[arg(long, default_value = "./data")]
        data: PathBuf,
        /// The store's public key: a file (hex, PEM) or 64 hex digits.
        #[arg(long)]
        public_key: Option<String>,
        /// Checkpoints kept elsewhere (the shipped checkpoints.ndjson, a
        /// saved GET /v1/checkpoints answer, or a copy of checkpoints/log);
        /// the store must reach each with the same chain value. Repeatable.
        #[arg(long)]
        checkpoint: Vec<PathBuf>,
    },
    /// Check a proof from GET /v1/events/{id}/proof; exit 1 if invalid.
    VerifyProof {
        file: PathBuf,
        /// The store's public key: a file (hex, PEM) or 64 hex digits.
        #[arg(long)]
        public_key: String,
    },
    /// The signing key.
    Key {
        #[command(subcommand)]
        action: KeyAction,
    },
    /// Drop segments whose newest event is older than N days (server stopped).
    Retention {
        #[arg(long)]
        older_than_days: u32,
        #[arg(long, default_value = "./data")]
        data: PathBuf,
        /// The signing key for the tombstones (default: <data>.key).
        #[arg(long)]
        key: Option<PathBuf>,
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

#[derive(Subcommand)]
enum KeyAction {
    /// Print the public key (hex; --pem for openssl).
    Public {
        /// The key file; default: beside the data directory (<data>.key).
        #[arg(long)]
        key: Option<PathBuf>,
        #[arg(long, default_value = "./data")]
        data: PathBuf,
        #[arg(long)]
        pem: bool,
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
    auditlog_server::alloc::keep_freed_memory_a_while();
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
            key,
            checkpoint_interval_secs,
            compact_level,
            ingest_codec,
            export_retention_days,
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
            if let Some(v) = key {
                cfg.key = Some(v);
            }
            if let Some(v) = checkpoint_interval_secs {
                cfg.checkpoint_interval = std::time::Duration::from_secs(v);
            }
            if let Some(v) = compact_level {
                cfg.compact_level = parse_compact_level(v).map_err(anyhow::Error::msg)?;
            }
            if let Some(v) = export_retention_days {
                cfg.export_retention_days = v;
            }
            if let Some(v) = ingest_codec {
                cfg.ingest_codec = parse_ingest_codec(&v).map_err(anyhow::Error::msg)?;
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
        Command::Export {
            format,
            filter,
            from,
            to,
            out,
            data,
        } => export::run(&format, filter, from, to, out, data),
        Command::Verify {
            data,
            public_key,
            checkpoint,
        } => {
            if integrity::verify(&data, public_key.as_deref(), &checkpoint)? {
                Ok(())
            } else {
                std::process::exit(1)
            }
        }
        Command::VerifyProof { file, public_key } => {
            if integrity::verify_proof(&file, &public_key)? {
                Ok(())
            } else {
                std::process::exit(1)
            }
        }
        Command::Key {
            action: KeyAction::Public { key, data, pem },
        } => {
            let path = key.unwrap_or_else(|| default_key_path(&data));
            integrity::key_public(&path, pem)
        }
        Command::Retention {
            older_than_days,
            data,
            key,
        } => {
            let engine = open_signed(&data, key)?;
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
            engine.close()?;
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
        for w in &report.integrity_warnings {
            tracing::error!("{w}");
        }
        if let Some(key) = engine.public_key() {
            // On stdout too, so it can be recorded away from this machine.
            let public = auditlog_engine::integrity::chain::hex(&key);
            println!("auditlog public key (ed25519): {public}");
            tracing::info!(key = %cfg.key_path().display(), %public, "signing checkpoints");
        }
        if !cfg.checkpoint_interval.is_zero() {
            tokio::spawn(checkpoint_loop(engine.clone(), cfg.checkpoint_interval));
        }
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
        let live = Live::start(engine.clone(), &cfg.data, cfg.export_retention())
            .context("opening export jobs")?;
        let state = AppState::new(engine.clone(), cfg, live.clone())?;
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
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            // Open tails end, so the graceful wait does not hang on them.
            live.stop();
        })
        .await?;
        tracing::info!("shutting down");
        let closing = engine.clone();
        tokio::task::spawn_blocking(move || closing.close()).await??;
        Ok(())
    })
}

/// Writes a signed checkpoint every `every` while events arrive.
async fn checkpoint_loop(engine: Engine, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        let e = engine.clone();
        let done = tokio::task::spawn_blocking(move || {
            e.checkpoint(auditlog_engine::integrity::checkpoint::CheckpointReason::Interval)
        })
        .await;
        match done {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "checkpoint failed"),
            Err(e) => tracing::error!(error = %e, "checkpoint task failed"),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// The help states the default the engine really uses (it said 12 for
    /// a while after the engine moved to 15).
    #[test]
    fn serve_help_gives_the_engines_compaction_level() {
        let mut cli = Cli::command();
        let serve = cli
            .find_subcommand_mut("serve")
            .expect("serve subcommand")
            .render_long_help()
            .to_string();
        let level = auditlog_engine::EngineConfig::default().compact_level;
        assert!(
            serve.contains(&format!("[default: {level}]")),
            "serve --help does not give compaction level {level}:\n{serve}"
        );
    }
}
