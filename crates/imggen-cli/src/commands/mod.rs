//! One module per command: each turns its arguments into imggen-core calls and prints what
//! they return. Commands share the steps below them ([`crate::tasks`], [`crate::route`],
//! [`crate::request`], [`crate::report`]), never each other.

mod batch;
mod completions;
mod generate;
mod list;
mod mock;
mod providers;
mod status;
mod submit;
mod wait;

use crate::args::Command;
use crate::context::Ctx;

/// Runs a command; returns the exit code.
pub(crate) async fn execute(command: Command, ctx: &Ctx) -> u8 {
    match command {
        Command::Generate(args) => generate::command(args, ctx).await,
        Command::Submit(args) => submit::command(args, ctx).await,
        Command::Status(args) => status::command(args, ctx).await,
        Command::Wait(args) => wait::command(args, ctx).await,
        Command::List(args) => list::command(&args, ctx),
        Command::Batch(args) => batch::command(args, ctx).await,
        Command::Providers(args) => providers::command(&args),
        Command::Mock(args) => mock::command(args, ctx).await,
        Command::Completions(args) => completions::command(&args),
    }
}
