//! The `picket-node` command line: parse config (exit 64 when bad, before any
//! port is bound), init logging, run until SIGTERM/SIGINT. Used by the
//! `picket-node` binary and by `picket-local`, which starts node processes.

use picket_shared::config::{EXIT_CONFIG, NodeCommand, NodeConfig, parse_args};
use picket_shared::db::Db;
use std::ffi::OsString;
use std::process::ExitCode;

/// Runs the node command line with `args` (program name first).
pub fn main(args: Vec<OsString>) -> ExitCode {
    let cfg: NodeConfig = match parse_args(args) {
        Ok(c) => c,
        Err(code) => return code,
    };
    picket_shared::telemetry::init(cfg.log_format);
    if let Err(msg) = cfg.validate() {
        eprintln!("configuration error: {msg}");
        return ExitCode::from(EXIT_CONFIG as u8);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("picket-node: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cfg: NodeConfig) -> anyhow::Result<()> {
    match &cfg.command {
        Some(NodeCommand::CreateApiKey { name, scope }) => {
            let scope = picket_shared::auth::Scope::parse(scope)
                .ok_or_else(|| anyhow::anyhow!("--scope must be read, write or admin"))?;
            let db = Db::open(&cfg.database_url, 1).await?;
            let (id, token) = db.create_api_key(name, scope).await?;
            println!("{token}");
            eprintln!("created API key {id} ('{name}', scope {scope}); it is shown only this once");
            Ok(())
        }
        Some(NodeCommand::Migrate) => {
            Db::open(&cfg.database_url, 1).await?;
            eprintln!("migrations applied");
            Ok(())
        }
        None => {
            let listener = tokio::net::TcpListener::bind(cfg.listen)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", cfg.listen))?;
            crate::run(cfg, listener, shutdown_signal()).await
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
