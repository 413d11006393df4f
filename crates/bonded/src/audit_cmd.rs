//! `bonded audit verify`: recompute the audit log's Merkle tree from its stored entries, check
//! the signed checkpoints (and consistency with a checkpoint saved earlier), and say exactly
//! what differs. Offline from a data directory, or online from a running server.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

#[derive(clap::Subcommand, Debug)]
pub enum AuditCommand {
    /// Verify the tamper-evident audit log (exit 0 verified, 1 tampered or unverifiable).
    Verify(VerifyArgs),
}

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// The server's data directory (offline: reads `bonded.db` read-only, beside a live server).
    #[arg(long, conflicts_with = "url", required_unless_present = "url")]
    data_dir: Option<PathBuf>,
    /// A running server, e.g. `https://registry.example` (reading entries needs the admin
    /// token in BONDED_ADMIN_TOKEN).
    #[arg(long)]
    url: Option<String>,
    /// A checkpoint saved earlier (the JSON of `GET /api/v1/audit/checkpoint`): the log must
    /// still contain it.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// The server's public key (PEM) to check signatures with, instead of the one the data
    /// directory or server provides.
    #[arg(long)]
    key: Option<PathBuf>,
}

pub fn run(command: &AuditCommand) -> Result<u8> {
    match command {
        AuditCommand::Verify(args) => verify(args),
    }
}

fn verify(args: &VerifyArgs) -> Result<u8> {
    let read = |path: &PathBuf| {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
    };
    let key = args.key.as_ref().map(read).transpose()?;
    let checkpoint = args.checkpoint.as_ref().map(read).transpose()?;
    let options = audit::VerifyOptions {
        key_pem: key.as_deref(),
        saved_checkpoint: checkpoint.as_deref(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let report = match (&args.data_dir, &args.url) {
        (Some(dir), None) => runtime.block_on(audit::verify_data_dir(dir, &options)),
        (None, Some(url)) => {
            let token = std::env::var("BONDED_ADMIN_TOKEN").ok();
            runtime.block_on(audit::verify_url(url, token.as_deref(), &options))
        }
        _ => bail!("give exactly one of --data-dir and --url"),
    };
    let report = match report {
        Ok(r) => r,
        Err(e) => bail!("{e}"),
    };
    print!("{report}");
    Ok(if report.passed() { 0 } else { 1 })
}
