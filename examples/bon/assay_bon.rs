//! The `assay bon` and `assay prm` commands on their own, for running the experiment in this folder
//! before the main CLI wires them (`cargo run -p assay-bon --example assay-bon -- bon ...`).

use assay_bon::cli::{BonArgs, PrmCommand, run_bon, run_prm};
use clap::{Parser, Subcommand};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Best-of-N with a reward model.
    Bon(BonArgs),
    /// Reward models: train a value head, or score responses.
    #[command(subcommand)]
    Prm(PrmCommand),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Bon(args) => run_bon(&args),
        Command::Prm(command) => run_prm(&command),
    }
}
