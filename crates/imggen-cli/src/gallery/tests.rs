use super::*;

fn card(id: &str, status: ResultStatus, files: &[&str]) -> Card {
    Card {
        id: id.into(),
        prompt: format!("prompt of {id}"),
        provider: Some("runbase".into()),
        model: Some("openai/gpt-image-2".into()),
        status,
        cost: Cost::usd("0.05".parse().unwrap()),
        error: (status != ResultStatus::Done).then(|| format!("why {id} is not done")),
        files: files.iter().map(|file| (*file).to_owned()).collect(),
    }
}

fn page(dir: &Path, live: bool, cards: Vec<Card>) -> String {
    let heading = Heading {
        title: "prompts.jsonl".into(),
        live,
    };
    let path = write(dir, &heading, cards.into_iter().map(Ok)).unwrap();
    assert_eq!(path, dir.join(PAGE));
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn untrusted_text_is_shown_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let mut hostile = card("<img src=x onerror=alert(1)>", ResultStatus::Failed, &[]);
    hostile.prompt = "</p><script>alert('prompt')</script>".into();
    hostile.error = Some("\"quoted\" & <b>bold</b>\u{1b}[31m".into());
    hostile.model = Some("m\" onmouseover=\"x".into());
    let html = page(dir.path(), false, vec![hostile]);
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(!html.contains("<img src=x"));
    assert!(!html.contains("<b>bold"));
    assert!(!html.contains('\u{1b}'));
    assert!(html.contains("&lt;/p&gt;&lt;script&gt;alert(&#39;prompt&#39;)&lt;/script&gt;"));
    assert!(html.contains("m&quot; onmouseover=&quot;x"));
    // The page's own script is the only one.
    assert_eq!(html.matches("<script>").count(), 1);
}

#[test]
fn totals_count_every_card_and_images_are_referenced_not_inlined() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a-1.png"), b"png").unwrap();
    std::fs::write(dir.path().join("a b#1.png"), b"png").unwrap();
    let html = page(
        dir.path(),
        false,
        vec![
            card("a", ResultStatus::Done, &["a-1.png", "a b#1.png"]),
            card("b", ResultStatus::Failed, &[]),
            card("c", ResultStatus::Unknown, &[]),
            card("d", ResultStatus::Done, &["elsewhere-1.png"]),
        ],
    );
    assert!(html.contains("<img src=\"a-1.png\""));
    assert!(html.contains("<img src=\"a%20b%231.png\""));
    assert!(!html.contains("data:image"));
    assert!(html.contains("data-total=\"requests\"><b>4</b>"));
    assert!(html.contains("data-total=\"done\"><b>2</b>"));
    assert!(html.contains("data-total=\"failed\"><b>1</b>"));
    assert!(html.contains("data-total=\"unknown\"><b>1</b>"));
    assert!(html.contains("data-total=\"images\"><b>3</b>"));
    assert!(html.contains("data-total=\"cost\"><b>$0.2</b>"));
    // A file another worker saved is named, not drawn.
    assert!(html.contains("saved by another worker"));
    assert!(html.contains("<dd class=\"elsewhere\">elsewhere-1.png</dd>"));
    // A filter for each status present, and none for the others.
    assert!(html.contains("id=\"filter-failed\""));
    assert!(!html.contains("id=\"filter-pending\""));
    assert!(!html.contains("http-equiv=\"refresh\""));
}

#[test]
fn a_page_written_during_a_run_reloads_itself() {
    let dir = tempfile::tempdir().unwrap();
    let html = page(
        dir.path(),
        true,
        vec![card("a", ResultStatus::Pending, &[])],
    );
    assert!(html.contains("<meta http-equiv=\"refresh\" content=\"3\">"));
    assert!(html.contains("not finished yet"));
}

#[test]
fn a_huge_run_draws_the_first_cards_and_counts_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let cards = (0..MAX_CARDS + 7).map(|n| card(&n.to_string(), ResultStatus::Pending, &[]));
    let html = page(dir.path(), false, cards.collect());
    assert_eq!(html.matches("<article").count(), MAX_CARDS);
    assert!(html.contains(&format!("data-total=\"requests\"><b>{}</b>", MAX_CARDS + 7)));
    assert!(html.contains("results.jsonl lists every one"));
}

#[test]
fn a_card_that_cannot_be_read_writes_no_page() {
    let dir = tempfile::tempdir().unwrap();
    let heading = Heading {
        title: "t".into(),
        live: false,
    };
    let cards = vec![
        Ok(card("a", ResultStatus::Done, &[])),
        Err(io::Error::other("the journal is gone")),
    ];
    assert!(write(dir.path(), &heading, cards.into_iter()).is_err());
    assert!(!dir.path().join(PAGE).exists());
}

#[test]
fn a_kept_original_is_named_not_drawn_twice() {
    let dir = tempfile::tempdir().unwrap();
    for file in ["a-1.jpg", "a-1.png", "a-2.jpg", "a-2.png"] {
        std::fs::write(dir.path().join(file), b"image").unwrap();
    }
    let html = page(
        dir.path(),
        false,
        vec![card(
            "a",
            ResultStatus::Done,
            &["a-1.jpg", "a-1.png", "a-2.jpg", "a-2.png"],
        )],
    );
    assert!(html.contains("<img src=\"a-1.jpg\""));
    assert!(html.contains("<img src=\"a-2.jpg\""));
    assert!(!html.contains("<img src=\"a-1.png\""));
    assert!(html.contains("<dd class=\"original\">a-1.png, a-2.png</dd>"));
    assert!(html.contains("data-total=\"images\"><b>2</b>"));
}
