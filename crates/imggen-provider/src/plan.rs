//! Planning: a [`GenerationRequest`] checked against one provider's capabilities, before
//! anything is sent. Pure: no I/O, no clock.
//!
//! Each provider plans with the shared [`Planner`] steps and its own: see
//! [`Provider::plan`](crate::Provider::plan).

use std::fmt;

use imggen_types::{AspectRatio, ValidationError};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::capabilities::{ModelCapabilities, ProviderCapabilities, ReferenceCapabilities};
use crate::cost::Cost;
use crate::id::ProviderId;
use crate::request::{GenerationRequest, Reference};

/// How a plan treats what a provider cannot do exactly as asked. One scale, the same in the
/// library and on the command line (`imggen --strict` is [`Strictness::Strict`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Strictness {
    /// A setting the provider cannot honour is dropped, with a [`Warning`]; what imggen
    /// cannot check (a model it does not know) is sent, with a warning.
    #[default]
    Lenient,
    /// A setting the provider cannot honour is refused: a paid task is never degraded. What
    /// imggen cannot check is still sent, with a warning. The command line's default.
    Exact,
    /// Nothing is sent that imggen cannot vouch for: every warning (a dropped setting, a
    /// model sent unchecked, a price unknown) is an error instead.
    Strict,
}

/// How to plan.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// What is refused rather than dropped or sent unchecked.
    pub strictness: Strictness,
    /// Whether `n` above the per-task maximum may become several tasks, each charged.
    pub allow_extra_tasks: bool,
}

impl PlanOptions {
    /// Plans at `strictness`, without extra tasks.
    pub fn new(strictness: Strictness) -> Self {
        PlanOptions {
            strictness,
            allow_extra_tasks: false,
        }
    }

    /// Lets `n` above the per-task maximum become several tasks, each charged.
    pub fn allow_extra_tasks(mut self, allow: bool) -> Self {
        self.allow_extra_tasks = allow;
        self
    }
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
    /// task, in its create's answer, or the model is not one imggen knows.
    pub estimated_cost: Option<Cost>,
}

impl Plan {
    /// Images the tasks will make in all.
    pub fn images(&self) -> u32 {
        self.tasks.iter().map(|task| task.images).sum()
    }
}

/// One task of a plan, in the unified vocabulary, checked against the provider; the provider
/// turns it into its wire request.
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
    /// Reference images.
    pub references: Vec<Reference>,
    /// The webhook URL, for a provider that calls one.
    pub webhook: Option<String>,
    /// The provider's own settings, checked by its planner and read by its create (a
    /// resolution, a background, extra input fields), in the provider's own shape.
    pub settings: Map<String, Value>,
    /// What the task should cost, by the provider's documented prices; `None` when the
    /// provider prices a task only in its create's answer, or the model is one imggen does
    /// not know.
    pub price: Option<Cost>,
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
            references: Vec::new(),
            webhook: None,
            settings: Map::new(),
            price: None,
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

impl Warning {
    /// A warning about `setting` (asked as `value`) of `provider`'s task: `reason` says what
    /// happened instead.
    pub fn new(
        provider: ProviderId,
        setting: impl Into<String>,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Warning {
            provider,
            setting: setting.into(),
            value: value.into(),
            reason: reason.into(),
        }
    }
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

/// The checks every provider's planning shares, driven by its [`ProviderCapabilities`]: a
/// provider's [`plan`](crate::Provider::plan) runs them in turn, adds what is its own, and
/// [`finish`](Self::finish)es. Nothing is dropped silently: a setting the provider cannot
/// honour is refused, or dropped with a [`Warning`] when planning is
/// [`Lenient`](Strictness::Lenient); under [`Strict`](Strictness::Strict) every warning is an
/// error. Some problems are errors at every strictness (an empty prompt, `n = 0`, a reference in a form the provider
/// does not take, more references than it takes).
#[derive(Debug)]
pub struct Planner<'a> {
    provider: ProviderId,
    caps: &'a ProviderCapabilities,
    options: PlanOptions,
    request: &'a GenerationRequest,
    warnings: Vec<Warning>,
}

impl<'a> Planner<'a> {
    /// Starts planning `request` against `caps`: an empty or blank prompt is refused here.
    pub fn new(
        caps: &'a ProviderCapabilities,
        request: &'a GenerationRequest,
        options: PlanOptions,
    ) -> Result<Self, PlanError> {
        let planner = Planner {
            provider: caps.provider,
            caps,
            options,
            request,
            warnings: Vec::new(),
        };
        if request.prompt.trim().is_empty() {
            return Err(planner.error("prompt", "", "must not be empty or only whitespace"));
        }
        Ok(planner)
    }

    /// The request being planned.
    pub fn request(&self) -> &'a GenerationRequest {
        self.request
    }

    /// The provider.
    pub fn provider(&self) -> ProviderId {
        self.provider
    }

    /// How planning goes: its strictness, whether extra tasks are allowed.
    pub fn options(&self) -> PlanOptions {
        self.options
    }

    /// A problem with `setting`, an error at every strictness.
    pub fn error(&self, setting: &str, value: &str, problem: impl Into<String>) -> PlanError {
        PlanError {
            provider: self.provider,
            setting: setting.to_owned(),
            value: value.to_owned(),
            problem: problem.into(),
        }
    }

    /// A check of the provider's client (its wire request's validation) as a plan error.
    pub fn wire_error(&self, error: ValidationError) -> PlanError {
        PlanError {
            provider: self.provider,
            setting: error.field,
            value: String::new(),
            problem: error.problem,
        }
    }

    /// A setting the provider cannot honour: lenient, a warning (`problem; dropped`), and the
    /// caller drops the setting; otherwise an error.
    pub fn unsupported(
        &mut self,
        setting: &str,
        value: &str,
        problem: impl Into<String>,
        dropped: &str,
    ) -> Result<(), PlanError> {
        let problem = problem.into();
        if self.options.strictness != Strictness::Lenient {
            return Err(self.error(setting, value, problem));
        }
        self.note(setting, value, format!("{problem}; {dropped}"))
    }

    /// A warning the caller gets back with the plan — or, when planning is
    /// [`Strict`](Strictness::Strict), the error that refuses it.
    pub fn note(&mut self, setting: &str, value: &str, reason: String) -> Result<(), PlanError> {
        if self.options.strictness == Strictness::Strict {
            return Err(self.error(
                setting,
                value,
                format!("{reason}; refused because planning is strict"),
            ));
        }
        self.warnings.push(Warning {
            provider: self.provider,
            setting: setting.to_owned(),
            value: value.to_owned(),
            reason,
        });
        Ok(())
    }

    /// The model to use for `asked` (`None`: the provider's default) and what it can do: a
    /// model the provider does not know is sent unchecked where the provider serves other
    /// models (its capabilities then unknown, with a note; refused when strict), and refused
    /// otherwise, or replaced by the default when lenient.
    pub fn model(
        &mut self,
        asked: Option<String>,
    ) -> Result<(Option<String>, Option<&'a ModelCapabilities>), PlanError> {
        let caps = self.caps;
        let provider = self.provider;
        match &asked {
            None => Ok((caps.default_model.clone(), caps.model(None))),
            Some(name) => match caps.model(Some(name)) {
                Some(found) => Ok((Some(name.clone()), Some(found))),
                None if caps.other_models => {
                    self.note(
                        "model",
                        name,
                        format!(
                            "not a {provider} model imggen knows ({}); its settings are sent unchecked and its price is unknown",
                            caps.model_names().join(", ")
                        ),
                    )?;
                    Ok((Some(name.clone()), None))
                }
                None => {
                    let default = caps.default_model.clone();
                    let default_name = default.as_deref().unwrap_or("the default model");
                    self.unsupported(
                        "model",
                        name,
                        format!("allowed: {}", caps.model_names().join(", ")),
                        &format!("{default_name} is used"),
                    )?;
                    Ok((default, caps.model(None)))
                }
            },
        }
    }

    /// How many images each task makes: `n` split into tasks of at most the model's
    /// per-task maximum — several tasks, each charged, only when the caller allowed extra
    /// tasks; otherwise an error (strict) or the maximum (lenient).
    pub fn task_sizes(
        &mut self,
        model: Option<&ModelCapabilities>,
        label: &str,
    ) -> Result<Vec<u32>, PlanError> {
        let request = self.request;
        if request.n == 0 {
            return Err(self.error("n", "0", "must be at least 1"));
        }
        let per_task = model.map_or(1, |m| m.max_images_per_task).max(1);
        let mut n = request.n;
        if n > per_task && !self.options.allow_extra_tasks {
            let tasks = n.div_ceil(per_task);
            self.unsupported(
                "n",
                &n.to_string(),
                format!(
                    "{label} makes at most {per_task} image(s) per task, so {n} images need {tasks} tasks, each charged; allow extra tasks to pay for them"
                ),
                &format!("{per_task} image(s) will be made"),
            )?;
            n = per_task;
        }
        let mut sizes = Vec::new();
        let mut left = n;
        while left > 0 {
            let size = left.min(per_task);
            sizes.push(size);
            left -= size;
        }
        Ok(sizes)
    }

    /// The aspect ratio to send: one the model takes, or dropped (lenient) / refused (strict).
    /// A ratio written as `Other` is sent deliberately, unchecked.
    pub fn aspect_ratio(
        &mut self,
        model: Option<&ModelCapabilities>,
        label: &str,
    ) -> Result<Option<AspectRatio>, PlanError> {
        let ratio = self.request.aspect_ratio.clone();
        let (Some(asked), Some(caps)) = (&ratio, model) else {
            return Ok(ratio);
        };
        if !asked.is_known() || caps.aspect_ratios.contains(asked) {
            return Ok(ratio);
        }
        let default = match &caps.default_aspect_ratio {
            Some(default) => format!("the default {default} is used"),
            None => "the model chooses the ratio".to_owned(),
        };
        self.unsupported(
            "aspect_ratio",
            asked.as_str(),
            format!("{label} accepts {}", join(&caps.aspect_ratios)),
            &default,
        )?;
        Ok(None)
    }

    /// A value of a setting with a documented list (`quality`, `resolution`): kept when
    /// listed, sent as given for a model imggen does not know (`allowed` is `None`), else
    /// dropped (lenient) or refused (strict).
    pub fn choice(
        &mut self,
        setting: &str,
        value: Option<String>,
        allowed: Option<&[String]>,
        label: &str,
    ) -> Result<Option<String>, PlanError> {
        let (Some(value), Some(allowed)) = (value.clone(), allowed) else {
            return Ok(value);
        };
        if allowed.iter().any(|candidate| candidate == &value) {
            return Ok(Some(value));
        }
        let problem = if allowed.is_empty() {
            format!("{label} takes no {setting} setting")
        } else {
            format!("{label} accepts {}", allowed.join(", "))
        };
        self.unsupported(setting, &value, problem, "the provider's default is used")?;
        Ok(None)
    }

    /// A value of a setting each model lists (`quality`, `resolution`: `listed` reads the
    /// list from a model's capabilities), for `model` (`None`: a model imggen does not know,
    /// whose value is sent as given). As [`choice`](Self::choice), and a value `model` does
    /// not take names the provider's models that do take it — or, when none does, those that
    /// take the setting at all — so the caller knows which model to ask for.
    pub fn model_choice(
        &mut self,
        setting: &str,
        value: Option<String>,
        model: Option<&ModelCapabilities>,
        listed: fn(&ModelCapabilities) -> &[String],
        label: &str,
    ) -> Result<Option<String>, PlanError> {
        let (Some(asked), Some(current)) = (value.clone(), model) else {
            return Ok(value);
        };
        let allowed = listed(current);
        if allowed.iter().any(|candidate| candidate == &asked) {
            return Ok(Some(asked));
        }
        let provider = self.provider;
        let this = match &current.model {
            Some(_) => label.to_owned(),
            None => format!("{provider}'s default model"),
        };
        let mut problem = if allowed.is_empty() {
            format!("{this} takes no {setting} setting")
        } else {
            format!("{this} accepts {}", allowed.join(", "))
        };
        let others: Vec<&ModelCapabilities> = self
            .caps
            .models
            .iter()
            .filter(|other| other.model != current.model && !listed(other).is_empty())
            .collect();
        let describe = |other: &ModelCapabilities| {
            format!(
                "{} ({})",
                other.model.as_deref().unwrap_or("the default model"),
                listed(other).join(", ")
            )
        };
        let taking: Vec<&ModelCapabilities> = others
            .iter()
            .copied()
            .filter(|other| listed(other).iter().any(|candidate| candidate == &asked))
            .collect();
        match (&taking[..], &others[..]) {
            ([one], _) => problem.push_str(&format!(
                "; {} takes it: ask for model {}",
                describe(one),
                one.model.as_deref().unwrap_or("the default model")
            )),
            ([_, ..], _) => problem.push_str(&format!(
                "; {} take it: ask for one of these models",
                and_list(&taking.iter().map(|m| describe(m)).collect::<Vec<_>>())
            )),
            ([], []) => {}
            ([], others) => problem.push_str(&format!(
                "; no {provider} model takes {setting} {asked:?}; {} {} {setting} setting",
                and_list(&others.iter().map(|m| describe(m)).collect::<Vec<_>>()),
                if others.len() == 1 {
                    "takes a"
                } else {
                    "take a"
                }
            )),
        }
        self.unsupported(setting, &asked, problem, "the provider's default is used")?;
        Ok(None)
    }

    /// The request's references, each in a form the model takes: an error otherwise, in both
    /// modes (no degraded request would be the one asked for).
    pub fn references(&self, model: Option<&ModelCapabilities>) -> Result<(), PlanError> {
        let caps = model.map_or(
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
        let provider = self.provider;
        let references = &self.request.references;
        if references.len() > caps.max_count {
            return Err(self.error(
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
                return Err(self.error(
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

    /// The webhook URL to send: kept for a provider that calls webhooks, else dropped
    /// (lenient, with a note that imggen polls instead) or refused (strict).
    pub fn webhook(&mut self) -> Result<Option<String>, PlanError> {
        let webhook = self.request.webhook.clone();
        if let Some(url) = &webhook
            && !self.caps.webhooks
        {
            self.unsupported(
                "webhook",
                &url.clone(),
                format!("{} does not call webhooks", self.provider),
                "imggen polls for the result instead",
            )?;
            return Ok(None);
        }
        Ok(webhook)
    }

    /// The plan: one task per size, each a copy of `template` making that many images and
    /// priced at `per_image` each (`None`: the price is not known before the create).
    pub fn finish(self, template: PlannedTask, sizes: Vec<u32>, per_image: Option<Cost>) -> Plan {
        let model = template.model.clone();
        let tasks: Vec<PlannedTask> = sizes
            .into_iter()
            .map(|images| PlannedTask {
                images,
                price: per_image.and_then(|price| price.times(images)),
                ..template.clone()
            })
            .collect();
        let estimated_cost = tasks
            .iter()
            .try_fold(Cost::ZERO, |total, task| Some(total + task.price?));
        Plan {
            provider: self.provider,
            model,
            tasks,
            warnings: self.warnings,
            estimated_cost,
        }
    }
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// `a, b, c`.
pub fn join<T: fmt::Display>(values: &[T]) -> String {
    values
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
