//! The spending cap against imggen-mock: what a create checks before it is sent, and a batch
//! the cap stops mid-way.

use std::time::Duration;

use imggen_core::batch::{BatchOptions, BatchRunner, RequestDefaults, ResultStatus};
use imggen_core::{
    Cost, CostCap, Error, GenerationRequest, Spending, SpendingCapKind, SubmitOptions,
};
use imggen_mock::{MockConfig, Profile, Provider as MockProvider};
use serde_json::json;

use crate::batch::{assert_pngs, charges, imggen, imggen_with, input, lines, mock};

const S: Duration = Duration::from_secs(1);

fn usd(text: &str) -> imggen_types::Usd {
    text.parse().unwrap()
}

#[tokio::test]
async fn a_create_whose_price_would_pass_the_cap_is_not_sent() {
    let (server, time) = mock(MockConfig::default().profile(Profile::Fixed(4 * S))).await;
    let imggen = imggen_with(&server, &time, true);
    // Three runs of openai/gpt-image-2 at $0.05: $0.15 against a cap of $0.12.
    let spending = Spending::new(CostCap::usd(usd("0.12")), None, Cost::ZERO);
    let request = GenerationRequest::new("A lamp").n(3);
    let options = SubmitOptions::provider(crate::RUNBASE).spending(spending.clone());
    let allowed = imggen.clone();
    let error = allowed.submit(&request, &options).await.unwrap_err();
    let Error::SpendingCap(cap) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(cap.kind, SpendingCapKind::Reached);
    assert!(!error.may_have_been_charged());
    assert!(
        error.to_string().contains("$0.15") && error.to_string().contains("$0.12"),
        "{error}"
    );
    assert!(charges(&server, MockProvider::Runbase).is_empty());
    assert_eq!(server.requests().recent.len(), 0, "nothing was sent");

    // Two fit, and are counted at what they charged.
    let two = GenerationRequest::new("A lamp").n(2);
    let submission = imggen.submit(&two, &options).await.unwrap();
    assert_eq!(submission.handles.len(), 2);
    assert_eq!(spending.spent(), Cost::usd(usd("0.10")));
    let one_more = imggen
        .submit(&GenerationRequest::new("A lamp"), &options)
        .await
        .unwrap_err();
    assert!(matches!(one_more, Error::SpendingCap(_)), "{one_more:?}");
    assert_eq!(charges(&server, MockProvider::Runbase).len(), 2);
}

#[tokio::test]
async fn a_provider_that_prices_only_in_its_answer_needs_leave_under_a_cap() {
    let (server, time) = mock(MockConfig::default().profile(Profile::Fixed(4 * S))).await;
    let imggen = imggen(&server, &time);
    let request = GenerationRequest::new("A lamp");
    let strict = Spending::new(CostCap::usd(usd("1")), None, Cost::ZERO);
    let error = imggen
        .submit(
            &request,
            &SubmitOptions::provider(crate::RUNBLOB).spending(strict),
        )
        .await
        .unwrap_err();
    let Error::SpendingCap(cap) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(cap.kind, SpendingCapKind::Unpriced);
    assert!(charges(&server, MockProvider::Runblob).is_empty());

    let lenient = Spending::new(
        CostCap::usd(usd("1")).allow_unpriced(true),
        None,
        Cost::ZERO,
    );
    let submission = imggen
        .submit(
            &request,
            &SubmitOptions::provider(crate::RUNBLOB).spending(lenient.clone()),
        )
        .await
        .unwrap();
    // Counted at what runblob's answer said it cost.
    assert_eq!(lenient.spent(), submission.cost());
    assert!(!lenient.spent().is_zero());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_stops_sending_at_its_cap_and_still_saves_everything_paid() {
    let (server, time) = mock(MockConfig::default().profile(Profile::Fixed(4 * S))).await;
    let dir = tempfile::tempdir().unwrap();
    let text = lines(
        &(0..10)
            .map(|i| json!({"id": format!("lamp-{i}"), "prompt": format!("A lamp, variant {i}")}))
            .collect::<Vec<_>>(),
    );
    let defaults = RequestDefaults::new().provider(crate::RUNBASE);
    // $0.05 a request, several in flight at once: four fit in $0.23, a fifth would not.
    let options = BatchOptions::new(dir.path())
        .concurrency(4)
        .max_cost(CostCap::usd(usd("0.23")));
    let report = BatchRunner::new(imggen(&server, &time), options.clone())
        .run(input(&text, &defaults))
        .await
        .unwrap();

    assert!(report.cap_reached);
    let charged = charges(&server, MockProvider::Runbase);
    assert_eq!(charged.len(), 4, "never past the cap");
    assert_eq!(report.count(ResultStatus::Done), 4);
    assert_eq!(report.cost().to_string(), "$0.2");
    assert_pngs(dir.path(), &report);
    let results = report.read_results().unwrap();
    let unsent: Vec<_> = results
        .iter()
        .filter(|line| line.status != ResultStatus::Done)
        .collect();
    assert_eq!(unsent.len(), 6);
    for line in unsent {
        assert!(line.task_ids.is_empty(), "{line:?}");
        assert!(
            line.error
                .as_deref()
                .is_some_and(|error| error.contains("spending cap")),
            "{line:?}"
        );
    }

    // Run again under the same cap: what the journal says was spent counts, nothing is sent.
    let again = BatchRunner::new(imggen(&server, &time), options)
        .run(input(&text, &defaults))
        .await
        .unwrap();
    assert!(again.cap_reached);
    assert_eq!(charges(&server, MockProvider::Runbase).len(), 4);

    // A higher cap carries on from there: $0.20 spent, $0.30 more for the other six.
    let raised = BatchOptions::new(dir.path())
        .concurrency(4)
        .max_cost(CostCap::usd(usd("0.50")));
    let finished = BatchRunner::new(imggen(&server, &time), raised)
        .run(input(&text, &defaults))
        .await
        .unwrap();
    assert!(!finished.cap_reached);
    assert_eq!(finished.count(ResultStatus::Done), 10);
    assert_eq!(charges(&server, MockProvider::Runbase).len(), 10);
}
