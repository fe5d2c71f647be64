//! Stand-alone front end for the SN37 commands until they are wired into `assay sn37`:
//! `cargo run --release -p assay-sn37 --example sn37 -- round ...` (see examples/sn37/README.md).

use assay_sn37::cli::{CompetitionsArgs, HashArgs, RoundArgs, run_hash, run_list, run_round};
use clap::{Parser, Subcommand};

/// SN37 competitions: rounds, competition listings, content hashes.
#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one round.
    Round(RoundArgs),
    /// List the built-in competitions.
    Competitions(CompetitionsArgs),
    /// Print a model folder's content hash.
    Hash(HashArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Round(args) => run_round(args),
        Command::Competitions(args) => run_list(args),
        Command::Hash(args) => run_hash(args),
    }
}
