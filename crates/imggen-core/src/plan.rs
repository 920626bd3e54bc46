//! Planning: a [`GenerationRequest`] checked against one provider's capabilities, before
//! anything is sent. Pure: no I/O, no clock.
//!
//! Nothing is ever dropped silently. A setting the provider (or model) cannot honour is a
//! [`PlanError`] in strict mode, or dropped with a [`Warning`] the caller gets back in lenient
//! mode. Some problems are errors in both modes, because no degraded request would be the
//! request the user made:
//! - a reference image in a form the provider does not take (a local file for gptimg, which
//!   takes only https URLs), or more references than it takes;
//! - an empty or over-long prompt, `n = 0`;
//! - a runbase `input.<field>` option that repeats a common setting.
//!
//! `n` above the per-task maximum (runblob and runbase make one image per task) becomes several
//! tasks — each charged — only with `allow_extra_tasks`; otherwise it is an error (strict) or
//! reduced to the maximum with a warning (lenient).

use std::fmt;

use imggen_types::{AspectRatio, ValidationError, gptimg, runbase};
use serde::Serialize;

use crate::adapters;
use crate::capabilities::{self, ModelCapabilities, ReferenceCapabilities};
use crate::cost::Cost;
use crate::provider::ProviderId;
use crate::request::{GenerationRequest, Reference};

/// How strictly to plan.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// An unsupported setting is an error (`true`) or dropped with a warning (`false`).
    pub strict: bool,
    /// Whether `n` above the per-task maximum may become several tasks, each charged.
    pub allow_extra_tasks: bool,
}

/// A request made ready for one provider: the tasks to create, what was dropped, and what it
/// should cost.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Plan {
    /// The provider.
    pub provider: ProviderId,
    /// The model that will serve it (`None`: the provider's default, sent without a model).
    pub model: Option<String>,
    /// One entry per task to create (and pay for).
    pub tasks: Vec<PlannedTask>,
    /// Settings dropped in lenient mode, and notes such as "unknown model, sent unchecked".
    pub warnings: Vec<Warning>,
    /// The documented price of all tasks; `None` where the provider reports prices only per
    /// task (runblob) or the model is not one imggen knows.
    pub estimated_cost: Option<Cost>,
}

impl Plan {
    /// Images the tasks will make in all.
    pub fn images(&self) -> u32 {
        self.tasks.iter().map(|task| task.images).sum()
    }
}

/// One task of a plan, in the unified vocabulary, checked against the provider; an adapter
/// turns it into the provider's wire request.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct PlannedTask {
    /// The provider.
    pub provider: ProviderId,
    /// The model (`None`: the provider's default, not sent).
    pub model: Option<String>,
    /// What to draw.
    pub prompt: String,
    /// The ratio, if one is sent.
    pub aspect_ratio: Option<AspectRatio>,
    /// Images this task makes.
    pub images: u32,
    /// The quality, if one is sent.
    pub quality: Option<String>,
    /// The resolution, if one is sent (runbase).
    pub resolution: Option<String>,
    /// The background, if one is sent (runblob).
    pub background: Option<String>,
    /// Reference images.
    pub references: Vec<Reference>,
    /// The webhook URL (runblob).
    pub webhook: Option<String>,
    /// Extra runbase input fields, sent as given.
    pub extra_input: serde_json::Map<String, serde_json::Value>,
}

impl PlannedTask {
    /// A task of one image of `prompt` for `provider`, every setting left to the provider.
    pub fn new(provider: ProviderId, prompt: impl Into<String>) -> Self {
        PlannedTask {
            provider,
            model: None,
            prompt: prompt.into(),
            aspect_ratio: None,
            images: 1,
            quality: None,
            resolution: None,
            background: None,
            references: Vec::new(),
            webhook: None,
            extra_input: serde_json::Map::new(),
        }
    }
}

/// A setting that was not sent as asked, in lenient mode — or a note the caller should read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Warning {
    /// The provider.
    pub provider: ProviderId,
    /// The setting: `aspect_ratio`, `n`, `quality`, `model`, `webhook`, …
    pub setting: String,
    /// The value asked for.
    pub value: String,
    /// What happened instead, and why.
    pub reason: String,
}

impl fmt::Display for Warning {
    /// `runblob: aspect_ratio "16:9" dropped: runblob accepts 1:1, 4:3, 3:4`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} {:?}: {}",
            self.provider, self.setting, self.value, self.reason
        )
    }
}

/// A request the provider cannot serve as asked. Nothing was sent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{provider} cannot serve this request: {setting}{}: {problem}; nothing was sent",
    value_part(value)
)]
#[non_exhaustive]
pub struct PlanError {
    /// The provider.
    pub provider: ProviderId,
    /// The setting at fault (`aspect_ratio`, `references[1]`, `n`, …).
    pub setting: String,
    /// The value asked for (empty when the problem is not one value).
    pub value: String,
    /// What is wrong and what the provider allows.
    pub problem: String,
}

fn value_part(value: &str) -> String {
    if value.is_empty() {
        String::new()
    } else {
        format!(" {value:?}")
    }
}

struct Planner<'a> {
    provider: ProviderId,
    options: PlanOptions,
    warnings: Vec<Warning>,
    request: &'a GenerationRequest,
}

impl Planner<'_> {
    fn error(&self, setting: &str, value: &str, problem: impl Into<String>) -> PlanError {
        PlanError {
            provider: self.provider,
            setting: setting.to_owned(),
            value: value.to_owned(),
            problem: problem.into(),
        }
    }

    /// Strict: an error. Lenient: a warning, and the caller drops the setting.
    fn unsupported(
        &mut self,
        setting: &str,
        value: &str,
        problem: impl Into<String>,
        dropped: &str,
    ) -> Result<(), PlanError> {
        let problem = problem.into();
        if self.options.strict {
            return Err(self.error(setting, value, problem));
        }
        self.note(setting, value, format!("{problem}; {dropped}"));
        Ok(())
    }

    fn note(&mut self, setting: &str, value: &str, reason: String) {
        self.warnings.push(Warning {
            provider: self.provider,
            setting: setting.to_owned(),
            value: value.to_owned(),
            reason,
        });
    }
}

/// Plans `request` for `provider`. See the [module docs](self) for what is an error and what
/// a warning.
pub fn plan(
    request: &GenerationRequest,
    provider: ProviderId,
    options: PlanOptions,
) -> Result<Plan, PlanError> {
    let caps = capabilities::of(provider);
    let mut planner = Planner {
        provider,
        options,
        warnings: Vec::new(),
        request,
    };
    if planner.request.prompt.trim().is_empty() {
        return Err(planner.error("prompt", "", "must not be empty or only whitespace"));
    }

    // The model, and what it can do (`None` for a runbase model imggen does not know).
    let asked_model = match provider {
        ProviderId::Runblob => request
            .options
            .runblob
            .model
            .clone()
            .or_else(|| request.model.clone()),
        ProviderId::Gptimg | ProviderId::Runbase => request.model.clone(),
    };
    let (model, model_caps): (Option<String>, Option<&ModelCapabilities>) = match &asked_model {
        None => (caps.default_model.clone(), caps.model(None)),
        Some(name) => match caps.model(Some(name)) {
            Some(found) => (Some(name.clone()), Some(found)),
            None if caps.other_models => {
                planner.note(
                    "model",
                    name,
                    format!(
                        "not a {provider} model imggen knows ({}); its settings are sent unchecked and its price is unknown",
                        caps.model_names().join(", ")
                    ),
                );
                (Some(name.clone()), None)
            }
            None => {
                let default = caps.default_model.clone();
                let default_name = default.as_deref().unwrap_or("the default model");
                planner.unsupported(
                    "model",
                    name,
                    format!("allowed: {}", caps.model_names().join(", ")),
                    &format!("{default_name} is used"),
                )?;
                (default, caps.model(None))
            }
        },
    };
    let model_label = model.clone().unwrap_or_else(|| provider.to_string());

    // n, and how many tasks it takes.
    if request.n == 0 {
        return Err(planner.error("n", "0", "must be at least 1"));
    }
    let per_task = model_caps.map_or(1, |m| m.max_images_per_task).max(1);
    let mut n = request.n;
    if n > per_task && !options.allow_extra_tasks {
        let tasks = n.div_ceil(per_task);
        planner.unsupported(
            "n",
            &n.to_string(),
            format!(
                "{model_label} makes at most {per_task} image(s) per task, so {n} images need {tasks} tasks, each charged; allow extra tasks to pay for them"
            ),
            &format!("{per_task} image(s) will be made"),
        )?;
        n = per_task;
    }

    // Aspect ratio: values written as `Other` are sent deliberately, unchecked.
    let mut aspect_ratio = request.aspect_ratio.clone();
    if let (Some(ratio), Some(caps)) = (&aspect_ratio, model_caps)
        && ratio.is_known()
        && !caps.aspect_ratios.contains(ratio)
    {
        let default = match &caps.default_aspect_ratio {
            Some(default) => format!("the default {default} is used"),
            None => "the model chooses the ratio".to_owned(),
        };
        planner.unsupported(
            "aspect_ratio",
            ratio.as_str(),
            format!("{model_label} accepts {}", join(&caps.aspect_ratios)),
            &default,
        )?;
        aspect_ratio = None;
    }

    let quality = match provider {
        ProviderId::Runblob => request
            .options
            .runblob
            .quality
            .clone()
            .or_else(|| request.quality.clone()),
        _ => request.quality.clone(),
    };
    let quality = check_choice(
        &mut planner,
        "quality",
        quality,
        model_caps.map(|m| &m.qualities),
        &model_label,
    )?;
    let resolution = match provider {
        ProviderId::Runbase => check_choice(
            &mut planner,
            "resolution",
            request.options.runbase.resolution.clone(),
            model_caps.map(|m| &m.resolutions),
            &model_label,
        )?,
        _ => None,
    };
    let mut background = match provider {
        ProviderId::Runblob => request.options.runblob.background.clone(),
        _ => None,
    };
    if let (Some(value), Some(caps)) = (&background, model_caps)
        && !caps.background
    {
        planner.unsupported(
            "background",
            &value.clone(),
            format!("{model_label} takes no background setting (chatgpt-2.5 does)"),
            "it is not sent",
        )?;
        background = None;
    }

    // References: always an error when they cannot be sent as given.
    let reference_caps = model_caps.map_or(
        ReferenceCapabilities {
            max_count: usize::MAX,
            https_url: true,
            http_url: true,
            data_uri: false,
            bytes: false,
            max_bytes: None,
        },
        |m| m.references,
    );
    check_references(&planner, &request.references, reference_caps)?;

    let mut webhook = request.webhook.clone();
    if let Some(url) = &webhook
        && !caps.webhooks
    {
        planner.unsupported(
            "webhook",
            &url.clone(),
            format!("{provider} does not call webhooks"),
            "imggen polls for the result instead",
        )?;
        webhook = None;
    }

    let mut extra_input = serde_json::Map::new();
    if provider == ProviderId::Runbase {
        const COMMON: [(&str, &str); 5] = [
            ("prompt", "the prompt"),
            ("aspect_ratio", "the aspect ratio"),
            ("quality", "the quality"),
            ("resolution", "the resolution option"),
            ("image_urls", "references"),
        ];
        for (key, value) in &request.options.runbase.input {
            if let Some((_, common)) = COMMON.iter().find(|(name, _)| name == key) {
                return Err(planner.error(
                    &format!("input.{key}"),
                    &value.to_string(),
                    format!("set {common} with the common setting, not as an extra input field"),
                ));
            }
            extra_input.insert(key.clone(), value.clone());
        }
    }

    // Split n into tasks of at most `per_task` images.
    let mut sizes = Vec::new();
    let mut left = n;
    while left > 0 {
        let size = left.min(per_task);
        sizes.push(size);
        left -= size;
    }
    let template = PlannedTask {
        provider,
        model: model.clone(),
        prompt: request.prompt.clone(),
        aspect_ratio,
        images: 1,
        quality,
        resolution,
        background,
        references: request.references.clone(),
        webhook,
        extra_input,
    };
    // The clients' own checks (prompt length, URL shapes), run here so a broken request fails
    // before anything is sent, and with the provider named.
    adapters::validate(&template).map_err(|error| wire_error(provider, error))?;
    let tasks: Vec<PlannedTask> = sizes
        .into_iter()
        .map(|images| PlannedTask {
            images,
            ..template.clone()
        })
        .collect();
    let estimated_cost = estimate(provider, model_caps, &tasks);
    Ok(Plan {
        provider,
        model,
        tasks,
        warnings: planner.warnings,
        estimated_cost,
    })
}

fn wire_error(provider: ProviderId, error: ValidationError) -> PlanError {
    PlanError {
        provider,
        setting: error.field,
        value: String::new(),
        problem: error.problem,
    }
}

fn check_choice(
    planner: &mut Planner<'_>,
    setting: &str,
    value: Option<String>,
    allowed: Option<&Vec<String>>,
    model: &str,
) -> Result<Option<String>, PlanError> {
    let (Some(value), Some(allowed)) = (value.clone(), allowed) else {
        // No value, or a model imggen does not know: sent as given.
        return Ok(value);
    };
    if allowed.iter().any(|candidate| candidate == &value) {
        return Ok(Some(value));
    }
    let problem = if allowed.is_empty() {
        format!("{model} takes no {setting} setting")
    } else {
        format!("{model} accepts {}", allowed.join(", "))
    };
    planner.unsupported(setting, &value, problem, "the provider's default is used")?;
    Ok(None)
}

fn check_references(
    planner: &Planner<'_>,
    references: &[Reference],
    caps: ReferenceCapabilities,
) -> Result<(), PlanError> {
    let provider = planner.provider;
    if references.len() > caps.max_count {
        return Err(planner.error(
            "references",
            &references.len().to_string(),
            format!(
                "{provider} takes at most {} reference images",
                caps.max_count
            ),
        ));
    }
    let accepted = {
        let mut forms = Vec::new();
        if caps.https_url {
            forms.push("https URLs");
        }
        if caps.http_url {
            forms.push("http URLs");
        }
        if caps.data_uri {
            forms.push("data URIs");
        }
        if caps.bytes {
            forms.push("local files and bytes");
        }
        forms.join(", ")
    };
    for (index, reference) in references.iter().enumerate() {
        let ok = match reference.form() {
            "https URL" => caps.https_url,
            "http URL" => caps.http_url,
            "data URI" => caps.data_uri,
            "local file" | "bytes" => caps.bytes,
            _ => false,
        };
        if !ok {
            let advice = if matches!(reference, Reference::File(_) | Reference::Bytes(_))
                || reference.form() == "data URI"
            {
                "; upload the image and pass its URL"
            } else {
                ""
            };
            return Err(planner.error(
                &format!("references[{index}]"),
                &reference.describe(),
                format!(
                    "a {} is not accepted by {provider}, which takes only {accepted}{advice}",
                    reference.form()
                ),
            ));
        }
    }
    Ok(())
}

fn estimate(
    provider: ProviderId,
    model_caps: Option<&ModelCapabilities>,
    tasks: &[PlannedTask],
) -> Option<Cost> {
    model_caps?;
    let mut total = Cost::ZERO;
    for task in tasks {
        let per_task = match provider {
            ProviderId::Runblob => return None,
            ProviderId::Gptimg => Cost::credits(gptimg::CREDITS_PER_IMAGE).times(task.images)?,
            ProviderId::Runbase => {
                let model = runbase::Model::from_wire(task.model.as_deref()?);
                let spec = runbase::ModelSpec::of(&model)?;
                let quality = task.quality.as_deref().map(runbase::Quality::from_wire);
                let resolution = task
                    .resolution
                    .as_deref()
                    .map(runbase::Resolution::from_wire);
                Cost::micro_usd(spec.price(quality.as_ref(), resolution.as_ref())?)
                    .times(task.images)?
            }
        };
        total = total + per_task;
    }
    Some(total)
}

fn join<T: fmt::Display>(values: &[T]) -> String {
    values
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: PlanOptions = PlanOptions {
        strict: true,
        allow_extra_tasks: false,
    };
    const LENIENT: PlanOptions = PlanOptions {
        strict: false,
        allow_extra_tasks: false,
    };

    fn request() -> GenerationRequest {
        GenerationRequest::new("A lighthouse at dusk")
    }

    #[test]
    fn an_unsupported_ratio_is_an_error_when_strict_and_a_warning_when_lenient() {
        let wide = request().aspect_ratio(AspectRatio::Landscape16x9);
        let err = plan(&wide, ProviderId::Runblob, STRICT).unwrap_err();
        assert_eq!(
            err.to_string(),
            "runblob cannot serve this request: aspect_ratio \"16:9\": runblob accepts 1:1, 4:3, 3:4; nothing was sent"
        );
        let lenient = plan(&wide, ProviderId::Runblob, LENIENT).unwrap();
        assert_eq!(lenient.tasks[0].aspect_ratio, None);
        assert_eq!(
            lenient.warnings[0].to_string(),
            "runblob: aspect_ratio \"16:9\": runblob accepts 1:1, 4:3, 3:4; the model chooses the ratio"
        );
        // gptimg takes 16:9: no warning at all.
        let fine = plan(&wide, ProviderId::Gptimg, STRICT).unwrap();
        assert!(fine.warnings.is_empty());
        assert_eq!(fine.tasks[0].aspect_ratio, Some(AspectRatio::Landscape16x9));
        // runbase's ratios depend on the model.
        let v1 = wide.clone().model("openai/gpt-image-1");
        let err = plan(&v1, ProviderId::Runbase, STRICT).unwrap_err();
        assert_eq!(err.problem, "openai/gpt-image-1 accepts 1:1, 3:2, 2:3");
        plan(&wide, ProviderId::Runbase, STRICT).unwrap();
    }

    #[test]
    fn n_above_the_per_task_maximum_needs_permission_to_pay_for_extra_tasks() {
        let three = request().n(3);
        let err = plan(&three, ProviderId::Runbase, STRICT).unwrap_err();
        assert_eq!(err.setting, "n");
        assert!(
            err.problem.contains("3 images need 3 tasks, each charged"),
            "{err}"
        );

        let lenient = plan(&three, ProviderId::Runbase, LENIENT).unwrap();
        assert_eq!(lenient.tasks.len(), 1);
        assert_eq!(lenient.warnings[0].setting, "n");

        let allowed = PlanOptions {
            strict: true,
            allow_extra_tasks: true,
        };
        let split = plan(&three, ProviderId::Runbase, allowed).unwrap();
        assert_eq!(split.tasks.len(), 3);
        assert_eq!(split.estimated_cost.unwrap().to_string(), "$0.15");

        // gptimg makes up to 4 per task: 6 images are a task of 4 and a task of 2.
        let six = plan(&request().n(6), ProviderId::Gptimg, allowed).unwrap();
        let sizes: Vec<u32> = six.tasks.iter().map(|t| t.images).collect();
        assert_eq!(sizes, [4, 2]);
        assert_eq!(six.images(), 6);
        assert_eq!(six.estimated_cost.unwrap().to_string(), "12 credits");
        assert_eq!(
            plan(&request().n(0), ProviderId::Gptimg, allowed)
                .unwrap_err()
                .problem,
            "must be at least 1"
        );
    }

    #[test]
    fn a_local_file_for_a_url_only_provider_is_always_an_error_that_says_so() {
        let with_file = request().reference(Reference::file("sketch.png"));
        for options in [STRICT, LENIENT] {
            let err = plan(&with_file, ProviderId::Gptimg, options).unwrap_err();
            assert_eq!(
                err.to_string(),
                "gptimg cannot serve this request: references[0] \"sketch.png\": a local file is not accepted by gptimg, which takes only https URLs; upload the image and pass its URL; nothing was sent"
            );
            assert!(plan(&with_file, ProviderId::Runbase, options).is_err());
        }
        let plan = plan(&with_file, ProviderId::Runblob, STRICT).unwrap();
        assert_eq!(plan.tasks[0].references, [Reference::file("sketch.png")]);

        let http = request().reference(Reference::url("http://example.com/a.jpg"));
        assert!(super::plan(&http, ProviderId::Gptimg, LENIENT).is_err());
        super::plan(&http, ProviderId::Runbase, STRICT).unwrap();

        let mut many = request();
        for i in 0..5 {
            many = many.reference(Reference::url(format!("https://example.com/{i}.jpg")));
        }
        let err = super::plan(&many, ProviderId::Gptimg, LENIENT).unwrap_err();
        assert_eq!(err.problem, "gptimg takes at most 4 reference images");
        super::plan(
            &many.model("openai/gpt-image-1"),
            ProviderId::Runbase,
            STRICT,
        )
        .unwrap();
    }

    #[test]
    fn quality_resolution_and_models_follow_the_model() {
        let high = request().quality("high");
        let err = plan(&high, ProviderId::Runbase, STRICT).unwrap_err();
        assert_eq!(err.problem, "openai/gpt-image-2 takes no quality setting");
        let ok = plan(
            &high.clone().model("openai/gpt-image-1.5"),
            ProviderId::Runbase,
            STRICT,
        )
        .unwrap();
        assert_eq!(ok.tasks[0].quality.as_deref(), Some("high"));
        assert_eq!(ok.estimated_cost.unwrap().to_string(), "$0.16");

        let mut sharp = request();
        sharp
            .options
            .set(ProviderId::Runbase, "resolution", "4K")
            .unwrap();
        let plan4k = plan(&sharp, ProviderId::Runbase, STRICT).unwrap();
        assert_eq!(plan4k.estimated_cost.unwrap().to_string(), "$0.12");
        // A runbase option does not concern gptimg: it is not a warning there.
        assert!(
            plan(&sharp, ProviderId::Gptimg, STRICT)
                .unwrap()
                .warnings
                .is_empty()
        );

        let mut flare = request();
        flare
            .options
            .set(ProviderId::Runblob, "quality", "flare")
            .unwrap();
        assert!(plan(&flare, ProviderId::Runblob, STRICT).is_err());
        flare
            .options
            .set(ProviderId::Runblob, "model", "chatgpt-2.5")
            .unwrap();
        let chatgpt = plan(&flare, ProviderId::Runblob, STRICT).unwrap();
        assert_eq!(chatgpt.model.as_deref(), Some("chatgpt-2.5"));
        assert_eq!(chatgpt.estimated_cost, None);

        let unknown = request().model("google/nano-banana-2").quality("ultra");
        let raw = plan(&unknown, ProviderId::Runbase, STRICT).unwrap();
        assert_eq!(raw.tasks[0].quality.as_deref(), Some("ultra"));
        assert_eq!(raw.warnings[0].setting, "model");
        assert_eq!(raw.estimated_cost, None);

        let err = plan(&request().model("dall-e-3"), ProviderId::Gptimg, STRICT).unwrap_err();
        assert_eq!(err.problem, "allowed: gpt-image-2");
        let lenient = plan(&request().model("dall-e-3"), ProviderId::Gptimg, LENIENT).unwrap();
        assert_eq!(lenient.model.as_deref(), Some("gpt-image-2"));
    }

    #[test]
    fn webhooks_extra_input_and_prompts() {
        let hooked = request().webhook("https://example.com/hook");
        assert!(plan(&hooked, ProviderId::Gptimg, STRICT).is_err());
        let lenient = plan(&hooked, ProviderId::Gptimg, LENIENT).unwrap();
        assert_eq!(lenient.tasks[0].webhook, None);
        assert!(lenient.warnings[0].reason.contains("polls"));
        let runblob = plan(&hooked, ProviderId::Runblob, STRICT).unwrap();
        assert_eq!(
            runblob.tasks[0].webhook.as_deref(),
            Some("https://example.com/hook")
        );
        let insecure = request().webhook("http://example.com/hook");
        let err = plan(&insecure, ProviderId::Runblob, LENIENT).unwrap_err();
        assert_eq!(err.setting, "callback_url");

        let mut extra = request();
        extra
            .options
            .set(ProviderId::Runbase, "input.seed", "7")
            .unwrap();
        let planned = plan(&extra, ProviderId::Runbase, STRICT).unwrap();
        assert_eq!(planned.tasks[0].extra_input["seed"], 7);
        extra
            .options
            .set(ProviderId::Runbase, "input.prompt", "other")
            .unwrap();
        let err = plan(&extra, ProviderId::Runbase, LENIENT).unwrap_err();
        assert_eq!(err.setting, "input.prompt");

        let err = plan(&GenerationRequest::new("  "), ProviderId::Gptimg, LENIENT).unwrap_err();
        assert_eq!(err.setting, "prompt");
        let long = GenerationRequest::new("a".repeat(4001));
        let err = plan(&long, ProviderId::Runblob, LENIENT).unwrap_err();
        assert_eq!(err.problem, "is 4001 characters long; the maximum is 4000");
    }
}
