//! What a person paying per image sees: prices before paying (`--dry-run`), a spending cap
//! (`--max-cost`), and what a paid command cost.

use imggen_mock::{EntryKind, Provider};

use crate::{Env, assert_code, batch_json, instant, quote_json, stderr, stdout};

/// Charges the emulator's ledger holds for `provider`.
fn charges(env: &Env, provider: Provider) -> usize {
    env.server
        .ledger()
        .iter()
        .filter(|entry| entry.provider == provider && entry.kind == EntryKind::Charge)
        .count()
}

fn batch_file(env: &Env, lines: usize) -> String {
    let text: String = (1..=lines)
        .map(|i| format!("{{\"id\": \"lamp-{i}\", \"prompt\": \"A lamp, variant {i}\"}}\n"))
        .collect();
    std::fs::write(env.dir.path().join("lamps.jsonl"), text).unwrap();
    "lamps.jsonl".to_owned()
}

#[tokio::test]
async fn generate_dry_run_prices_every_task_and_sends_nothing() {
    let env = Env::start(instant()).await;
    let output = env
        .run(&[
            "generate",
            "a lamp",
            "--provider",
            "runbase",
            "-n",
            "3",
            "--allow-extra-tasks",
            "--dry-run",
        ])
        .await;
    assert_code(&output, 0);
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "runbase  openai/gpt-image-2  task 1 of 3: 1 image  $0.05",
            "runbase  openai/gpt-image-2  task 2 of 3: 1 image  $0.05",
            "runbase  openai/gpt-image-2  task 3 of 3: 1 image  $0.05",
            "total: 3 tasks · 3 images · $0.15",
        ]
    );
    assert!(
        stderr(&output).contains("dry run: nothing was sent"),
        "{}",
        stderr(&output)
    );
    assert_eq!(env.requests(), 0, "nothing reached the provider");
    assert!(!env.out_dir().exists(), "no folder left behind");
}

#[tokio::test]
async fn dry_runs_as_json_match_their_schema_and_count_credits_and_unpriced_tasks() {
    let env = Env::start(instant()).await;
    let gptimg = env
        .run(&[
            "submit",
            "a lamp",
            "--provider",
            "gptimg",
            "-n",
            "6",
            "--allow-extra-tasks",
            "--dry-run",
            "--json",
        ])
        .await;
    assert_code(&gptimg, 0);
    let quote = quote_json(&gptimg);
    assert_eq!(quote["dry_run"], true);
    assert_eq!(quote["tasks"], 2, "gptimg makes up to 4 images a task");
    assert_eq!(quote["images"], 6);
    assert_eq!(quote["total"]["credits"], 12);
    assert_eq!(quote["requests"][0]["tasks"][0]["images"], 4);
    assert_eq!(quote["requests"][0]["tasks"][0]["price"]["credits"], 8);

    let runblob = env
        .run(&[
            "submit",
            "a lamp",
            "--provider",
            "runblob",
            "--dry-run",
            "--json",
        ])
        .await;
    assert_code(&runblob, 0);
    let quote = quote_json(&runblob);
    assert_eq!(
        quote["unpriced_tasks"], 1,
        "runblob prices a task in its answer"
    );
    assert_eq!(
        quote["requests"][0]["tasks"][0]["price"],
        serde_json::Value::Null
    );
    assert_eq!(env.requests(), 0);
}

#[tokio::test]
async fn batch_dry_run_lists_each_line_and_the_total_without_touching_the_journal() {
    let env = Env::start(instant()).await;
    let file = batch_file(&env, 3);
    let output = env
        .run(&["batch", &file, "--provider", "runbase", "--dry-run"])
        .await;
    assert_code(&output, 0);
    let text = stdout(&output);
    assert!(
        text.starts_with(
            "line 1 (lamp-1)  runbase  openai/gpt-image-2  task 1 of 1: 1 image  $0.05\n"
        ),
        "{text}"
    );
    assert!(
        text.ends_with("total: 3 tasks · 3 images · $0.15\n"),
        "{text}"
    );
    assert_eq!(env.requests(), 0);
    assert!(!env.out_dir().join("imggen-journal.sqlite").exists());

    let json = env
        .run(&[
            "batch",
            &file,
            "--provider",
            "runbase",
            "--dry-run",
            "--json",
        ])
        .await;
    assert_code(&json, 0);
    let quote = quote_json(&json);
    assert_eq!(quote["requests"].as_array().unwrap().len(), 3);
    assert_eq!(quote["requests"][2]["id"], "lamp-3");
    assert_eq!(quote["total"]["usd"], "0.15");
    assert_eq!(env.requests(), 0);
}

#[tokio::test]
async fn a_batch_stops_at_its_cap_saves_what_was_paid_and_exits_7() {
    let env = Env::start(instant()).await;
    let file = batch_file(&env, 10);
    let output = env
        .run(&[
            "batch",
            &file,
            "--provider",
            "runbase",
            "--concurrency",
            "4",
            "--max-cost",
            "$0.23",
            "--poll-interval",
            "0.05",
            "--json",
        ])
        .await;
    assert_code(&output, 7);
    assert_eq!(
        charges(&env, Provider::Runbase),
        4,
        "$0.20 of a $0.23 cap, never more"
    );
    let report = batch_json(&output);
    assert_eq!(report["counts"]["done"], 4, "{report:#}");
    assert_eq!(report["error"]["exit_code"], 7);
    assert!(
        stderr(&output)
            .contains("the spending cap was reached with $0.2 spent: 6 requests were not sent"),
        "{}",
        stderr(&output)
    );
    let pngs = std::fs::read_dir(env.out_dir())
        .unwrap()
        .filter(|entry| {
            entry
                .as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|ext| ext == "png")
        })
        .count();
    assert_eq!(pngs, 4, "every image paid for is saved");
}

#[tokio::test]
async fn generate_under_a_cap_refuses_before_sending_and_names_the_way_out() {
    let env = Env::start(instant()).await;
    let over = env
        .run(&[
            "generate",
            "a lamp",
            "--provider",
            "runbase",
            "-n",
            "3",
            "--allow-extra-tasks",
            "--max-cost",
            "0.10",
        ])
        .await;
    assert_code(&over, 7);
    let text = stderr(&over);
    assert!(
        text.contains("its price ($0.15) would take the spend ($0) past the spending cap ($0.1)"),
        "{text}"
    );
    assert!(text.contains("raise --max-cost"), "{text}");
    assert_eq!(env.requests(), 0);

    // runblob prices a task only in its answer: refused under a cap unless allowed.
    let mut unpriced = env.cmd(&["generate", "a lamp", "--provider", "runblob"]);
    unpriced.env("IMGGEN_MAX_COST", "$1");
    let refused = crate::run(unpriced).await;
    assert_code(&refused, 7);
    assert!(
        stderr(&refused).contains("--allow-unpriced"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(env.requests(), 0);

    let allowed = env
        .run(&[
            "generate",
            "a lamp",
            "--provider",
            "runblob",
            "--max-cost",
            "1",
            "--allow-unpriced",
            "--poll-interval",
            "0.05",
        ])
        .await;
    assert_code(&allowed, 0);
    assert_eq!(charges(&env, Provider::Runblob), 1);
}

#[tokio::test]
async fn a_paid_generate_ends_with_what_it_made_cost_and_took() {
    let env = Env::start(instant()).await;
    let output = env
        .run(&[
            "generate",
            "a lamp",
            "--provider",
            "runbase",
            "--poll-interval",
            "0.05",
        ])
        .await;
    assert_code(&output, 0);
    let last = stderr(&output)
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned();
    assert!(last.starts_with("imggen: 1 image · $0.05 · "), "{last}");
    assert!(last.ends_with(" s"), "{last}");
}

#[tokio::test]
async fn a_batch_dry_run_finds_every_line_a_run_would_refuse() {
    let env = Env::start(instant()).await;
    std::fs::write(
        env.dir.path().join("b.jsonl"),
        "{\"id\": \"a\", \"prompt\": \"A lamp\"}\nnot json\n{\"id\": \"a\", \"prompt\": \"A fox\"}\n",
    )
    .unwrap();
    let output = env
        .run(&["batch", "b.jsonl", "--provider", "runbase", "--dry-run"])
        .await;
    assert_code(&output, 2);
    let text = stderr(&output);
    assert!(text.contains("imggen: 3 lines cannot run:"), "{text}");
    assert!(text.contains("  line 2: "), "{text}");
    assert!(text.contains("also used on line"), "{text}");
    assert_eq!(env.requests(), 0);
}
