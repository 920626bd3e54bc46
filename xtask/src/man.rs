//! `cargo xtask man`: the man pages, rendered from the CLI's own clap definitions by
//! clap_mangen — `man/imggen.1` and one page per command (`man/imggen-batch.1`, …) — so they
//! can never drift from `--help`. Committed, and checked like the schemas.

use std::path::{Path, PathBuf};

use clap::CommandFactory as _;

/// Where the pages live, relative to the workspace root.
const DIR: &str = "man";

/// Every page: its path relative to the root, and its contents.
pub fn all() -> std::io::Result<Vec<(PathBuf, Vec<u8>)>> {
    let imggen = imggen_cli::Cli::command().name("imggen");
    let mut pages = vec![(Path::new(DIR).join("imggen.1"), render(imggen.clone())?)];
    for command in imggen.get_subcommands() {
        if command.get_name() == "help" {
            continue;
        }
        let name = format!("imggen-{}", command.get_name());
        let page = command
            .clone()
            .name(name.clone())
            .bin_name(name.replace('-', " "));
        pages.push((Path::new(DIR).join(format!("{name}.1")), render(page)?));
    }
    Ok(pages)
}

fn render(command: clap::Command) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(command).render(&mut out)?;
    Ok(out)
}

/// The pages that differ from what is on disk (or are missing), and pages on disk no
/// command makes any more.
pub fn stale(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let pages = all()?;
    let mut stale = Vec::new();
    for (path, contents) in &pages {
        match std::fs::read(root.join(path)) {
            Ok(on_disk) if on_disk == *contents => {}
            Ok(_) => stale.push(path.clone()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => stale.push(path.clone()),
            Err(err) => return Err(err),
        }
    }
    if let Ok(entries) = std::fs::read_dir(root.join(DIR)) {
        for entry in entries.flatten() {
            let path = Path::new(DIR).join(entry.file_name());
            if !pages.iter().any(|(page, _)| *page == path) {
                stale.push(path);
            }
        }
    }
    Ok(stale)
}

/// Writes every page that changed (atomically) and removes the ones no command makes.
pub fn write(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let pages = all()?;
    let stale = stale(root)?;
    for path in &stale {
        let full = root.join(path);
        match pages.iter().find(|(page, _)| page == path) {
            Some((_, contents)) => {
                let (Some(parent), Some(name)) = (full.parent(), full.file_name()) else {
                    continue;
                };
                imggen_http::fs::write_atomically(parent, &name.to_string_lossy(), contents)
                    .map_err(|error| std::io::Error::other(error.to_string()))?;
            }
            None => std::fs::remove_file(&full)?,
        }
    }
    Ok(stale)
}
