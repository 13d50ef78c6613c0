//! `sluice serve`: runs the HTTP server.

/// Arguments of `sluice serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {}

pub(super) fn serve(_args: ServeArgs) -> anyhow::Result<()> {
    anyhow::bail!("`sluice serve` is not built yet")
}
