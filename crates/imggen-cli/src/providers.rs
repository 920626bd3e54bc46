//! `imggen providers`: imggen-core's capabilities as a table (or JSON), with the built-in
//! emulator listed as what it is: gptimg's protocol, offline.

use imggen_core::capabilities::{self, ModelCapabilities, ProviderCapabilities};
use imggen_core::{Cost, ProviderId};
use serde_json::{Value, json};

use crate::app::{api_key_env, base_url_env};

/// The capabilities as JSON: `{"providers": [...]}`, each entry imggen-core's capabilities
/// plus its variables and whether its key is set; the emulator last, as `mock`.
pub(crate) fn json(key_set: impl Fn(ProviderId) -> bool) -> String {
    let mut entries: Vec<Value> = capabilities::all()
        .into_iter()
        .map(|caps| {
            let id = caps.provider;
            let mut entry = serde_json::to_value(&caps).unwrap_or(Value::Null);
            if let Value::Object(map) = &mut entry {
                map.insert("protocol".into(), json!(id.as_str()));
                map.insert("api_key_env".into(), json!(api_key_env(id)));
                map.insert("base_url_env".into(), json!(base_url_env(id)));
                map.insert("key_set".into(), json!(key_set(id)));
            }
            entry
        })
        .collect();
    let mut mock =
        serde_json::to_value(capabilities::of(ProviderId::Gptimg)).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut mock {
        map.insert("provider".into(), json!("mock"));
        map.insert("protocol".into(), json!("gptimg"));
        map.insert("api_key_env".into(), Value::Null);
        map.insert("base_url_env".into(), Value::Null);
        map.insert("key_set".into(), json!(false));
        map.insert(
            "note".into(),
            json!("the built-in emulator, run in-process when no API key is set: offline, free, placeholder images"),
        );
    }
    entries.push(mock);
    json!({ "providers": entries }).to_string()
}

/// The capabilities as a table: one row per provider and model, then one per provider for
/// its key, webhooks, rate limit and usual time.
pub(crate) fn table(key_set: impl Fn(ProviderId) -> bool) -> String {
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
    let mut add = |name: &str, caps: &ProviderCapabilities, key: String| {
        for model in &caps.models {
            models.push(model_row(name, model));
        }
        accounts.push(vec![
            name.to_owned(),
            key,
            yes_no(caps.webhooks).to_owned(),
            caps.rate_limit
                .map_or_else(|| "none documented".to_owned(), |limit| limit.to_string()),
            caps.typical_duration.map_or_else(
                || "not documented".to_owned(),
                |typical| format!("{}–{} s", typical.min.as_secs(), typical.max.as_secs()),
            ),
        ]);
    };
    for caps in capabilities::all() {
        let id = caps.provider;
        let key = format!(
            "{} ({})",
            api_key_env(id),
            if key_set(id) { "set" } else { "not set" }
        );
        add(id.as_str(), &caps, key);
    }
    for model in &capabilities::of(ProviderId::Gptimg).models {
        let mut row = model_row("mock", model);
        if let Some(price) = row.last_mut() {
            *price = format!("free (counts {price} as gptimg would)");
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
    let mut out = render(&models);
    out.push('\n');
    out.push_str(&render(&accounts));
    out.push_str(
        "\nmock is the built-in emulator: gptimg's protocol (n up to 4, 13 ratios, https references), run in-process when no API key is set; offline, free, placeholder images.\nrunbase also accepts model ids imggen does not know (sent unchecked; --strict refuses them).",
    );
    out
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
        let table = table(|id| id == ProviderId::Gptimg);
        assert!(table.contains("GPTIMG_API_KEY (set)"), "{table}");
        assert!(table.contains("RUNBLOB_API_KEY (not set)"), "{table}");
        assert!(table.contains("openai/gpt-image-1.5"), "{table}");
        assert!(
            table.contains("$0.05 (1K), $0.07 (2K), $0.12 (4K)"),
            "{table}"
        );
        assert!(table.contains("20 requests per 10s"), "{table}");
        let mock = table
            .lines()
            .find(|line| line.starts_with("mock ") && line.contains("gpt-image-2"))
            .expect("a mock model row");
        assert!(mock.contains("  4  ") && mock.contains("9:21"), "{mock}");
        assert!(
            table.contains("gptimg's protocol (n up to 4, 13 ratios"),
            "{table}"
        );
    }

    #[test]
    fn the_json_keeps_core_s_capabilities_and_adds_the_variables() {
        let value: Value = serde_json::from_str(&json(|_| false)).unwrap();
        let providers = value["providers"].as_array().unwrap();
        let names: Vec<&str> = providers
            .iter()
            .map(|p| p["provider"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["runblob", "gptimg", "runbase", "mock"]);
        assert_eq!(providers[2]["rate_limit"]["requests"], 20);
        assert_eq!(providers[1]["api_key_env"], "GPTIMG_API_KEY");
        assert_eq!(providers[3]["protocol"], "gptimg");
        assert_eq!(providers[3]["models"][0]["max_images_per_task"], 4);
    }
}
