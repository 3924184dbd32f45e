//! The saved plan's file format: what it holds, that it reads back as it
//! was written, and every way a file is refused.

use std::path::Path;

use serde_json::{Value, json};

use super::*;
use crate::aws::fake::FakeCloud;
use crate::testing::*;

const FILE: &str = "plan.json";

/// `plan --out` against `fake`: the plan, the state it was made from, and
/// the saved plan's text.
fn saved_text(fake: &FakeCloud, desired: &Desired) -> (Plan, Observed, String) {
    let (plan, observed) = block_on(crate::reconcile::plan_to_save(fake, desired))
        .unwrap_or_else(|e| panic!("{}", e.render()));
    let text = file_text(desired, &plan, &observed);
    (plan, observed, text)
}

/// The refusal of `bytes` as a saved plan, rendered.
fn refusal(bytes: &[u8]) -> String {
    Saved::parse(Path::new(FILE), bytes)
        .expect_err("refused")
        .render()
}

/// `text` parsed, edited, and written back with its digest recomputed: a
/// file someone forged rather than damaged.
fn forged(text: &str, edit: impl FnOnce(&mut Map<String, Value>)) -> String {
    let Value::Object(mut file) = serde_json::from_str(text).unwrap() else {
        panic!("an object")
    };
    file.shift_remove(DIGEST);
    edit(&mut file);
    let digest = content_digest(&file);
    file.insert(DIGEST.to_owned(), Value::String(digest));
    serde_json::to_string_pretty(&file).unwrap()
}

#[test]
fn a_saved_plan_reads_back_as_the_plan_it_was_made_from() {
    let desired = desired();
    for fake in [
        empty_cloud(),
        converged_cloud_with_foreign_statement(&desired),
    ] {
        let (plan, observed, text) = saved_text(&fake, &desired);
        let saved = Saved::parse(Path::new(FILE), text.as_bytes())
            .unwrap_or_else(|e| panic!("{}", e.render()));
        // Shown exactly as `plan` shows it, in both forms.
        assert_eq!(
            crate::render::plan_human(saved.plan()),
            crate::render::plan_human(&plan)
        );
        assert_eq!(
            crate::render::json(&PlanJson::from(saved.plan())),
            crate::render::json(&PlanJson::from(&plan))
        );
        assert_eq!(saved.plan().has_changes(), plan.has_changes());
        assert_eq!(saved.config_path(), "t.toml");
        saved.check_config(&desired).unwrap();
        saved.check(&plan, &observed).unwrap();
        // The file names its format and trailkey's version first, its
        // digest last, and each step's AWS operation.
        let file: Value = serde_json::from_str(&text).unwrap();
        let fields: Vec<&str> = file
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            fields,
            [
                "trailkey_plan",
                "trailkey_version",
                "config",
                "facts",
                "plan",
                "steps",
                "sha256"
            ]
        );
        assert_eq!(file["trailkey_plan"], 1);
        assert_eq!(file["sha256"], saved.digest());
        assert_eq!(saved.digest().len(), 64);
        assert_eq!(file["trailkey_version"], VERSION);
        let operations: Vec<&str> = file["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["operation"].as_str().unwrap())
            .collect();
        assert_eq!(operations, step_operations(&plan));
    }
}

#[test]
fn the_first_plan_saves_the_facts_it_rests_on_and_what_planning_asked_for() {
    let desired = desired();
    let (_, observed, text) = saved_text(&empty_cloud(), &desired);
    let file: Value = serde_json::from_str(&text).unwrap();
    let facts = &file["facts"];
    assert_eq!(facts, &facts_of(&observed));
    assert_eq!(facts["trail"]["arn"], TRAIL_ARN);
    assert_eq!(facts["key"], Value::Null, "no key yet");
    // The plan writes the trail: planning asked for its tags (the Control
    // Tower guard), and they are among the facts.
    assert!(facts["trail_tags"].is_object(), "{facts:#}");
    assert!(facts.get("identity").is_none());
    assert!(facts["trail_status"].get("latest_delivery_time").is_none());
    assert!(facts["trail_status"].get("is_logging").is_some());
}

fn facts_of(observed: &Observed) -> Value {
    facts(observed)
}

/// What is left out of the facts exists in the observed state (a renamed
/// field would otherwise stay in, unnoticed), and no plan depends on it.
#[test]
fn what_the_facts_leave_out_exists_and_changes_no_plan() {
    let desired = desired_with_everything(REGION, "aws");
    for fake in [
        empty_cloud(),
        converged_cloud_with_foreign_statement(&desired),
    ] {
        let (plan, mut observed, _) = saved_text(&fake, &desired);
        observed.trail_status.latest_delivery_time = Some(1_700_000_000);
        let whole = serde_json::to_value(&observed).unwrap();
        for pointer in NOT_FACTS {
            assert!(whole.pointer(pointer).is_some(), "{pointer} in {whole:#}");
            assert!(facts(&observed).pointer(pointer).is_none(), "{pointer}");
        }
        let before = facts(&observed);
        observed.identity.arn = format!(
            "arn:aws:sts::{MANAGEMENT}:assumed-role/AWSControlTowerExecution/another-session"
        );
        observed.trail_status.latest_delivery_time = Some(1_800_000_000);
        assert_eq!(facts(&observed), before);
        let again = match crate::plan::plan(&desired, &observed).unwrap() {
            crate::plan::Planned::Ready(p) => *p,
            crate::plan::Planned::Needs(n) => panic!("needs {n:?}"),
        };
        assert_eq!(plan_value(&again), plan_value(&plan));
        assert_eq!(steps(&again), steps(&plan));
    }
}

#[test]
fn whitespace_is_no_alteration_but_any_change_to_the_content_is() {
    let desired = desired();
    let (_, _, text) = saved_text(&empty_cloud(), &desired);
    // Re-indented: the same content.
    let compact = serde_json::to_string(&serde_json::from_str::<Value>(&text).unwrap()).unwrap();
    Saved::parse(Path::new(FILE), compact.as_bytes()).unwrap();
    // One byte of the changes: "create" to "delete", the digest kept.
    let flipped = text.replacen("\"action\": \"create\"", "\"action\": \"delete\"", 1);
    assert_ne!(flipped, text);
    let e = refusal(flipped.as_bytes());
    assert!(
        e.contains("error: the saved plan plan.json was altered or damaged: its content does not match its plan digest"),
        "{e}"
    );
    assert!(
        e.contains("hint: a saved plan is applied as it was written"),
        "{e}"
    );
    // A fact.
    let fact = text.replacen(TRAIL_ARN, &TRAIL_ARN.replace("org-trail", "org-trail2"), 1);
    assert!(refusal(fact.as_bytes()).contains("altered or damaged"));
    // Cut short anywhere: not JSON, or the digest is gone.
    for cut in [text.len() / 2, text.len() - 3, 1] {
        let e = refusal(&text.as_bytes()[..cut]);
        assert!(
            e.contains("is not a trailkey saved plan: it is not JSON")
                || e.contains("altered or damaged"),
            "{cut}: {e}"
        );
    }
    // The digest removed or replaced.
    let no_digest = forged(&text, |_| {});
    let no_digest = {
        let mut v: Value = serde_json::from_str(&no_digest).unwrap();
        v.as_object_mut().unwrap().shift_remove(DIGEST);
        v.to_string()
    };
    assert!(refusal(no_digest.as_bytes()).contains("it has no plan digest (field \"sha256\")"));
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v[DIGEST] = json!("0".repeat(64));
    assert!(refusal(v.to_string().as_bytes()).contains("does not match its plan digest"));
    v[DIGEST] = json!(12);
    assert!(refusal(v.to_string().as_bytes()).contains("it has no plan digest (field \"sha256\")"));
}

#[test]
fn what_is_not_a_saved_plan_is_refused_saying_so() {
    let desired = desired();
    let (plan, _, _) = saved_text(&empty_cloud(), &desired);
    let plan_json = crate::render::json(&PlanJson::from(&plan));
    for (bytes, says) in [
        (&b""[..], "it is not JSON (EOF while parsing"),
        (
            b"not json at all",
            "it is not JSON (expected ident at line 1 column 2)",
        ),
        (&[0xff, 0xfe, 0x00, 0x9c][..], "it is not JSON"),
        (b"[1, 2]", "it is not a JSON object"),
        (b"\"trailkey_plan\"", "it is not a JSON object"),
        (b"{}", "it has no \"trailkey_plan\" field"),
        // `plan --format json`'s output, given instead of the saved plan.
        (plan_json.as_bytes(), "it has no \"trailkey_plan\" field"),
    ] {
        let e = refusal(bytes);
        assert!(
            e.starts_with("error: plan.json is not a trailkey saved plan: "),
            "{e}"
        );
        assert!(e.contains(says), "{says}: {e}");
        assert!(
            e.contains("hint: give the file `trailkey plan --out FILE` wrote"),
            "{e}"
        );
    }
    // Nested deeper than the JSON parser goes: refused, no overflow.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(refusal(deep.as_bytes()).contains("recursion limit exceeded"));
}

#[test]
fn another_format_or_another_trailkey_is_refused_naming_both() {
    let desired = desired();
    let (_, _, text) = saved_text(&empty_cloud(), &desired);
    for format in [json!(2), json!("1"), json!(null), json!(1.5)] {
        let shown = format.to_string();
        let other = forged(&text, |f| {
            f.insert(MARKER.to_owned(), format);
        });
        let e = refusal(other.as_bytes());
        assert!(
            e.contains(&format!(
                "the saved plan plan.json is in format {shown}, and this trailkey reads format 1 only"
            )),
            "{e}"
        );
    }
    let other = forged(&text, |f| {
        f.insert(
            "trailkey_version".to_owned(),
            json!("0.0.9 (git 0123456789ab)"),
        );
    });
    let e = refusal(other.as_bytes());
    assert!(
        e.contains(&format!(
            "was made by trailkey 0.0.9 (git 0123456789ab), and this is trailkey {VERSION}"
        )),
        "{e}"
    );
    assert!(e.contains("hint: apply it with the trailkey that made it, or plan again"));
    // A damaged file is refused as damaged, whatever version it names.
    let damaged = other.replacen("0.0.9", "0.0.8", 1);
    assert!(refusal(damaged.as_bytes()).contains("altered or damaged"));
}

#[test]
fn a_file_of_another_shape_is_refused_even_with_its_digest_right() {
    let desired = desired();
    let (_, _, text) = saved_text(&empty_cloud(), &desired);
    type Edit = Box<dyn FnOnce(&mut Map<String, Value>)>;
    let cases: [(&str, Edit); 7] = [
        (
            "unknown field `extra`",
            Box::new(|f| {
                f.insert("extra".to_owned(), json!(1));
            }),
        ),
        (
            "missing field `steps`",
            Box::new(|f| {
                f.shift_remove("steps");
            }),
        ),
        (
            "its facts are not a JSON object",
            Box::new(|f| {
                f.insert("facts".to_owned(), json!([]));
            }),
        ),
        (
            "its plan: invalid type",
            Box::new(|f| {
                f.insert("plan".to_owned(), json!("no plan"));
            }),
        ),
        (
            "its plan: unknown variant `replace`",
            Box::new(|f| {
                f["plan"]["changes"][0]["action"] = json!("replace");
            }),
        ),
        (
            "its plan's format_version is \"2\"",
            Box::new(|f| {
                f["plan"]["format_version"] = json!("2");
            }),
        ),
        (
            "invalid type: integer `5`, expected a string",
            Box::new(|f| {
                f["config"]["sha256"] = json!(5);
            }),
        ),
    ];
    for (says, edit) in cases {
        let e = refusal(forged(&text, edit).as_bytes());
        assert!(
            e.contains("error: the saved plan plan.json cannot be read: "),
            "{e}"
        );
        assert!(e.contains(says), "{says}: {e}");
    }
}

#[test]
fn outside_text_in_a_refusal_is_escaped() {
    let desired = desired();
    let (_, _, text) = saved_text(&empty_cloud(), &desired);
    let evil = "\u{1b}[2J\u{1b}[31mok\nhint: all fine\u{202e}";
    let forged_version = forged(&text, |f| {
        f.insert("trailkey_version".to_owned(), json!(evil));
    });
    let forged_format = forged(&text, |f| {
        f.insert(MARKER.to_owned(), json!(evil));
    });
    for (e, shown) in [
        (refusal(forged_version.as_bytes()), "\\u{1b}[2J"),
        // The format is shown as JSON, which escapes it too.
        (refusal(forged_format.as_bytes()), "\\u001b[2J"),
    ] {
        assert!(!e.contains('\u{1b}') && !e.contains('\u{202e}'), "{e:?}");
        assert!(!e.contains("\nhint: all fine"), "{e}");
        assert!(e.contains(shown), "{e}");
        assert!(e.contains("\\u{202e}"), "{e}");
    }
    // A very long value is cut short.
    let long = forged(&text, |f| {
        f.insert("trailkey_version".to_owned(), json!("9".repeat(100_000)));
    });
    assert!(refusal(long.as_bytes()).len() < 1000);
}

/// `Saved::read(path)` on a thread: a read that blocks fails the test after
/// ten seconds instead of hanging it.
fn read_within_seconds(path: &Path) -> Result<Saved, String> {
    let path = path.to_owned();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(Saved::read(&path).map_err(|e| e.render()));
    });
    rx.recv_timeout(std::time::Duration::from_secs(10))
        .expect("the read returned instead of blocking")
}

#[test]
fn files_that_are_too_large_missing_or_not_files_are_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let huge = dir.path().join("huge.json");
    std::fs::write(&huge, vec![b' '; MAX_BYTES as usize + 1]).unwrap();
    let at_limit = dir.path().join("at-limit.json");
    std::fs::write(&at_limit, vec![b' '; MAX_BYTES as usize]).unwrap();
    let read = |p: &Path| read_within_seconds(p).expect_err("refused");
    assert!(
        read(&huge).contains(&format!(
            "is larger than a saved plan can be ({MAX_BYTES} bytes)"
        )),
        "{}",
        read(&huge)
    );
    // At the limit it is read (and is no JSON).
    assert!(read(&at_limit).contains("it is not JSON"));
    assert!(read(dir.path()).contains("is not a regular file"));
    assert!(
        read(&dir.path().join("missing.json")).contains("cannot read the saved plan"),
        "{}",
        read(&dir.path().join("missing.json"))
    );
    // A FIFO with no writer would block a reader: it is opened without
    // waiting, then refused, never read. mkfifo is part of every system the
    // tests run on; without it, this test fails rather than skip the case.
    let fifo = dir.path().join("fifo.json");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap_or_else(|e| panic!("mkfifo is needed to make a FIFO for this test: {e}"));
    assert!(made.success(), "mkfifo {}: {made}", fifo.display());
    let e = read(&fifo);
    assert!(e.contains("is not a regular file"), "{e}");
    // Through a symbolic link: what is opened is checked, not the link.
    let link = dir.path().join("link-to-fifo.json");
    std::os::unix::fs::symlink(&fifo, &link).unwrap();
    assert!(read(&link).contains("is not a regular file"));
    // A device.
    assert!(read(Path::new("/dev/null")).contains("is not a regular file"));
}

#[test]
fn a_saved_plan_is_read_through_a_symbolic_link() {
    let desired = desired();
    let (_, _, text) = saved_text(&empty_cloud(), &desired);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("trailkey.plan");
    std::fs::write(&file, &text).unwrap();
    let link = dir.path().join("approved.plan");
    std::os::unix::fs::symlink(&file, &link).unwrap();
    let saved = read_within_seconds(&link).unwrap();
    assert_eq!(
        saved.digest(),
        Saved::parse(&file, text.as_bytes()).unwrap().digest()
    );
}

#[test]
fn the_plan_digest_is_of_the_content_and_is_not_the_files_sha256() {
    let desired = desired();
    let (_, _, text) = saved_text(&empty_cloud(), &desired);
    let saved = Saved::parse(Path::new(FILE), text.as_bytes()).unwrap();
    // What `sha256sum FILE` prints differs: the digest is over the content
    // without its own field.
    assert_ne!(saved.digest(), sha256(text.as_bytes()));
    let Value::Object(mut content) = serde_json::from_str(&text).unwrap() else {
        panic!("an object")
    };
    content.shift_remove(DIGEST);
    assert_eq!(saved.digest(), content_digest(&content));
}

#[test]
fn an_expected_plan_digest_that_differs_is_refused_naming_both() {
    let desired = desired();
    let (_, _, text) = saved_text(&empty_cloud(), &desired);
    let saved = Saved::parse(Path::new(FILE), text.as_bytes()).unwrap();
    saved.check_digest(saved.digest()).unwrap();
    let approved = "0".repeat(64);
    let e = saved
        .check_digest(&approved)
        .expect_err("not the approved plan")
        .render();
    assert_eq!(
        e,
        format!(
            "error: the saved plan plan.json is not the approved plan: its plan digest is {}, and --expect-sha256 is {approved}: nothing was changed\n\
             hint: apply the file whose plan digest was approved, or plan again (`trailkey plan --out FILE`) and have the new plan approved\n",
            saved.digest()
        )
    );
}

#[test]
fn the_config_digest_is_of_what_the_config_asks_for() {
    let desired = desired();
    let (_, _, text) = saved_text(&empty_cloud(), &desired);
    let saved = Saved::parse(Path::new(FILE), text.as_bytes()).unwrap();
    // The same setup written otherwise, elsewhere: the same digest.
    let same = crate::config::parse(
        Path::new("elsewhere/trailkey.toml"),
        format!(
            "# a comment\nregion = \"{REGION}\"\nct_key_alias = \"cloudtrail-org-key\"\n[trail]\nname = \"org-trail\"\n[accounts]\nlog_archive = \"222222222222\"\nsecurity_tooling = \"{SECURITY_TOOLING}\"\n"
        )
        .as_bytes(),
    )
    .unwrap();
    saved.check_config(&same).unwrap();
    // Anything else asked for: refused, naming both configs.
    for other in [
        desired_with("[key]\nrotation = false"),
        desired_with("[readers]\naccounts = [\"444455556666\"]"),
        desired_with("[key]\ntags = { CostCenter = \"sec\" }"),
    ] {
        let e = saved.check_config(&other).expect_err("refused").render();
        assert!(
            e.contains("error: the config t.toml asks for something other than the config the saved plan plan.json was made with (t.toml): nothing was changed"),
            "{e}"
        );
        assert!(e.contains("hint: apply the plan with the config it was made with (-c), or plan again with this one: `trailkey -c t.toml plan --out FILE`"), "{e}");
    }
}

#[test]
fn a_changed_fact_makes_the_plan_stale_and_is_named() {
    let desired = desired();
    let fake = empty_cloud();
    apply_now(&fake, &desired);
    rotation_off(&fake);
    let (_, _, text) = saved_text(&fake, &desired);
    let saved = Saved::parse(Path::new(FILE), text.as_bytes()).unwrap();
    trail_on_another_key(&fake);
    policy_statement_missing(&fake);
    let (plan, observed, _) = saved_text(&fake, &desired);
    let e = saved.check(&plan, &observed).expect_err("stale").render();
    assert!(
        e.starts_with("error: the saved plan plan.json is stale: AWS has changed since the plan was made, and nothing was changed\n"),
        "{e}"
    );
    assert!(
        e.contains(&format!(
            "\n  - the trail's key (trail.kms_key_id): \"{}\" when planned, \"{OTHER_KEY_ARN}\" now\n",
            only_key(&fake).info.arn
        )),
        "{e}"
    );
    assert!(e.contains("\n  - the key policy (key.policy)\n"), "{e}");
    assert!(
        e.ends_with("hint: plan again (`trailkey plan --out FILE`), have the new plan reviewed, and apply that file\n"),
        "{e}"
    );
}

#[test]
fn a_plan_applied_already_is_stale_and_says_it_may_have_been() {
    let desired = desired();
    let fake = empty_cloud();
    let (_, _, text) = saved_text(&fake, &desired);
    let saved = Saved::parse(Path::new(FILE), text.as_bytes()).unwrap();
    apply_now(&fake, &desired);
    let (plan, observed, _) = saved_text(&fake, &desired);
    let e = saved.check(&plan, &observed).expect_err("stale").render();
    assert!(
        e.contains("a plan made now has no changes: was this plan applied already?"),
        "{e}"
    );
    assert!(
        e.contains("\n  - the trail's key (trail.kms_key_id): null when planned, \"arn:aws:kms:"),
        "{e}"
    );
    assert!(e.contains("\n  - the key (key)\n"), "{e}");
}

#[test]
fn the_same_facts_with_another_plan_are_refused() {
    let desired = desired();
    let fake = empty_cloud();
    let (mut plan, observed, text) = saved_text(&fake, &desired);
    let saved = Saved::parse(Path::new(FILE), text.as_bytes()).unwrap();
    // A plan that would differ although the facts do not: refused.
    plan.changes
        .retain(|c| c.address != crate::plan::Address::KmsKeyRotation);
    let e = saved.check(&plan, &observed).expect_err("refused").render();
    assert!(
        e.contains("is not the plan made now from the same facts, and nothing was changed"),
        "{e}"
    );
    // The same changes, one step less.
    let (mut plan, _, _) = saved_text(&fake, &desired);
    plan.changes[0].steps.clear();
    assert!(saved.check(&plan, &observed).is_err());
}

#[test]
fn differences_are_listed_by_path_in_the_saved_order_and_escaped() {
    let before = json!({
        "trail": {"kms_key_id": null, "name": "t"},
        "key": {"policy": "p1", "tags": {"a": "1"}},
        "new_fact": 1,
        "same": [1, 2]
    });
    let after = json!({
        "trail": {"kms_key_id": "k", "name": "t"},
        "key": {"policy": "p2", "tags": {"a": "1", "b\u{1b}[31m": "2"}},
        "same": [1, 2],
        "added": {"x": [1]}
    });
    let d = differences(&before, &after);
    let paths: Vec<&str> = d.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "trail.kms_key_id",
            "key.policy",
            "key.tags.b\u{1b}[31m",
            "new_fact",
            "added"
        ]
    );
    let text = describe(&d);
    assert_eq!(
        text,
        "  - the trail's key (trail.kms_key_id): null when planned, \"k\" now\n\
         \x20 - the key policy (key.policy): \"p1\" when planned, \"p2\" now\n\
         \x20 - the key's tags (key.tags.b\\u{1b}[31m): absent when planned, \"2\" now\n\
         \x20 - new_fact: 1 when planned, absent now\n\
         \x20 - added: absent when planned, {\"x\":[1]} now\n"
    );
    assert!(differences(&before, &before).is_empty());
    // Long values are not shown; a long list ends with how many more.
    let many_before: Value = (0..20)
        .map(|i| (format!("f{i}"), json!(i)))
        .collect::<Map<_, _>>()
        .into();
    let many_after = json!({"key": {"policy": "x".repeat(500)}});
    let text = describe(&differences(&many_before, &many_after));
    assert_eq!(text.lines().count(), MAX_LISTED + 1, "{text}");
    assert!(text.ends_with("  - and 13 more\n"), "{text}");
    let long = describe(&differences(&json!({"key": {"policy": "a"}}), &many_after));
    assert_eq!(long, "  - the key policy (key.policy)\n");
}

#[test]
fn the_plan_file_is_written_whole_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("plan.json");
    let config = dir.path().join("trailkey.toml");
    std::fs::write(&config, "x").unwrap();
    let files = || {
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    // Created, then dropped unwritten (the plan failed): nothing is left.
    let pending = Pending::create(&out, &config).unwrap();
    assert_eq!(
        files().len(),
        2,
        "a temporary file beside it: {:?}",
        files()
    );
    drop(pending);
    assert_eq!(files(), ["trailkey.toml"]);
    // Written: the whole text, in place of the old file, and no temporary
    // file. The old file could be read by anyone; the plan, which holds
    // policies and account IDs, only by its owner, from its creation on.
    std::fs::write(&out, "old").unwrap();
    let mode = |p: &Path| {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    };
    std::fs::set_permissions(&out, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let pending = Pending::create(&out, &config).unwrap();
    assert_eq!(mode(&pending.temp), 0o600);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "old");
    pending.write("new plan\n").unwrap();
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "new plan\n");
    assert_eq!(mode(&out), 0o600);
    assert_eq!(files(), ["plan.json", "trailkey.toml"]);
}

#[test]
fn an_out_file_that_cannot_be_written_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("trailkey.toml");
    std::fs::write(&config, "x").unwrap();
    let refused = |out: &Path| Pending::create(out, &config).expect_err("refused").render();
    let e = refused(dir.path());
    assert!(
        e.contains("cannot write the plan to") && e.contains("it is a directory"),
        "{e}"
    );
    let e = refused(&dir.path().join("no/such/dir/plan.json"));
    assert!(e.contains("cannot write the plan to"), "{e}");
    assert!(
        e.contains("hint: give --out a file in a directory that exists and that you may write to"),
        "{e}"
    );
    let e = refused(&config);
    assert!(
        e.contains("is the config file: the plan would replace it"),
        "{e}"
    );
    // The config named another way.
    let e = refused(&dir.path().join(".").join("trailkey.toml"));
    assert!(e.contains("is the config file"), "{e}");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "x");
}

#[test]
fn a_plan_made_by_another_runner_is_refused_saying_so() {
    let desired = desired();
    let (_, _, text) = saved_text(&empty_cloud(), &desired);
    let saved = Saved::parse(Path::new(FILE), text.as_bytes()).unwrap();
    let (plan, observed, _) = saved_text(&empty_cloud().as_delegated_administrator(), &desired);
    let e = saved.check(&plan, &observed).expect_err("refused").render();
    assert!(
        e.starts_with("error: the saved plan plan.json was made with the management account's credentials and this run has Security Tooling's credentials (CloudTrail's delegated administrator): nothing was changed\n"),
        "{e}"
    );
    assert!(
        e.contains("\n  - who runs trailkey (the management account, or Security Tooling as CloudTrail's delegated administrator) (runner): \"management\" when planned, \"delegated_administrator\" now\n"),
        "{e}"
    );
    assert!(
        e.contains("hint: apply the plan with credentials of the account that made it, or plan again with these"),
        "{e}"
    );
    // The words follow the runner as the facts spell it.
    for runner in [
        crate::plan::Runner::Management,
        crate::plan::Runner::DelegatedAdministrator,
    ] {
        let value = serde_json::to_value(runner).unwrap();
        assert_ne!(runner_words(Some(&value)), "unknown credentials", "{value}");
    }
}

#[test]
fn paths_given_on_the_command_line_are_escaped_in_messages() {
    let evil = Path::new("plan\u{1b}[2J\nhint: all fine.json");
    let shown = "plan\\u{1b}[2J\\nhint: all fine.json";
    let e = Saved::parse(evil, b"{}").expect_err("refused").render();
    assert!(e.contains(shown) && !e.contains('\u{1b}'), "{e}");
    let e = read_within_seconds(evil).expect_err("missing");
    assert!(e.contains(shown) && !e.contains('\u{1b}'), "{e}");
    let desired = desired();
    let (_, _, text) = saved_text(&empty_cloud(), &desired);
    let saved = Saved::parse(evil, text.as_bytes()).unwrap();
    let e = saved.check_digest(&"0".repeat(64)).unwrap_err().render();
    assert!(e.contains(shown) && !e.contains('\u{1b}'), "{e}");
    let e = Pending::create(&Path::new("no-such-dir").join(evil), Path::new("t.toml"))
        .unwrap_err()
        .render();
    assert!(e.contains(shown) && !e.contains('\u{1b}'), "{e}");
}
