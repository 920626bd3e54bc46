//! `imggen completions SHELL`: a completion script, from the clap definition.

use crate::args::CompletionsArgs;
use crate::exit;

pub(crate) fn command(args: &CompletionsArgs) -> u8 {
    use clap::CommandFactory as _;
    let mut command = crate::args::Cli::command();
    clap_complete::generate(args.shell, &mut command, "imggen", &mut std::io::stdout());
    exit::SUCCESS
}
