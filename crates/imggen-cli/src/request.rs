//! The request a command sends, from its arguments: the prompt (argument, `-` or
//! `--prompt-file`), the common settings, references and `--option KEY=VALUE`, each option
//! read as its provider reads it.

use imggen_core::{GenerationRequest, ProviderId, Reference};

use crate::args::RequestArgs;
use crate::exit::Failure;
use crate::route::{Route, every_provider};

/// The longest prompt file or standard input read: far above any provider's limit (4,000
/// characters), so a prompt that is too long gets the provider's limit in its error rather
/// than a read that never ends.
const MAX_PROMPT_BYTES: u64 = 1024 * 1024;

/// The prompt: the argument, standard input for `-`, or `--prompt-file`. An empty one is
/// refused here, before anything is sent.
pub(crate) fn read_prompt(args: &RequestArgs) -> Result<String, Failure> {
    use std::io::Read as _;
    let (text, from) = match (&args.prompt, &args.prompt_file) {
        (_, Some(path)) => {
            let mut text = String::new();
            std::fs::File::open(path)
                .and_then(|file| file.take(MAX_PROMPT_BYTES).read_to_string(&mut text))
                .map_err(|error| {
                    Failure::usage(format!(
                        "--prompt-file {}: {error}; nothing was sent",
                        path.display()
                    ))
                })?;
            (text, format!("the prompt file {}", path.display()))
        }
        (Some(dash), None) if dash == "-" => {
            let mut text = String::new();
            std::io::stdin()
                .lock()
                .take(MAX_PROMPT_BYTES)
                .read_to_string(&mut text)
                .map_err(|error| {
                    Failure::usage(format!(
                        "could not read the prompt from standard input: {error}; nothing was sent"
                    ))
                })?;
            (text, "standard input".to_owned())
        }
        (Some(text), None) => (text.clone(), "the prompt".to_owned()),
        (None, None) => (String::new(), "the prompt".to_owned()),
    };
    // A file or a pipe ends its last line with a newline that is not part of the prompt.
    let text = text.trim_end_matches(['\n', '\r']).to_owned();
    if text.trim().is_empty() {
        return Err(Failure::usage(format!(
            "the prompt is empty ({from} holds no text); nothing was sent"
        ))
        .hint("give the prompt as an argument, `-` to read it from standard input, or --prompt-file PATH"));
    }
    Ok(text)
}

/// The request, from the options. `--option` keys apply to every provider of the route, or
/// to one when prefixed with its name (`runbase.resolution=2K`).
pub(crate) fn build_request(
    args: &RequestArgs,
    route: &Route,
) -> Result<GenerationRequest, Failure> {
    let settings = &args.settings;
    let mut request = GenerationRequest::new(read_prompt(args)?).n(settings.count);
    if let Some(ratio) = &settings.aspect_ratio {
        request = request.aspect_ratio(ratio.clone());
    }
    if let Some(model) = &settings.model {
        request = request.model(model.clone());
    }
    if let Some(quality) = &settings.quality {
        request = request.quality(quality.clone());
    }
    if let Some(webhook) = &settings.webhook {
        request = request.webhook(webhook.clone());
    }
    for reference in &settings.references {
        request = request.reference(reference_arg(reference));
    }
    let ids = route.ids();
    for pair in &settings.options {
        let (key, value) = option_arg(pair)?;
        // A prefix is a provider only when it names one (`input.seed` is runbase's own key).
        let scoped = key.split_once('.').and_then(|(provider, rest)| {
            let provider = every_provider()
                .into_iter()
                .find(|id| id.as_str() == provider)?;
            Some((provider, rest))
        });
        let targets: Vec<(ProviderId, &str)> = match scoped {
            Some((provider, rest)) => {
                if !ids.contains(&provider) {
                    return Err(Failure::usage(format!(
                        "--option {pair:?} is for {provider}, which this run does not use ({})",
                        route.first_label()
                    )));
                }
                vec![(provider, rest)]
            }
            None => ids.iter().map(|id| (*id, key)).collect(),
        };
        for (provider, key) in targets {
            let Some(registration) = imggen_core::builtin::registration(provider) else {
                continue;
            };
            if let Err(error) = request
                .options
                .set(provider, key, value, registration.set_option)
            {
                let mut failure = Failure::usage(format!("--option {pair:?}: {error}"))
                    .provider(provider.to_string());
                if ids.len() > 1 {
                    failure = failure.hint(format!(
                        "prefix the key with a provider to set it for that provider only, e.g. {}.{pair}",
                        ids[0]
                    ));
                }
                return Err(failure);
            }
        }
    }
    Ok(request)
}

/// A `--ref`: a URL or data URI as given, anything else a local file.
pub(crate) fn reference_arg(reference: &str) -> Reference {
    let lower = reference.to_ascii_lowercase();
    if ["https://", "http://", "data:"]
        .iter()
        .any(|scheme| lower.starts_with(scheme))
    {
        Reference::url(reference)
    } else {
        Reference::file(reference)
    }
}

/// An `--option KEY=VALUE`, split.
pub(crate) fn option_arg(pair: &str) -> Result<(&str, &str), Failure> {
    pair.split_once('=').ok_or_else(|| {
        Failure::usage(format!(
            "--option {pair:?}: expected KEY=VALUE, e.g. resolution=2K"
        ))
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::args::{Cli, Command, ProviderChoice};

    const RUNBLOB: ProviderId = ProviderId::new("runblob");
    const RUNBASE: ProviderId = ProviderId::new("runbase");

    fn request_args(extra: &[&str]) -> RequestArgs {
        let mut argv = vec!["imggen", "submit", "a fox"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Submit(args) => args,
            _ => unreachable!(),
        }
    }

    #[test]
    fn options_go_to_every_provider_or_to_the_one_named() {
        let route = Route {
            choices: vec![ProviderChoice::Api(RUNBASE)],
            implicit: false,
        };
        let request = build_request(
            &request_args(&[
                "--option",
                "resolution=2K",
                "--option",
                "input.seed=7",
                "--ref",
                "https://example.com/a.png",
                "--ref",
                "sketch.png",
            ]),
            &route,
        )
        .unwrap();
        assert_eq!(request.options.text(RUNBASE, "resolution"), Some("2K"));
        assert_eq!(request.options.of(RUNBASE)["input"]["seed"], 7);
        assert_eq!(
            request.references,
            [
                Reference::url("https://example.com/a.png"),
                Reference::file("sketch.png")
            ]
        );

        let both = Route {
            choices: vec![ProviderChoice::Api(RUNBLOB), ProviderChoice::Api(RUNBASE)],
            implicit: false,
        };
        let err = build_request(&request_args(&["--option", "quality=flare"]), &both).unwrap_err();
        assert!(err.message.contains("unknown key"), "{}", err.message);
        assert!(err.hint.unwrap().contains("runblob.quality=flare"));
        let scoped =
            build_request(&request_args(&["--option", "runblob.quality=flare"]), &both).unwrap();
        assert_eq!(scoped.options.text(RUNBLOB, "quality"), Some("flare"));

        let elsewhere =
            build_request(&request_args(&["--option", "gptimg.n=2"]), &route).unwrap_err();
        assert!(
            elsewhere.message.contains("does not use"),
            "{}",
            elsewhere.message
        );
        let malformed =
            build_request(&request_args(&["--option", "resolution"]), &route).unwrap_err();
        assert!(
            malformed.message.contains("KEY=VALUE"),
            "{}",
            malformed.message
        );
    }
}
