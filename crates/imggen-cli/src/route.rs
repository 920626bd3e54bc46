//! Which providers a command uses and how it reaches them: the route from `--provider` and
//! `--fallback` (or the default order, imggen-core's), and an [`Imggen`] over the real APIs
//! or over the in-process emulator. Every provider comes from imggen-core's registry: none
//! is named here.

use std::time::Duration;

use imggen_core::{Imggen, ProviderId, Registration, Strictness};
use imggen_mock::{MockConfig, MockServer, Profile};

use crate::args::ProviderChoice;
use crate::context::chain;
use crate::exit::{Category, Failure};

/// The key the in-process emulator accepts. Not a secret: the emulator is local and free.
pub(crate) const EMULATOR_KEY: &str = "sk-imggen-local-emulator";

/// How often the in-process emulator is polled: its tasks take 1–2 s.
const EMULATOR_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Which providers a request goes to, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    pub choices: Vec<ProviderChoice>,
    /// No key is set and no provider was named: the emulator was picked for the user.
    pub implicit: bool,
}

impl Route {
    /// `--provider`, then `--fallback`; with neither, the first provider of the default
    /// order whose key is set, else the emulator.
    pub fn resolve(
        provider: Option<ProviderChoice>,
        fallback: &[ProviderChoice],
        key_set: impl Fn(ProviderId) -> bool,
    ) -> Result<Route, Failure> {
        let mut choices: Vec<ProviderChoice> = Vec::new();
        let mut implicit = false;
        match provider {
            Some(first) => choices.push(first),
            None if fallback.is_empty() => {
                let keyed = imggen_core::builtin::registrations()
                    .into_iter()
                    .map(|registration| registration.id)
                    .find(|id| key_set(*id));
                match keyed {
                    Some(id) => choices.push(ProviderChoice::Api(id)),
                    None => {
                        choices.push(ProviderChoice::Mock);
                        implicit = true;
                    }
                }
            }
            None => {}
        }
        for choice in fallback {
            if !choices.contains(choice) {
                choices.push(*choice);
            }
        }
        if choices.len() > 1 && choices.contains(&ProviderChoice::Mock) {
            let speaks = crate::args::emulated_protocol();
            return Err(Failure::usage(format!(
                "mock cannot be combined with other providers: it is the in-process emulator of {speaks}"
            ))
            .hint(format!(
                "use --provider mock alone, or run `imggen mock` and point {} at it",
                base_url_env(speaks)
            )));
        }
        Ok(Route { choices, implicit })
    }

    /// Whether the request goes to the in-process emulator.
    pub fn emulated(&self) -> bool {
        self.choices == [ProviderChoice::Mock]
    }

    /// The APIs, in order.
    pub fn ids(&self) -> Vec<ProviderId> {
        self.choices
            .iter()
            .map(|choice| choice.protocol())
            .collect()
    }

    /// The first provider's name (`mock` for the emulator), for output before anything ran.
    pub fn first_label(&self) -> String {
        self.choices
            .first()
            .map_or_else(String::new, |choice| choice.as_str().to_owned())
    }
}

/// The built-in provider `id`'s registration.
fn registration(id: ProviderId) -> Option<Registration> {
    imggen_core::builtin::registration(id)
}

/// Whether a provider's API key variable is set (and not blank).
pub(crate) fn key_set(provider: ProviderId) -> bool {
    registration(provider).is_some_and(|registration| registration.key_set())
}

/// The variable that overrides a provider's base URL.
pub(crate) fn base_url_env(provider: ProviderId) -> &'static str {
    registration(provider).map_or("", |registration| registration.base_url_env)
}

/// How the command line tunes imggen-core, whichever providers it reaches.
#[derive(Clone, Debug, Default)]
pub(crate) struct Tuning {
    /// `--poll-interval`: every provider's schedule polls this often.
    pub poll_interval: Option<Duration>,
    /// `--allow-extra-tasks`.
    pub allow_extra_tasks: bool,
    /// `--strict`. Without it, a setting a provider cannot honour is still refused: the user
    /// typed each one, and a degraded request would still be charged.
    pub strict: bool,
    /// Where every process on a key shares its request budget (a batch journaled in
    /// PostgreSQL shares it there too).
    pub shared_budget: Option<std::sync::Arc<dyn imggen_core::SharedBudget>>,
}

impl Tuning {
    fn builder(&self) -> imggen_core::ImggenBuilder {
        let strictness = if self.strict {
            Strictness::Strict
        } else {
            Strictness::Exact
        };
        let builder = Imggen::builder()
            .strictness(strictness)
            .allow_extra_tasks(self.allow_extra_tasks);
        match &self.shared_budget {
            Some(budget) => builder.shared_budget(std::sync::Arc::clone(budget)),
            None => builder,
        }
    }

    fn add(
        &self,
        builder: imggen_core::ImggenBuilder,
        provider: std::sync::Arc<dyn imggen_core::Provider>,
        default_interval: Option<Duration>,
    ) -> imggen_core::ImggenBuilder {
        let id = provider.id();
        let schedule = provider.poll_schedule();
        let builder = builder.provider_arc(provider);
        match self.poll_interval.or(default_interval) {
            Some(interval) => builder.poll_schedule(id, schedule.every(interval)),
            None => builder,
        }
    }
}

/// imggen-core over the real APIs of `providers`, each configured from its environment
/// variables.
pub(crate) fn connect_real(providers: &[ProviderId], tuning: Tuning) -> Result<Imggen, Failure> {
    let mut builder = tuning.builder();
    for provider in providers.iter().copied() {
        let Some(registration) = registration(provider) else {
            return Err(
                Failure::usage(format!("{provider} is not a provider this imggen knows"))
                    .provider(provider.to_string())
                    .hint("`imggen providers` lists the providers"),
            );
        };
        if !registration.key_set() {
            return Err(Failure::usage(format!(
                "{provider}: no API key: set {}",
                registration.api_key_env
            ))
            .provider(provider.to_string())
            .hint("with no key set and no --provider, imggen runs its built-in emulator (offline, free)"));
        }
        let built = (registration.from_env)()
            .map_err(|message| Failure::usage(message).provider(provider.to_string()))?;
        builder = tuning.add(builder, built, None);
    }
    builder
        .build()
        .map_err(|error| Failure::from_core(&error, false))
}

/// imggen-core over the in-process emulator, through the real clients of `providers` (the
/// emulator speaks every built-in protocol on one port).
pub(crate) fn connect_emulator(
    emulator: &MockServer,
    providers: &[ProviderId],
    tuning: Tuning,
) -> Result<Imggen, Failure> {
    let mut builder = tuning.builder();
    for provider in providers.iter().copied() {
        let Some(registration) = registration(provider) else {
            continue;
        };
        let built = (registration.connect)(EMULATOR_KEY, emulator.url())
            .map_err(|message| Failure::new(Category::Other, message))?;
        builder = tuning.add(builder, built, Some(EMULATOR_POLL_INTERVAL));
    }
    builder
        .build()
        .map_err(|error| Failure::from_core(&error, true))
}

/// Every built-in provider, in the default order.
pub(crate) fn every_provider() -> Vec<ProviderId> {
    imggen_core::builtin::registrations()
        .into_iter()
        .map(|registration| registration.id)
        .collect()
}

/// The emulator, started in this process on 127.0.0.1: fast tasks, one fixed key.
pub(crate) async fn start_emulator() -> Result<MockServer, Failure> {
    let config = MockConfig::default()
        .profile(Profile::Fast)
        .api_key(EMULATOR_KEY);
    MockServer::start(config).await.map_err(|error| {
        Failure::new(
            Category::Other,
            format!("could not start the built-in emulator: {}", chain(&error)),
        )
    })
}

/// The one line that says the emulator is used, and why; `speaks` says which protocols.
pub(crate) fn emulator_notice(route: &Route, speaks: &str) -> String {
    let why = if route.implicit {
        "no API key is set, so"
    } else {
        "--provider mock:"
    };
    let variables: Vec<&str> = imggen_core::builtin::registrations()
        .iter()
        .map(|registration| registration.api_key_env)
        .collect();
    format!(
        "{why} this run uses the built-in emulator (imggen-mock in-process, {speaks}; offline, free, placeholder images); set {} for real images",
        or_list(&variables)
    )
}

/// `a, b or c`.
fn or_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GPTIMG: ProviderId = ProviderId::new("gptimg");
    const RUNBLOB: ProviderId = ProviderId::new("runblob");
    const RUNBASE: ProviderId = ProviderId::new("runbase");

    #[test]
    fn the_default_provider_is_the_first_with_a_key_else_the_emulator() {
        let none = Route::resolve(None, &[], |_| false).unwrap();
        assert_eq!(none.choices, [ProviderChoice::Mock]);
        assert!(none.implicit && none.emulated());

        let runbase_only = Route::resolve(None, &[], |id| id == RUNBASE).unwrap();
        assert_eq!(runbase_only.choices, [ProviderChoice::Api(RUNBASE)]);
        // The default order is imggen-core's: gptimg first.
        let all = Route::resolve(None, &[], |_| true).unwrap();
        assert_eq!(all.choices, [ProviderChoice::Api(GPTIMG)]);
        assert!(!all.implicit);
    }

    #[test]
    fn fallback_follows_the_provider_and_never_mixes_in_the_emulator() {
        let route = Route::resolve(
            Some(ProviderChoice::Api(RUNBLOB)),
            &[ProviderChoice::Api(RUNBASE), ProviderChoice::Api(RUNBLOB)],
            |_| true,
        )
        .unwrap();
        assert_eq!(route.ids(), [RUNBLOB, RUNBASE]);
        let alone = Route::resolve(
            None,
            &[ProviderChoice::Api(RUNBASE), ProviderChoice::Api(GPTIMG)],
            |_| false,
        )
        .unwrap();
        assert_eq!(alone.ids(), [RUNBASE, GPTIMG]);
        let mixed = Route::resolve(
            Some(ProviderChoice::Mock),
            &[ProviderChoice::Api(GPTIMG)],
            |_| true,
        )
        .unwrap_err();
        assert_eq!(mixed.category, Category::Invalid);
        assert!(
            mixed.message.contains("mock cannot be combined"),
            "{}",
            mixed.message
        );
        assert!(mixed.hint.unwrap().contains("GPTIMG_BASE_URL"));
    }

    #[test]
    fn the_emulator_notice_names_every_key_variable() {
        let route = Route::resolve(None, &[], |_| false).unwrap();
        assert!(
            emulator_notice(&route, "x").ends_with(
                "set GPTIMG_API_KEY, RUNBLOB_API_KEY or RUNBASE_API_KEY for real images"
            )
        );
    }
}
