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

/// Runs `imggen providers`; returns the exit code.
pub(crate) fn command(args: &ProvidersArgs) -> u8 {
    let registrations = imggen_core::builtin::registrations();
    let text = if args.json {
        json(&registrations, key_set)
    } else {
        table(&registrations, key_set)
    };
    let _ = stdout::write_lines(&[text]);
    exit::SUCCESS
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

/// The capabilities as a table: one row per provider and model, then one per provider for
/// its key, webhooks, rate limit and usual time.
fn table(registrations: &[Registration], key_set: impl Fn(ProviderId) -> bool) -> String {
    let mut models = vec![row(&[
        "PROVIDER",
        "MODEL",
        "N/TASK",
        "ASPECT RATIOS",
        "SETTINGS",
        "REFERENCES",
        "PRICE PER IMAGE",
    ])];
    let mut accounts = vec![row(&[
        "PROVIDER",
        "API KEY",
        "WEBHOOKS",
        "RATE LIMIT",
        "USUAL TIME",
    ])];
    let mut notes = Vec::new();
    for registration in registrations {
        let caps = (registration.capabilities)();
        let id = registration.id;
        for model in &caps.models {
            models.push(model_row(id.as_str(), model));
        }
        accounts.push(vec![
            id.to_string(),
            format!(
                "{} ({})",
                registration.api_key_env,
                if key_set(id) { "set" } else { "not set" }
            ),
            yes_no(caps.webhooks).to_owned(),
            caps.rate_limit
                .map_or_else(|| "none documented".to_owned(), |limit| limit.to_string()),
            caps.typical_duration.map_or_else(
                || "not documented".to_owned(),
                |typical| format!("{}–{} s", typical.min.as_secs(), typical.max.as_secs()),
            ),
        ]);
        if caps.other_models {
            notes.push(format!(
                "{id} also accepts model ids imggen does not know (sent unchecked; --strict refuses them)."
            ));
        }
    }
    if let Some(caps) = emulated(registrations) {
        for model in &caps.models {
            let mut row = model_row("mock", model);
            if let Some(price) = row.last_mut() {
                *price = format!("free (counts {price} as {} would)", caps.provider);
            }
            models.push(row);
        }
        accounts.push(row(&[
            "mock",
            "none needed",
            "no",
            "none",
            "1–2 s (the emulator's fast profile)",
        ]));
        notes.insert(0, emulator_note(&caps));
    }
    let mut out = render(&models);
    out.push('\n');
    out.push_str(&render(&accounts));
    out.push('\n');
    out.push_str(&notes.join("\n"));
    out
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

fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|cell| (*cell).to_owned()).collect()
}

fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

fn model_row(provider: &str, model: &ModelCapabilities) -> Vec<String> {
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
        provider.to_owned(),
        model
            .model
            .clone()
            .unwrap_or_else(|| "(default)".to_owned()),
        model.max_images_per_task.to_string(),
        ratios,
        if settings.is_empty() {
            "-".to_owned()
        } else {
            settings.join(", ")
        },
        format!("up to {}: {}", refs.max_count, forms.join(", ")),
        prices,
    ]
}

fn cost(cost: &Cost) -> String {
    cost.to_string()
}

/// Left-aligned columns, two spaces apart; the last column is not padded.
fn render(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|column| {
            rows.iter()
                .filter_map(|row| row.get(column))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (column, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if column + 1 < row.len() {
                let pad = widths[column] - cell.chars().count() + 2;
                line.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lists_every_provider_model_and_the_emulator() {
        let table = table(&imggen_core::builtin::registrations(), |id| {
            id.as_str() == "gptimg"
        });
        assert!(table.contains("GPTIMG_API_KEY (set)"), "{table}");
        assert!(table.contains("RUNBLOB_API_KEY (not set)"), "{table}");
        assert!(table.contains("openai/gpt-image-1.5"), "{table}");
        assert!(
            table.contains("$0.05 (1K), $0.07 (2K), $0.12 (4K)"),
            "{table}"
        );
        assert!(table.contains("20 requests per 10s"), "{table}");
        assert!(
            table.contains("runbase also accepts model ids imggen does not know"),
            "{table}"
        );
        let mock = table
            .lines()
            .find(|line| line.starts_with("mock ") && line.contains("gpt-image-2"))
            .expect("a mock model row");
        assert!(mock.contains("  4  ") && mock.contains("9:21"), "{mock}");
        assert!(
            table.contains("gptimg's protocol (n up to 4, 13 ratios)"),
            "{table}"
        );
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
