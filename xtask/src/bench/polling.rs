//! Benchmark 2, polling efficiency: status requests per completed job and detection lag, for
//! imggen-core's schedule against fixed-interval polling, on runblob's realistic durations
//! run a hundred times faster.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use imggen_core::{
    GenerationRequest, Imggen, PollSchedule, SubmitOptions, WaitOptions, WebhookHub,
};
use imggen_mock::{DeliveryStatus, MockClock, MockConfig, Profile};

use super::harness::{
    MockHost, Summary, TimeWarp, WebhookReceiver, client_runtime, parse_timestamp, thousands,
};
use super::report::{Section, Table, Target, Verdict, fixed, ratio};

/// How much faster than real time the mock runs (and how much shorter every delay of the
/// pollers is): runblob's 1–3 minutes become 0.6–1.8 s.
pub const SPEEDUP: f64 = 100.0;
const KEY: &str = "sk-bench-polling-0001";
/// The seed of the mock's duration draws: every strategy gets the same durations.
pub const SEED: u64 = 20_260_501;

/// How a strategy polls.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Poller {
    /// imggen-core's `Imggen::wait` on this schedule.
    Schedule(PollSchedule),
    /// The seed docs' loop: read the status, return if done, sleep, again.
    Every(Duration),
    /// imggen-core's `Imggen::wait` on this schedule, with the task's `callback_url` pointing
    /// at a loopback receiver whose events the wait takes (`WaitOptions::events`).
    Webhooks(PollSchedule),
}

struct Strategy {
    name: &'static str,
    poller: Poller,
}

fn strategies() -> [Strategy; 4] {
    [
        Strategy {
            name: "imggen-core, runblob's default schedule (first poll at 60 s, then every 9 s ±10%)",
            poller: Poller::Schedule(
                imggen_core::imggen_runblob::POLL_SCHEDULE.scaled(1.0 / SPEEDUP),
            ),
        },
        Strategy {
            name: "imggen-core with runblob webhooks, the same default schedule (a callback \
                   expected: first poll at 60 s, then every 30 s ±10%)",
            poller: Poller::Webhooks(
                imggen_core::imggen_runblob::POLL_SCHEDULE.scaled(1.0 / SPEEDUP),
            ),
        },
        Strategy {
            name: "fixed, every 10 s (the seed docs' recipe)",
            poller: Poller::Every(Duration::from_secs(10).div_f64(SPEEDUP)),
        },
        Strategy {
            name: "fixed, every 1 s",
            poller: Poller::Every(Duration::from_secs(1).div_f64(SPEEDUP)),
        },
    ]
}

/// How much to run.
#[derive(Clone, Copy, Debug)]
struct Sizes {
    jobs: usize,
    /// Jobs in flight at once (a batch's `--concurrency`).
    concurrency: usize,
}

impl Sizes {
    fn new(quick: bool) -> Sizes {
        if quick {
            Sizes {
                jobs: 100,
                concurrency: 50,
            }
        } else {
            Sizes {
                jobs: 1_000,
                concurrency: 100,
            }
        }
    }
}

/// What one strategy measured.
#[derive(Clone, Debug)]
struct Outcome {
    jobs: usize,
    completed: usize,
    status_requests: u64,
    other_requests: u64,
    /// Callbacks the mock delivered (a receiver answered 2xx), for the webhook strategies.
    callbacks: u64,
    /// Detection lag of each completed job, in seconds of the provider's time base.
    lags: Vec<f64>,
    /// The mean time between two reads of one job, in the provider's seconds.
    interval: f64,
    wall: Duration,
}

impl Outcome {
    fn polls_per_job(&self) -> f64 {
        self.status_requests as f64 / self.completed.max(1) as f64
    }

    fn lag(&self) -> Option<Summary> {
        Summary::of(&self.lags)
    }

    fn requests_per_second(&self) -> f64 {
        self.status_requests as f64 / self.wall.as_secs_f64()
    }
}

/// One job's end: its task, when the poller returned it, and when each status read answered.
struct Finished {
    task_id: String,
    returned: Instant,
    reads: Vec<Instant>,
}

/// Where a webhook strategy's callbacks go: the receiver's URL, and the hub it feeds.
#[derive(Clone)]
struct Hooks {
    url: String,
    hub: WebhookHub,
}

async fn job(
    imggen: Imggen,
    poller: Poller,
    index: usize,
    slots: Arc<tokio::sync::Semaphore>,
    hooks: Option<Hooks>,
) -> Result<Finished, String> {
    let _slot = slots.acquire_owned().await.map_err(|err| err.to_string())?;
    let mut request = GenerationRequest::new(format!("Catalogue image {index}"));
    if let Some(hooks) = &hooks {
        request = request.webhook(hooks.url.clone());
    }
    let submission = imggen
        .submit(
            &request,
            &SubmitOptions::provider(imggen_core::imggen_runblob::provider::ID),
        )
        .await
        .map_err(|err| err.to_string())?;
    let handle = submission
        .handles
        .into_iter()
        .next()
        .ok_or("a submission without a handle")?;
    let reads = Arc::new(Mutex::new(Vec::new()));
    match poller {
        Poller::Schedule(_) | Poller::Webhooks(_) => {
            let seen = Arc::clone(&reads);
            let mut options = WaitOptions::new().on_status(move |_, _| {
                seen.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(Instant::now());
            });
            if let Some(hooks) = &hooks {
                options = options.events(hooks.hub.subscribe());
            }
            imggen
                .wait(&handle, options)
                .await
                .map_err(|err| err.to_string())?;
        }
        Poller::Every(interval) => loop {
            let status = imggen
                .status(&handle)
                .await
                .map_err(|err| err.to_string())?;
            reads
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Instant::now());
            if status.state.is_terminal() {
                break;
            }
            tokio::time::sleep(interval).await;
        },
    }
    let returned = Instant::now();
    let reads = std::mem::take(&mut *reads.lock().unwrap_or_else(PoisonError::into_inner));
    Ok(Finished {
        task_id: handle.task_id,
        returned,
        reads,
    })
}

/// The mean time between two status reads of the same job, in seconds: the interval a
/// strategy actually kept, which on a short time base can be longer than it asked for.
fn mean_interval(jobs: &[Finished]) -> f64 {
    let gaps: Vec<f64> = jobs
        .iter()
        .flat_map(|job| job.reads.windows(2).map(|w| (w[1] - w[0]).as_secs_f64()))
        .collect();
    if gaps.is_empty() {
        f64::NAN
    } else {
        gaps.iter().sum::<f64>() / gaps.len() as f64
    }
}

fn run_strategy(strategy: &Strategy, sizes: Sizes) -> Result<Outcome, String> {
    let clock = MockClock::manual();
    let host = MockHost::start(
        MockConfig::default()
            .profile(Profile::Realistic)
            .seed(SEED)
            .clock(clock.clone())
            .api_key(KEY),
    )?;
    let warp = TimeWarp::start(clock, SPEEDUP);
    let url = host.url();
    let receiver = match strategy.poller {
        Poller::Webhooks(_) => {
            let hub = WebhookHub::new();
            let runblob = imggen_core::imggen_runblob::provider::registration();
            let parser = (runblob.connect)(KEY, &url)?;
            let receiver = WebhookReceiver::start(hub.clone(), parser)?;
            let url = receiver.url().to_owned();
            Some((receiver, Hooks { url, hub }))
        }
        _ => None,
    };
    let hooks = receiver.as_ref().map(|(_, hooks)| hooks.clone());
    let runtime = client_runtime()?;
    let started = Instant::now();
    let finished = runtime.block_on(async {
        let client = imggen_core::imggen_runblob::Client::builder()
            .api_key(KEY)
            .base_url(&url)
            .build()
            .map_err(|err| err.to_string())?;
        let mut builder = Imggen::builder().provider(
            imggen_core::imggen_runblob::provider::RunblobProvider::new(client),
        );
        if let Poller::Schedule(schedule) | Poller::Webhooks(schedule) = strategy.poller {
            builder = builder.poll_schedule(imggen_core::imggen_runblob::provider::ID, schedule);
        }
        let imggen = builder.build().map_err(|err| err.to_string())?;
        let slots = Arc::new(tokio::sync::Semaphore::new(sizes.concurrency));
        let mut jobs = tokio::task::JoinSet::new();
        for index in 0..sizes.jobs {
            jobs.spawn(job(
                imggen.clone(),
                strategy.poller,
                index,
                Arc::clone(&slots),
                hooks.clone(),
            ));
        }
        let mut finished = Vec::with_capacity(sizes.jobs);
        let mut errors = Vec::new();
        while let Some(result) = jobs.join_next().await {
            match result {
                Ok(Ok(done)) => finished.push(done),
                Ok(Err(error)) => errors.push(error),
                Err(error) => errors.push(error.to_string()),
            }
        }
        if let Some(error) = errors.first() {
            return Err(format!("{} jobs failed, the first: {error}", errors.len()));
        }
        Ok(finished)
    })?;
    let wall = started.elapsed();
    drop(runtime);
    drop(receiver);
    let callbacks = host
        .server()
        .webhooks()
        .iter()
        .filter(|delivery| delivery.status == DeliveryStatus::Delivered)
        .count() as u64;
    let done_at: HashMap<String, String> = host
        .server()
        .tasks()
        .into_iter()
        .map(|task| (task.id, task.finishes_at))
        .collect();
    let stats = host.server().requests();
    let mut lags = Vec::with_capacity(finished.len());
    for job in &finished {
        let finishes_at = done_at
            .get(&job.task_id)
            .ok_or_else(|| format!("the mock does not know task {}", job.task_id))?;
        let done = warp.real_instant_of(parse_timestamp(finishes_at)?);
        // Back on the provider's time base: a real millisecond is SPEEDUP of its.
        let lag = if job.returned >= done {
            (job.returned - done).as_secs_f64()
        } else {
            -(done - job.returned).as_secs_f64()
        };
        lags.push(lag * SPEEDUP);
    }
    drop(warp);
    drop(host);
    // runblob answers a create 201 and a status 200; anything else is counted apart.
    let status_requests = stats.with_status(200);
    Ok(Outcome {
        jobs: sizes.jobs,
        completed: finished.len(),
        status_requests,
        other_requests: stats.total - status_requests - stats.with_status(201),
        callbacks,
        lags,
        interval: mean_interval(&finished) * SPEEDUP,
        wall,
    })
}

/// Runs the benchmark.
pub fn run(quick: bool) -> Result<Section, String> {
    let sizes = Sizes::new(quick);
    let mut outcomes = Vec::new();
    for strategy in strategies() {
        let outcome = run_strategy(&strategy, sizes)?;
        let lag = outcome.lag();
        eprintln!(
            "    {:<45.45} {:>6.2} polls/job, mean lag {:>5.2} s, {:.1} s",
            strategy.name,
            outcome.polls_per_job(),
            lag.map_or(f64::NAN, |l| l.mean),
            outcome.wall.as_secs_f64()
        );
        outcomes.push((strategy, outcome));
    }
    Ok(section(&outcomes, sizes))
}

fn section(outcomes: &[(Strategy, Outcome)], sizes: Sizes) -> Section {
    let recipe = outcomes
        .iter()
        .find(|(s, _)| s.poller == Poller::Every(Duration::from_secs(10).div_f64(SPEEDUP)))
        .map(|(_, o)| o);
    let ours = outcomes
        .iter()
        .find(|(s, _)| matches!(s.poller, Poller::Schedule(_)))
        .map(|(_, o)| o);
    let mut table = Table::new(&[
        "strategy",
        "jobs done",
        "status requests / job",
        "vs 10 s recipe",
        "interval kept",
        "lag mean",
        "lag p50",
        "lag p95",
        "wall (real)",
        "status requests/s (real)",
    ])
    .caption(
        "Intervals and lags are in the provider's time (the lag's mean with its 95% confidence \
         interval); wall time and request rates are real. \"Interval kept\" is the mean time \
         between two status reads of one job.",
    );
    let mut notes = Vec::new();
    for (strategy, outcome) in outcomes {
        let lag = outcome.lag();
        let seconds = |f: fn(&Summary) -> f64| {
            lag.as_ref()
                .map_or("n/a".into(), |l| format!("{:.2} s", f(l)))
        };
        table.row(vec![
            strategy.name.into(),
            format!("{} / {}", outcome.completed, outcome.jobs),
            fixed(outcome.polls_per_job(), 2),
            recipe.map_or("n/a".into(), |r| {
                ratio(outcome.polls_per_job(), r.polls_per_job())
            }),
            format!("{} s", fixed(outcome.interval, 2)),
            lag.as_ref().map_or("n/a".into(), |l| {
                format!("{:.2} s ± {:.2}", l.mean, 1.96 * l.std_error)
            }),
            seconds(|l| l.p50),
            seconds(|l| l.p95),
            format!("{:.1} s", outcome.wall.as_secs_f64()),
            thousands(outcome.requests_per_second().round() as u64),
        ]);
        if let Poller::Every(interval) = strategy.poller {
            let asked = interval.as_secs_f64() * SPEEDUP;
            if outcome.interval > asked * 1.1 {
                notes.push(format!(
                    "\"{}\" kept an interval of {:.2} s rather than {asked:.0} s: on this time base \
                     its sleep is {:.0} ms of real time, to which the round trip and Tokio's \
                     millisecond timer add a share they do not add to a real {asked:.0} s. Its requests and \
                     lag are those of polling every {:.2} s.",
                    strategy.name,
                    outcome.interval,
                    interval.as_secs_f64() * 1000.0,
                    outcome.interval
                ));
            }
        }
        if outcome.other_requests > 0 {
            notes.push(format!(
                "**{} requests of \"{}\" were neither a create nor a successful status read** \
                 (errors): they are not in its status requests.",
                outcome.other_requests, strategy.name
            ));
        }
    }
    let mut targets = Vec::new();
    let compared = ours
        .zip(recipe)
        .and_then(|(ours, recipe)| Some((ours, recipe, ours.lag()?, recipe.lag()?)));
    if let Some((ours, recipe, our_lag, recipe_lag)) = compared {
        // How far apart two means this noisy can land by chance alone (95%).
        let noise = 1.96 * our_lag.std_error.hypot(recipe_lag.std_error);
        let (our_lag, recipe_lag) = (our_lag.mean, recipe_lag.mean);
        let lag_met = our_lag <= recipe_lag;
        let share = ours.polls_per_job() / recipe.polls_per_job();
        let requests_met = share <= 1.0 / 3.0;
        targets.push(Target {
            goal: "mean lag no worse than the 10 s recipe's".into(),
            measured: format!("{our_lag:.2} s vs {recipe_lag:.2} s"),
            verdict: Verdict::from_bool(lag_met),
        });
        targets.push(Target {
            goal: "at most a third of the 10 s recipe's status requests".into(),
            measured: format!(
                "{:.2} vs {:.2} per job ({share:.2}×)",
                ours.polls_per_job(),
                recipe.polls_per_job()
            ),
            verdict: Verdict::from_bool(requests_met),
        });
        if !requests_met {
            notes.push(unreachable_by_polling(
                recipe.polls_per_job(),
                recipe_lag,
                ours.polls_per_job(),
            ));
        }
        if lag_met && recipe_lag - our_lag <= noise {
            notes.push(format!(
                "The mean-lag target is met, but by less than chance alone moves two runs of \
                 this size apart ({:.2} s against ±{noise:.2} s at 95%): the two lags are equal \
                 within this run's precision (intervals kept: {:.2} s and {:.2} s).",
                recipe_lag - our_lag,
                ours.interval,
                recipe.interval
            ));
        }
        if !lag_met {
            let verdict = if our_lag - recipe_lag <= noise {
                format!(
                    "the difference ({:.2} s) is within what chance alone gives between two runs \
                     of this size (±{noise:.2} s at 95%)",
                    our_lag - recipe_lag
                )
            } else {
                format!(
                    "the difference ({:.2} s) is larger than chance alone gives between two runs \
                     of this size (±{noise:.2} s at 95%)",
                    our_lag - recipe_lag
                )
            };
            notes.push(format!(
                "The mean-lag target is missed: {verdict}. imggen-core kept a mean interval \
                 of {:.2} s against the recipe's {:.2} s, jittered ±10% so that jobs submitted \
                 together do not poll together (which lengthens the mean wait a little); a \
                 shorter interval would trade requests for lag.",
                ours.interval, recipe.interval
            ));
        }
        let hooked: Vec<&(Strategy, Outcome)> = outcomes
            .iter()
            .filter(|(strategy, _)| matches!(strategy.poller, Poller::Webhooks(_)))
            .collect();
        for (_, outcome) in &hooked {
            let Some(lag) = outcome.lag() else { continue };
            let share = outcome.polls_per_job() / recipe.polls_per_job();
            targets.push(Target {
                goal: "with runblob webhooks: mean lag no worse than the 10 s recipe's".into(),
                measured: format!("{:.2} s vs {recipe_lag:.2} s", lag.mean),
                verdict: Verdict::from_bool(lag.mean <= recipe_lag),
            });
            targets.push(Target {
                goal: "with runblob webhooks: at most a third of the 10 s recipe's status \
                       requests"
                    .into(),
                measured: format!(
                    "{:.2} vs {:.2} per job ({share:.2}×)",
                    outcome.polls_per_job(),
                    recipe.polls_per_job()
                ),
                verdict: Verdict::from_bool(share <= 1.0 / 3.0),
            });
        }
        if !hooked.is_empty() {
            notes.push(with_webhooks(&hooked));
        }
    }
    Section {
        number: 2,
        title: "Polling efficiency".into(),
        method: format!(
            "{jobs} runblob jobs with the mock's realistic durations — uniformly 60–180 s, \
             seeded, the same draws for every strategy — on a mock clock running {speedup:.0} \
             times faster than the real one, with every delay of every poller divided by the \
             same {speedup:.0} (`PollSchedule::scaled(0.01)`): the jobs take 0.6–1.8 s of real \
             time and are reported back on the provider's time base. runblob was chosen \
             because the seed docs' recipe (its Python client, polling every 10 s) is \
             runblob's. Every strategy submits through imggen-core and reads statuses through \
             it (the fixed-interval ones with `Imggen::status` in the recipe's loop: read, \
             return if done, sleep; the others with `Imggen::wait`, the webhook ones also \
             taking runblob's callbacks, as described under the table), {concurrency} jobs in \
             flight at a time (a batch's \
             concurrency; it keeps the every-1 s strategy's request rate within what this \
             machine serves without queueing). Status requests are counted by the mock. \
             Detection lag runs from the moment the mock's task times say a task finished to \
             the moment the poller returned it; the mock's clock moves in steps of {tick} µs \
             of real time, so a finish is seen at most {step:.0} ms (provider time) late, \
             alike for every strategy.",
            jobs = thousands(sizes.jobs as u64),
            speedup = SPEEDUP,
            concurrency = sizes.concurrency,
            tick = TimeWarp::TICK.as_micros(),
            step = TimeWarp::TICK.as_secs_f64() * SPEEDUP * 1000.0,
        ),
        tables: vec![table],
        targets,
        notes,
    }
}

/// Why no polling schedule reaches a third of the recipe's requests at the recipe's lag, with
/// this run's figures.
fn unreachable_by_polling(recipe_requests: f64, recipe_lag: f64, ours: f64) -> String {
    // Durations uniform over 60–180 s: no task ends before 60 s, and its end is equally likely
    // anywhere in the 120 s after, so evenly spaced polls from 60 s are the best a schedule
    // can do. Every `g` seconds, a job is found on average g/2 after it ends, and takes the
    // poll at 60 s, the one that finds it, and on average 60/g - 1/2 in between (it ends 60 s
    // after the first poll on average): 1.5 + 60/g requests.
    let requests = |gap: f64| 1.5 + 60.0 / gap;
    let gap_for_lag = 2.0 * recipe_lag;
    let third = recipe_requests / 3.0;
    let gap_for_third = 60.0 / (third - 1.5);
    format!(
        "**Why no polling schedule meets the request target.** runblob's tasks take anywhere \
         from 60 to 180 s, uniformly. None ends before 60 s, so no poll is needed before then \
         (which is where the default schedule's saving comes from: {recipe_requests:.2} → \
         {ours:.2} per job), and after 60 s a task's end is equally likely anywhere in the next \
         120 s, so polls evenly spaced from 60 s are the best any schedule can do. Polling every \
         g seconds finds a task g/2 after it ends on average, and costs the poll at 60 s, the \
         poll that finds it and, the task ending 60 s after the first poll on average, \
         60/g − 1/2 polls in between: about 1.5 + 60/g requests per job. Matching the recipe's mean lag of \
         {recipe_lag:.2} s needs g ≤ {gap_for_lag:.2} s, that is at least {:.1} requests per \
         job ({:.2}× the recipe's); a third of the recipe's requests (≤ {third:.2}) needs \
         g ≥ {gap_for_third:.1} s, a mean lag of {:.1} s. The two targets cannot both be met by \
         polling; they can with runblob's callbacks, measured in the rows with webhooks.",
        requests(gap_for_lag),
        requests(gap_for_lag) / recipe_requests,
        gap_for_third / 2.0,
    )
}

/// What the webhook rows show.
fn with_webhooks(hooked: &[&(Strategy, Outcome)]) -> String {
    let callbacks: Vec<String> = hooked
        .iter()
        .map(|(_, outcome)| {
            format!(
                "{} callbacks for {} jobs",
                thousands(outcome.callbacks),
                thousands(outcome.completed as u64)
            )
        })
        .collect();
    format!(
        "**With webhooks.** Each task is created with a `callback_url` pointing at a receiver \
         on 127.0.0.1 in this process, which hands each body to \
         `WebhookHub::receive`; every wait takes the hub's events \
         (`WaitOptions::events`). The mock POSTs a task's status object the moment its clock \
         says the task ended (delivered: {}). An event is a hint: the wait confirms it with \
         exactly one status GET and returns that answer, so the lag is the callback's delivery \
         and one round trip. The wait still polls meanwhile, because a callback can be lost; \
         but the job's handle says it was created with a `callback_url` (`TaskHandle::webhook`), \
         and a wait that takes events on such a job polls on the schedule's \
         `webhook_interval` — 30 s for runblob, its redelivery interval, so a lost callback is \
         found no later than runblob's next attempt would bring it — instead of every 9 s. \
         That costs what polling every 30 s from 60 s costs, 1.5 + 60/30, the confirmation \
         taking the place of the poll that would have found the task: about 3.5 requests per \
         job. Real time is stretched on this time base (a real millisecond is a tenth of a \
         provider second), so the lags with webhooks are upper bounds.",
        callbacks.join(" and ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(polls_per_job: u64, lags: &[f64], interval: f64) -> Outcome {
        Outcome {
            jobs: 10,
            completed: 10,
            status_requests: polls_per_job * 10,
            other_requests: 0,
            callbacks: 0,
            lags: lags.iter().copied().cycle().take(10).collect(),
            interval,
            wall: Duration::from_secs(10),
        }
    }

    fn run(ours: Outcome, recipe: Outcome, every_second: Outcome) -> Section {
        let [schedule, _, ten, one] = strategies();
        section(
            &[(schedule, ours), (ten, recipe), (one, every_second)],
            Sizes::new(true),
        )
    }

    #[test]
    fn the_targets_compare_the_schedule_with_the_ten_second_recipe() {
        let section = run(
            outcome(4, &[4.0, 6.0], 10.0),
            outcome(13, &[5.0, 6.0], 10.0),
            outcome(100, &[0.5], 1.0),
        );
        assert_eq!(section.targets.len(), 2);
        assert_eq!(section.targets[0].verdict, Verdict::Met);
        assert_eq!(section.targets[0].measured, "5.00 s vs 5.50 s");
        assert_eq!(section.targets[1].verdict, Verdict::Met);
        assert_eq!(section.targets[1].measured, "4.00 vs 13.00 per job (0.31×)");
        // Ten jobs cannot tell 5.0 s from 5.5 s apart: the note says the lags are equal.
        assert_eq!(section.notes.len(), 1, "{:?}", section.notes);
        assert!(section.notes[0].contains("met, but by less than chance"));
    }

    #[test]
    fn a_clear_win_needs_no_note() {
        let section = run(
            outcome(4, &[2.0], 10.0),
            outcome(13, &[5.0], 10.0),
            outcome(100, &[0.5], 1.0),
        );
        assert_eq!(section.targets[0].verdict, Verdict::Met);
        assert!(section.notes.is_empty(), "{:?}", section.notes);
    }

    #[test]
    fn a_missed_target_and_a_stretched_interval_are_explained() {
        let section = run(
            outcome(8, &[6.0], 10.0),
            outcome(13, &[5.0], 10.0),
            outcome(97, &[0.7], 1.26),
        );
        assert_eq!(section.targets[0].verdict, Verdict::Missed);
        assert_eq!(section.targets[1].verdict, Verdict::Missed);
        let notes = section.notes.join("\n");
        assert!(
            notes.contains("kept an interval of 1.26 s rather than 1 s"),
            "{notes}"
        );
        assert!(
            notes.contains("Why no polling schedule meets the request target"),
            "{notes}"
        );
        assert!(notes.contains("The mean-lag target is missed"), "{notes}");
    }

    #[test]
    fn the_arithmetic_says_why_polling_cannot_meet_both_targets() {
        // The figures of the run the argument was first made with.
        let note = unreachable_by_polling(13.40, 5.18, 7.54);
        assert!(note.contains("g ≤ 10.36 s"), "{note}");
        assert!(
            note.contains("at least 7.3 requests per job (0.54×"),
            "{note}"
        );
        assert!(
            note.contains("(≤ 4.47) needs g ≥ 20.2 s, a mean lag of 10.1 s"),
            "{note}"
        );
    }

    #[test]
    fn webhook_rows_are_judged_apart_from_polling() {
        let [schedule, webhooks, ten, one] = strategies();
        let hooked = |polls, lag| Outcome {
            callbacks: 10,
            ..outcome(polls, &[lag], 10.0)
        };
        let section = section(
            &[
                (schedule, outcome(8, &[5.0], 10.0)),
                (webhooks, hooked(4, 0.1)),
                (ten, outcome(13, &[5.0], 10.0)),
                (one, outcome(100, &[0.5], 1.0)),
            ],
            Sizes::new(true),
        );
        let verdicts: Vec<(&str, &Verdict)> = section
            .targets
            .iter()
            .map(|target| (target.goal.as_str(), &target.verdict))
            .collect();
        assert_eq!(verdicts.len(), 4, "{verdicts:?}");
        // Polling alone keeps its own verdicts.
        assert_eq!(verdicts[1].1, &Verdict::Missed);
        assert!(verdicts[2].0.starts_with("with runblob webhooks: mean lag"));
        assert_eq!(verdicts[2].1, &Verdict::Met);
        assert!(
            verdicts[3]
                .0
                .starts_with("with runblob webhooks: at most a third")
        );
        assert_eq!(verdicts[3].1, &Verdict::Met);
        let notes = section.notes.join("\n");
        assert!(
            notes.contains("(delivered: 10 callbacks for 10 jobs)"),
            "{notes}"
        );
    }

    #[test]
    fn reads_of_one_job_give_the_interval_it_kept() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let jobs = [
            Finished {
                task_id: "a".into(),
                returned: at(300),
                reads: vec![at(0), at(100), at(300)],
            },
            Finished {
                task_id: "b".into(),
                returned: at(50),
                reads: vec![at(50)],
            },
        ];
        assert!((mean_interval(&jobs) - 0.15).abs() < 1e-9);
        assert!(mean_interval(&jobs[1..]).is_nan());
    }
}
