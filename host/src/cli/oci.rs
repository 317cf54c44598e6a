//! `toolhost pull` and `toolhost push`: components in OCI registries.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::trust::TrustArgs;

#[derive(Debug, Args)]
pub(super) struct PullArgs {
    /// `oci://REGISTRY/REPOSITORY:TAG` or `oci://REGISTRY/REPOSITORY@sha256:DIGEST`.
    reference: String,
    /// The tools folder to write `NAME.wasm` into (and pin it in its lock file).
    #[arg(long, env = "TOOLHOST_TOOLS", default_value = "target/tools")]
    tools: PathBuf,
    /// The component's name [default: the last part of the repository].
    #[arg(long)]
    name: Option<String>,
    /// Speak plain HTTP to a registry that is not on loopback.
    #[arg(long)]
    insecure: bool,
    /// `--trusted-key KEY`: refuse a component not signed by one of these.
    #[command(flatten)]
    trust: TrustArgs,
}

#[derive(Debug, Args)]
pub(super) struct PushArgs {
    /// The component to publish (its `FILE.sig`, if any, goes along).
    file: PathBuf,
    /// `oci://REGISTRY/REPOSITORY:TAG`.
    reference: String,
    /// Speak plain HTTP to a registry that is not on loopback.
    #[arg(long)]
    insecure: bool,
}

pub(super) async fn pull(args: PullArgs) -> anyhow::Result<ExitCode> {
    let trust = args.trust.options()?;
    let pulled = toolhost::oci::pull(
        &args.reference,
        &args.tools,
        args.name.as_deref(),
        args.insecure,
        &trust,
    )
    .await?;
    println!(
        "{}: {} (pulled by {}; pinned in the lock file)",
        pulled.path.display(),
        pulled.sha256,
        pulled.digest
    );
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn push(args: PushArgs) -> anyhow::Result<ExitCode> {
    let digest = toolhost::oci::push(&args.reference, &args.file, args.insecure).await?;
    println!(
        "pushed {} as {}@{digest}",
        args.file.display(),
        args.reference
    );
    Ok(ExitCode::SUCCESS)
}
