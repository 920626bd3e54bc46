//! `imggen mock`: the emulator of every built-in provider in the foreground, with the
//! variables to export.

use crate::args::MockCommand;
use crate::context::{Ctx, chain};
use crate::exit::{self, Category, Failure};

pub(crate) async fn command(mut args: MockCommand, ctx: &Ctx) -> u8 {
    if args.mock.api_keys.is_empty() {
        // One fixed key, so the banner prints the key variables to export too.
        args.mock.api_keys.push("sk-imggen-mock".to_owned());
    }
    let mut stdout = std::io::stdout();
    match imggen_mock::cli::run(args.mock, &mut stdout).await {
        Ok(()) => exit::SUCCESS,
        Err(error) => {
            let failure = Failure::new(Category::Other, format!("mock: {}", chain(&error)));
            ctx.progress.failure(&failure, &[]);
            exit::OTHER
        }
    }
}
