//! A command line said back so a person can act on it: an option imggen does not have gets
//! the closest real one, or what imggen has instead — never clap's tip to pass it as a value
//! after `--`, which is right only for a value that starts with `-` — and values clap cannot
//! check alone (`-n 0`) are refused with what they mean.

use std::ffi::OsString;

use clap::CommandFactory as _;
use clap::builder::StyledStr;
use clap::error::{ContextKind, ContextValue, ErrorKind};

use crate::args::{Cli, Command};

/// An option other tools have and imggen has not, and what to use instead. The tip is given
/// when the command has the option `needs` (empty: always); `{opt}` is the option as typed,
/// `{cmd}` the command, `{keys}` the key variables.
struct Foreign {
    names: &'static [&'static str],
    needs: &'static str,
    tip: &'static str,
}

const FOREIGN: &[Foreign] = &[
    Foreign {
        names: &[
            "size",
            "image-size",
            "img-size",
            "width",
            "height",
            "dimensions",
        ],
        needs: "aspect-ratio",
        tip: "imggen has no {opt}: choose the shape with --aspect-ratio W:H (e.g. --aspect-ratio 16:9), and on runbase the resolution with --option resolution=1K|2K|4K",
    },
    Foreign {
        names: &["resolution", "res"],
        needs: "option",
        tip: "imggen has no {opt}: on runbase, set the resolution with --option resolution=1K|2K|4K; the shape is --aspect-ratio W:H",
    },
    Foreign {
        names: &["seed"],
        needs: "option",
        tip: "imggen has no {opt}: on runbase, send it as an extra input field, --option input.seed=42",
    },
    Foreign {
        names: &["prompt", "text"],
        needs: "prompt-file",
        tip: "the prompt is an argument, not an option: imggen {cmd} \"a red fox\" (or - to read it from standard input, or --prompt-file PATH)",
    },
    Foreign {
        names: &[
            "n",
            "num",
            "number",
            "num-images",
            "images",
            "samples",
            "batch-size",
        ],
        needs: "count",
        tip: "the number of images is -n N (or --count N)",
    },
    Foreign {
        names: &[
            "image",
            "img",
            "reference",
            "references",
            "input-image",
            "init-image",
            "image-url",
        ],
        needs: "ref",
        tip: "a reference image is --ref PATH|URL (repeat it for several)",
    },
    Foreign {
        names: &["output", "output-dir", "outdir", "out-dir", "dir", "folder"],
        needs: "out",
        tip: "the folder the images go to is -o DIR (or --out DIR)",
    },
    Foreign {
        names: &["key", "api-key", "apikey", "token"],
        needs: "",
        tip: "imggen reads API keys only from the environment ({keys}), never from the command line, where shell history and other users could see them",
    },
];

/// Replaces clap's tips for an option imggen does not have (see the [module](self)).
pub(crate) fn explain(error: &mut clap::Error, args: &[OsString]) {
    if error.kind() != ErrorKind::UnknownArgument {
        return;
    }
    let Some(ContextValue::String(invalid)) = error.get(ContextKind::InvalidArg) else {
        return;
    };
    let invalid = invalid.clone();
    let Some(name) = option_name(&invalid) else {
        // A value that starts with `-` (a prompt, a negative number): clap's tip to pass it
        // after `--` is the right one.
        return;
    };
    if let Some(ContextValue::StyledStrs(tips)) = error.remove(ContextKind::Suggested) {
        let kept: Vec<StyledStr> = tips
            .into_iter()
            .filter(|tip| !tip.to_string().contains("as a value, use"))
            .collect();
        if !kept.is_empty() {
            error.insert(ContextKind::Suggested, ContextValue::StyledStrs(kept));
        }
    }
    let mut root = Cli::command();
    root.build();
    let command = subcommand_of(args);
    let current = command
        .as_deref()
        .and_then(|name| root.get_subcommands().find(|sub| sub.get_name() == name));
    let tip = foreign(name, &invalid, command.as_deref(), current).or_else(|| {
        // clap's own suggestion of a similar option is the closest real one.
        if error.get(ContextKind::SuggestedArg).is_some() {
            return None;
        }
        elsewhere(name, &root, current)
    });
    if let Some((tip, overrides)) = tip {
        if overrides {
            error.remove(ContextKind::SuggestedArg);
        }
        let mut tips = match error.remove(ContextKind::Suggested) {
            Some(ContextValue::StyledStrs(tips)) => tips,
            _ => Vec::new(),
        };
        tips.push(StyledStr::from(tip));
        error.insert(ContextKind::Suggested, ContextValue::StyledStrs(tips));
    }
}

/// The tips of a refused command line, as one plain hint (for `--json` and `jsonl`).
pub(crate) fn tip(error: &clap::Error) -> Option<String> {
    let mut tips = Vec::new();
    if let Some(ContextValue::String(similar)) = error.get(ContextKind::SuggestedArg) {
        tips.push(format!("a similar argument exists: '{similar}'"));
    }
    if let Some(ContextValue::StyledStrs(more)) = error.get(ContextKind::Suggested) {
        tips.extend(more.iter().map(ToString::to_string));
    }
    (!tips.is_empty()).then(|| tips.join("; "))
}

/// A command line clap accepted that still cannot run: `-n 0`.
pub(crate) fn check(cli: &Cli) -> Option<clap::Error> {
    let (name, count) = match &cli.command {
        Command::Generate(args) => ("generate", args.request.settings.count),
        Command::Submit(args) => ("submit", args.settings.count),
        Command::Batch(args) => ("batch", args.settings.count),
        _ => return None,
    };
    if count > 0 {
        return None;
    }
    let mut root = Cli::command();
    root.build();
    let command = root.find_subcommand_mut(name)?;
    Some(command.error(
        ErrorKind::ValueValidation,
        "invalid value '0' for '--count <N>': -n is the number of images to make, at least 1",
    ))
}

/// The command of a command line: the first argument that is neither a flag nor the value of
/// a global flag that takes one.
pub(crate) fn subcommand_of(args: &[OsString]) -> Option<String> {
    let mut rest = args.iter().skip(1).map(|arg| arg.to_string_lossy());
    while let Some(arg) = rest.next() {
        if arg == "--progress" || arg == "--progress-interval" {
            rest.next();
        } else if !arg.starts_with('-') {
            return Some(arg.into_owned());
        }
    }
    None
}

/// `size` for `--size` or `--size=2K`; `None` for what does not look like an option someone
/// meant as one (`-x`, `--a fox`, `-1`).
fn option_name(arg: &str) -> Option<&str> {
    let name = arg.strip_prefix("--")?;
    let name = name.split_once('=').map_or(name, |(name, _)| name);
    let looks_like_one = name.len() > 1
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    looks_like_one.then_some(name)
}

/// Whether `command` has the long option (or alias) `long`.
fn has_option(command: &clap::Command, long: &str) -> bool {
    command.get_arguments().any(|arg| {
        arg.get_long() == Some(long)
            || arg
                .get_all_aliases()
                .is_some_and(|aliases| aliases.contains(&long))
    })
}

/// The tip for an option other tools have (and whether it replaces clap's suggestion).
fn foreign(
    name: &str,
    typed: &str,
    command: Option<&str>,
    current: Option<&clap::Command>,
) -> Option<(String, bool)> {
    let lower = name.to_ascii_lowercase().replace('_', "-");
    let entry = FOREIGN
        .iter()
        .find(|entry| entry.names.contains(&lower.as_str()))?;
    if !entry.needs.is_empty() && !current.is_some_and(|sub| has_option(sub, entry.needs)) {
        return None;
    }
    let keys: Vec<&str> = imggen_core::builtin::registrations()
        .iter()
        .map(|registration| registration.api_key_env)
        .collect();
    let option = typed.split_once('=').map_or(typed, |(option, _)| option);
    let tip = entry
        .tip
        .replace("{opt}", option)
        .replace("{cmd}", command.unwrap_or("generate"))
        .replace("{keys}", &keys.join(", "));
    Some((tip, true))
}

/// The tip for a real option of other commands: `--aspect-ratio is an option of generate,
/// submit and batch, not of wait`.
fn elsewhere(
    name: &str,
    root: &clap::Command,
    current: Option<&clap::Command>,
) -> Option<(String, bool)> {
    let current = current?;
    let owners: Vec<&str> = root
        .get_subcommands()
        .filter(|sub| sub.get_name() != current.get_name() && has_option(sub, name))
        .map(clap::Command::get_name)
        .collect();
    let owners = match &owners[..] {
        [] => return None,
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    };
    Some((
        format!(
            "--{name} is an option of {owners}, not of {}",
            current.get_name()
        ),
        false,
    ))
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    fn refused(args: &[&str]) -> clap::Error {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        let mut error = Cli::try_parse_from(&args).unwrap_err();
        explain(&mut error, &args);
        error
    }

    #[test]
    fn an_option_imggen_does_not_have_gets_what_it_has_instead_never_the_double_dash_tip() {
        let error = refused(&["imggen", "generate", "a fox", "--size", "1024x1024"]);
        let text = error.to_string();
        assert!(
            text.starts_with("error: unexpected argument '--size' found"),
            "{text}"
        );
        assert!(
            text.contains("tip: imggen has no --size: choose the shape with --aspect-ratio W:H (e.g. --aspect-ratio 16:9), and on runbase the resolution with --option resolution=1K|2K|4K"),
            "{text}"
        );
        assert!(!text.contains("-- --size"), "{text}");
        assert_eq!(
            tip(&error).unwrap(),
            "imggen has no --size: choose the shape with --aspect-ratio W:H (e.g. --aspect-ratio 16:9), and on runbase the resolution with --option resolution=1K|2K|4K"
        );

        let text = refused(&["imggen", "submit", "a fox", "--seed=7"]).to_string();
        assert!(text.contains("--option input.seed=42"), "{text}");
        assert!(!text.contains("-- --seed"), "{text}");

        let text = refused(&["imggen", "generate", "--prompt", "a fox"]).to_string();
        assert!(
            text.contains(
                "tip: the prompt is an argument, not an option: imggen generate \"a red fox\""
            ),
            "{text}"
        );
        assert!(
            !text.contains("--prompt-file'"),
            "replaces clap's suggestion: {text}"
        );

        let text = refused(&["imggen", "generate", "a fox", "--api-key", "sk-x"]).to_string();
        assert!(
            text.contains("GPTIMG_API_KEY") && !text.contains("-- --api-key"),
            "{text}"
        );
    }

    #[test]
    fn an_unknown_option_gets_the_closest_real_one_or_the_command_that_has_it() {
        let error = refused(&["imggen", "generate", "a fox", "--aspect", "16:9"]);
        let text = error.to_string();
        assert!(
            text.contains("tip: a similar argument exists: '--aspect-ratio'"),
            "{text}"
        );
        assert_eq!(
            tip(&error).unwrap(),
            "a similar argument exists: '--aspect-ratio'"
        );

        let text = refused(&["imggen", "wait", "gptimg:x", "--aspect-ratio", "1:1"]).to_string();
        assert!(
            text.contains(
                "tip: --aspect-ratio is an option of generate, submit and batch, not of wait"
            ),
            "{text}"
        );
        assert!(!text.contains("-- --aspect-ratio"), "{text}");

        // Nothing close: no tip at all rather than a misleading one.
        let error = refused(&["imggen", "generate", "a fox", "--xyzzy"]);
        let text = error.to_string();
        assert!(!text.contains("tip:"), "{text}");
        assert_eq!(tip(&error), None);
    }

    #[test]
    fn a_value_that_starts_with_a_dash_keeps_the_double_dash_tip() {
        let text = refused(&["imggen", "generate", "--no text, a fox"]).to_string();
        assert!(text.contains("use '-- --no text, a fox'"), "{text}");
    }

    #[test]
    fn zero_images_is_refused_with_what_n_means() {
        let cli = Cli::try_parse_from(["imggen", "generate", "a fox", "-n", "0"]).unwrap();
        let error = check(&cli).unwrap();
        let text = error.to_string();
        assert!(
            text.starts_with("error: invalid value '0' for '--count <N>': -n is the number of images to make, at least 1"),
            "{text}"
        );
        assert!(!text.contains("--allow-extra-tasks"), "{text}");
        assert!(text.contains("Usage: imggen generate"), "{text}");
        let cli = Cli::try_parse_from(["imggen", "batch", "p.jsonl", "-n", "0"]).unwrap();
        assert!(check(&cli).is_some());
        let cli = Cli::try_parse_from(["imggen", "generate", "a fox", "-n", "2"]).unwrap();
        assert!(check(&cli).is_none());
    }
}
