//! `imggen providers`: every provider imggen is built with (imggen-core's registry, in its
//! default order) as a table or JSON — its capabilities, its key variable and whether it is
//! set — with the built-in emulator listed as what it is: a provider's protocol, offline.

use imggen_core::capabilities::{ModelCapabilities, ProviderCapabilities};
use imggen_core::{Cost, ProviderId, Registration};
use serde_json::{Value, json};

use crate::args::{ProvidersArgs, emulated_protocol};
use crate::exit;
use crate::route::key_set;
use crate::stdout;

/// The width of the table when stdout is not a terminal.
const DEFAULT_WIDTH: usize = 80;

/// The narrowest a terminal is taken to be: narrower ones wrap the lines themselves.
const MIN_WIDTH: usize = 40;

/// Runs `imggen providers`; returns the exit code.
pub(crate) fn command(args: &ProvidersArgs) -> u8 {
    let registrations = imggen_core::builtin::registrations();
    let text = if args.json {
        json(&registrations, key_set)
    } else {
        table(&registrations, key_set, width())
    };
    let _ = stdout::write_lines(&[text]);
    exit::SUCCESS
}

/// The terminal's width when stdout is one, else 80.
fn width() -> usize {
    let term = console::Term::stdout();
    if !term.is_term() {
        return DEFAULT_WIDTH;
    }
    term.size_checked()
        .map_or(DEFAULT_WIDTH, |(_, columns)| usize::from(columns))
        .max(MIN_WIDTH)
}

/// The capabilities of the provider the emulator speaks as.
fn emulated(registrations: &[Registration]) -> Option<ProviderCapabilities> {
    let speaks = emulated_protocol();
    registrations
        .iter()
        .find(|registration| registration.id == speaks)
        .map(|registration| (registration.capabilities)())
}

/// The capabilities as JSON: `{"providers": [...]}`, each entry imggen-core's capabilities
/// plus its variables and whether its key is set; the emulator last, as `mock`.
fn json(registrations: &[Registration], key_set: impl Fn(ProviderId) -> bool) -> String {
    let mut entries: Vec<Value> = registrations
        .iter()
        .map(|registration| {
            let id = registration.id;
            let mut entry =
                serde_json::to_value((registration.capabilities)()).unwrap_or(Value::Null);
            if let Value::Object(map) = &mut entry {
                map.insert("protocol".into(), json!(id.as_str()));
                map.insert("api_key_env".into(), json!(registration.api_key_env));
                map.insert("base_url_env".into(), json!(registration.base_url_env));
                map.insert("key_set".into(), json!(key_set(id)));
            }
            entry
        })
        .collect();
    if let Some(caps) = emulated(registrations) {
        let protocol = caps.provider;
        let mut mock = serde_json::to_value(caps).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut mock {
            map.insert("provider".into(), json!("mock"));
            map.insert("protocol".into(), json!(protocol.as_str()));
            map.insert("api_key_env".into(), Value::Null);
            map.insert("base_url_env".into(), Value::Null);
            map.insert("key_set".into(), json!(false));
            map.insert(
                "note".into(),
                json!("the built-in emulator, run in-process when no API key is set: offline, free, placeholder images"),
            );
        }
        entries.push(mock);
    }
    json!({ "providers": entries }).to_string()
}

/// The capabilities as text at most `width` characters wide: a block per provider — its
/// key, webhooks, rate limit and usual time, then each model's images per task, ratios,
/// settings, references and prices — and the emulator last. Long values wrap under
/// themselves.
fn table(
    registrations: &[Registration],
    key_set: impl Fn(ProviderId) -> bool,
    width: usize,
) -> String {
    let mut blocks = Vec::new();
    for registration in registrations {
        let caps = (registration.capabilities)();
        let id = registration.id;
        let mut out = Block::new(width);
        out.heading(id.as_str());
        out.facts(
            2,
            &[
                (
                    "API key",
                    format!(
                        "{} ({})",
                        registration.api_key_env,
                        if key_set(id) { "set" } else { "not set" }
                    ),
                ),
                ("webhooks", yes_no(caps.webhooks).to_owned()),
                (
                    "rate limit",
                    caps.rate_limit
                        .map_or_else(|| "none documented".to_owned(), |limit| limit.to_string()),
                ),
                (
                    "usual time",
                    caps.typical_duration.map_or_else(
                        || "not documented".to_owned(),
                        |typical| format!("{}–{} s", typical.min.as_secs(), typical.max.as_secs()),
                    ),
                ),
            ],
        );
        for model in &caps.models {
            out.model(&caps, model, None);
        }
        if caps.other_models {
            out.text(
                2,
                &format!(
                    "{id} also accepts model ids imggen does not know (sent unchecked; --strict refuses them)."
                ),
            );
        }
        blocks.push(out.finish());
    }
    if let Some(caps) = emulated(registrations) {
        let mut out = Block::new(width);
        out.heading("mock");
        out.text(2, &emulator_note(&caps));
        out.facts(
            2,
            &[
                ("API key", "none needed".to_owned()),
                ("webhooks", "no".to_owned()),
                ("rate limit", "none".to_owned()),
                (
                    "usual time",
                    "1–2 s (the emulator's fast profile)".to_owned(),
                ),
            ],
        );
        for model in &caps.models {
            out.model(&caps, model, Some(caps.provider));
        }
        blocks.push(out.finish());
    }
    blocks.join("\n")
}

/// One provider's lines, wrapped to a width.
struct Block {
    width: usize,
    lines: Vec<String>,
}

impl Block {
    fn new(width: usize) -> Self {
        Block {
            width,
            lines: Vec::new(),
        }
    }

    fn heading(&mut self, text: &str) {
        self.text(0, text);
    }

    /// `text`, wrapped, every line indented by `indent`.
    fn text(&mut self, indent: usize, text: &str) {
        let pad = " ".repeat(indent);
        for line in wrap(text, self.width.saturating_sub(indent)) {
            self.lines.push(format!("{pad}{line}"));
        }
    }

    /// `label  value` lines, the values aligned, each wrapped under itself.
    fn facts(&mut self, indent: usize, facts: &[(&str, String)]) {
        let label_width = facts
            .iter()
            .map(|(label, _)| label.chars().count())
            .max()
            .unwrap_or(0)
            + 2;
        let pad = " ".repeat(indent);
        for (label, value) in facts {
            let room = self.width.saturating_sub(indent + label_width);
            for (index, line) in wrap(value, room).into_iter().enumerate() {
                let head = if index == 0 { *label } else { "" };
                let gap = " ".repeat(label_width - head.chars().count());
                self.lines
                    .push(format!("{pad}{head}{gap}{line}").trim_end().to_owned());
            }
        }
    }

    /// A model's heading and facts; `emulating`: the provider the emulator counts prices as.
    fn model(
        &mut self,
        caps: &ProviderCapabilities,
        model: &ModelCapabilities,
        emulating: Option<ProviderId>,
    ) {
        let name = model.model.as_deref();
        let default = name.is_none() || name == caps.default_model.as_deref();
        let heading = match (name, default) {
            (Some(name), true) => format!("model {name} (default)"),
            (Some(name), false) => format!("model {name}"),
            (None, _) => "model (default: sent without a model id)".to_owned(),
        };
        self.text(2, &heading);
        let mut facts = model_facts(model);
        if let Some(provider) = emulating
            && let Some((_, price)) = facts.last_mut()
        {
            *price = format!("free (counts {price} as {provider} would)");
        }
        self.facts(4, &facts);
    }

    fn finish(self) -> String {
        let mut text = self.lines.join("\n");
        text.push('\n');
        text
    }
}

/// `text` in lines of at most `width` characters, broken at spaces (a word longer than a line
/// is cut).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let mut word: Vec<char> = word.chars().collect();
        loop {
            let used = line.chars().count();
            let gap = usize::from(used > 0);
            if used + gap + word.len() <= width {
                if gap == 1 {
                    line.push(' ');
                }
                line.extend(word.iter());
                break;
            }
            if used > 0 {
                lines.push(std::mem::take(&mut line));
                continue;
            }
            // A word wider than a whole line.
            let rest = word.split_off(width);
            lines.push(word.iter().collect());
            word = rest;
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// What the emulator is, in the terms of the protocol it speaks.
fn emulator_note(caps: &ProviderCapabilities) -> String {
    let most_images = caps
        .models
        .iter()
        .map(|model| model.max_images_per_task)
        .max()
        .unwrap_or(1);
    let ratios = caps
        .models
        .iter()
        .map(|model| model.aspect_ratios.len())
        .max()
        .unwrap_or(0);
    format!(
        "mock is the built-in emulator: {}'s protocol (n up to {most_images}, {ratios} ratios), run in-process when no API key is set; offline, free, placeholder images.",
        caps.provider
    )
}

fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

/// A model's facts, as `(label, value)`: the price last.
fn model_facts(model: &ModelCapabilities) -> Vec<(&'static str, String)> {
    let ratios = if model.aspect_ratios.is_empty() {
        "any".to_owned()
    } else {
        model
            .aspect_ratios
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut settings = Vec::new();
    if !model.qualities.is_empty() {
        settings.push(format!("quality {}", model.qualities.join("|")));
    }
    if !model.resolutions.is_empty() {
        settings.push(format!("resolution {}", model.resolutions.join("|")));
    }
    if model.background {
        settings.push("background".to_owned());
    }
    let refs = &model.references;
    let mut forms = Vec::new();
    if refs.https_url {
        forms.push("https");
    }
    if refs.http_url {
        forms.push("http");
    }
    if refs.data_uri {
        forms.push("data URI");
    }
    if refs.bytes {
        forms.push("file");
    }
    let prices = if model.prices.is_empty() {
        "per task, reported at submit".to_owned()
    } else {
        model
            .prices
            .iter()
            .map(|price| {
                let qualifier: Vec<&str> = [price.quality.as_deref(), price.resolution.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect();
                if qualifier.is_empty() {
                    cost(&price.per_image)
                } else {
                    format!("{} ({})", cost(&price.per_image), qualifier.join(" "))
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    vec![
        (
            "images per task",
            match model.max_images_per_task {
                1 => "1".to_owned(),
                most => format!("up to {most}"),
            },
        ),
        ("aspect ratios", ratios),
        (
            "settings",
            if settings.is_empty() {
                "none".to_owned()
            } else {
                settings.join(", ")
            },
        ),
        (
            "references",
            format!("up to {}: {}", refs.max_count, forms.join(", ")),
        ),
        ("price per image", prices),
    ]
}

fn cost(cost: &Cost) -> String {
    cost.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lists_every_provider_model_and_the_emulator() {
        let table = table(
            &imggen_core::builtin::registrations(),
            |id| id.as_str() == "gptimg",
            80,
        );
        assert!(table.contains("GPTIMG_API_KEY (set)"), "{table}");
        assert!(table.contains("RUNBLOB_API_KEY (not set)"), "{table}");
        assert!(table.contains("model openai/gpt-image-1.5\n"), "{table}");
        assert!(
            table.contains("price per image  $0.05 (1K), $0.07 (2K), $0.12 (4K)"),
            "{table}"
        );
        assert!(table.contains("20 requests per 10s"), "{table}");
        assert!(
            table.contains("runbase also accepts model ids imggen does not know"),
            "{table}"
        );
        let mock = table.split("\n\n").last().unwrap();
        assert!(mock.starts_with("mock\n"), "{mock}");
        assert!(mock.contains("model gpt-image-2 (default)"), "{mock}");
        assert!(mock.contains("images per task  up to 4"), "{mock}");
        assert!(mock.contains("9:21"), "{mock}");
        assert!(
            mock.contains("free (counts 2 credits as gptimg would)"),
            "{mock}"
        );
        assert!(
            mock.contains("gptimg's protocol (n up to 4, 13 ratios)"),
            "{mock}"
        );
    }

    #[test]
    fn the_table_fits_its_width() {
        for width in [80, 60, 40] {
            let table = table(&imggen_core::builtin::registrations(), |_| false, width);
            for line in table.lines() {
                assert!(
                    line.chars().count() <= width,
                    "{} > {width}: {line:?}",
                    line.chars().count()
                );
            }
            // Wrapped, nothing lost: every word of the widest table is still there.
            let wide = super::table(&imggen_core::builtin::registrations(), |_| false, 1000);
            let words = |text: &str| {
                text.split_whitespace()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            };
            assert_eq!(words(&table), words(&wide), "at {width}");
        }
        assert_eq!(wrap("a bc def", 4), ["a bc", "def"]);
        assert_eq!(wrap("abcdefgh", 3), ["abc", "def", "gh"]);
        assert_eq!(wrap("", 10), [""]);
    }

    #[test]
    fn the_json_keeps_core_s_capabilities_and_adds_the_variables() {
        let value: Value =
            serde_json::from_str(&json(&imggen_core::builtin::registrations(), |_| false)).unwrap();
        let providers = value["providers"].as_array().unwrap();
        let names: Vec<&str> = providers
            .iter()
            .map(|p| p["provider"].as_str().unwrap())
            .collect();
        // The default order, imggen-core's, then the emulator.
        assert_eq!(names, ["gptimg", "runblob", "runbase", "mock"]);
        assert_eq!(providers[2]["rate_limit"]["requests"], 20);
        assert_eq!(providers[0]["api_key_env"], "GPTIMG_API_KEY");
        assert_eq!(providers[3]["protocol"], "gptimg");
        assert_eq!(providers[3]["models"][0]["max_images_per_task"], 4);
    }
}
