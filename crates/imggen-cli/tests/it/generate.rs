//! Every provider's happy path: real PNGs on disk, their paths on stdout, one charge per task.

use imggen_mock::{EntryKind, Provider};

use crate::{Env, assert_code, files_in, instant, json_output, png_size, printed_paths, stderr};

#[tokio::test]
async fn gptimg_writes_every_image_of_its_task_and_prints_their_paths() {
    let env = Env::start(instant()).await;
    let output = env
        .run(&[
            "generate",
            "a lighthouse on a cliff at dusk",
            "--provider",
            "gptimg",
            "-n",
            "2",
            "--aspect-ratio",
            "16:9",
            "--poll-interval",
            "0.05",
        ])
        .await;
    assert_code(&output, 0);
    let printed = printed_paths(&output, env.dir.path());
    assert_eq!(printed.len(), 2, "one path per image");
    assert_eq!(
        files_in(&env.out_dir()),
        printed,
        "the default --out is ./imggen-out and holds exactly the printed files"
    );
    for path in &printed {
        assert_eq!(path.extension().unwrap(), "png");
        assert_eq!(png_size(path), (256, 144), "16:9 at the emulator's 256 px");
    }
    let tasks = env.server.tasks();
    assert_eq!(tasks.len(), 1, "gptimg makes up to 4 images in one task");
    assert_eq!(tasks[0].images, 2);
    assert!(
        stderr(&output).contains(&format!("created gptimg task {}", tasks[0].id)),
        "without a terminal the handle is still logged: {}",
        stderr(&output)
    );
}

#[tokio::test]
async fn runblob_writes_its_png_where_out_says() {
    let env = Env::start(instant()).await;
    let output = env
        .run(&[
            "generate",
            "a red fox",
            "--provider",
            "runblob",
            "--aspect-ratio",
            "4:3",
            "-o",
            "renders/foxes",
            "--poll-interval",
            "0.05",
        ])
        .await;
    assert_code(&output, 0);
    let printed = printed_paths(&output, env.dir.path());
    assert_eq!(files_in(&env.dir.path().join("renders/foxes")), printed);
    assert_eq!(png_size(&printed[0]), (256, 192));
    let ledger = env.server.ledger();
    assert_eq!(ledger.len(), 1, "charged once: {ledger:?}");
    assert_eq!(ledger[0].provider, Provider::Runblob);
    assert_eq!(ledger[0].kind, EntryKind::Charge);
}

#[tokio::test]
async fn runbase_takes_provider_options_and_extra_tasks_when_allowed() {
    let env = Env::start(instant()).await;
    let output = env
        .run(&[
            "generate",
            "a ceramic lamp",
            "--provider",
            "runbase",
            "--aspect-ratio",
            "9:16",
            "--option",
            "resolution=2K",
            "-n",
            "2",
            "--allow-extra-tasks",
            "--poll-interval",
            "0.05",
            "--json",
        ])
        .await;
    assert_code(&output, 0);
    let json = json_output(&output);
    assert_eq!(json["provider"], "runbase");
    let tasks = json["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 2, "runbase makes one image per run: {json:#}");
    for task in tasks {
        assert_eq!(task["status"], "succeeded");
        assert_eq!(task["cost"]["usd"], "0.07", "gpt-image-2 at 2K");
        assert_eq!(task["handle"]["provider"], "runbase");
    }
    assert_eq!(json["cost"]["usd"], "0.14");
    let images = json["images"].as_array().unwrap();
    assert_eq!(images.len(), 2);
    for image in images {
        let path = env.dir.path().join(image["path"].as_str().unwrap());
        assert_eq!(png_size(&path), (144, 256));
        assert_eq!(image["media_type"], "image/png");
        assert_eq!(image["width"], 144);
        assert_eq!(image["bytes"], std::fs::metadata(&path).unwrap().len());
    }
    assert!(json["error"].is_null());
    let ledger = env.server.ledger();
    assert_eq!(ledger.len(), 2, "one charge per run: {ledger:?}");
}

#[tokio::test]
async fn fallback_moves_on_only_past_a_provider_that_charged_nothing() {
    let env = Env::start(instant()).await;
    env.server.set_balance(
        crate::KEY,
        imggen_mock::Balance::Runblob(imggen_types::Usd::ZERO),
    );
    let output = env
        .run(&[
            "generate",
            "a fox",
            "--fallback",
            "runblob,gptimg",
            "--poll-interval",
            "0.05",
            "--json",
        ])
        .await;
    assert_code(&output, 0);
    let json = json_output(&output);
    assert_eq!(json["provider"], "gptimg");
    let warning = &json["warnings"][0];
    assert_eq!(warning["provider"], "runblob");
    assert!(
        warning["message"]
            .as_str()
            .unwrap()
            .contains("402 INSUFFICIENT_CREDITS"),
        "{warning}"
    );
    let charged: Vec<Provider> = env.server.ledger().iter().map(|e| e.provider).collect();
    assert_eq!(charged, [Provider::Gptimg], "runblob charged nothing");
}
