//! Property tests and fuzzing (proptest) of the two places where outside
//! input meets trailkey's logic: the config parser and the key-policy
//! normalizer/merger. Also a property of every rendered policy: it carries
//! the confused-deputy conditions; and of the human output: outside text in
//! a plan or an error is shown escaped, never as control characters.
//!
//! The case counts below keep `make test` fast. For a long fuzz run, set
//! `PROPTEST_CASES` (it overrides every default here), e.g.
//! `PROPTEST_CASES=200000 cargo test --release --test properties`; see
//! docs/testing.md.

use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use serde_json::{Map, Value, json};

use trailkey::config::{self, AccountId, KNOWN_REGIONS};
use trailkey::error::Error;
use trailkey::policy::{self, PolicyInputs, is_ours, sid, statements};

/// `default_cases`, unless `PROPTEST_CASES` is set.
fn cases(default_cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = default_cases;
    }
    config
}

// ---------------------------------------------------------------------------
// (a) The config parser never panics and only ever fails with a config error.

const FUZZ_PATH: &str = "fuzz/trailkey.toml";

/// Parses, and checks the result: a `Desired` whose every value is valid, or
/// an `Error::Config` for this file with a message and a hint.
fn check_parse(bytes: &[u8]) -> Result<(), TestCaseError> {
    let path = Path::new(FUZZ_PATH);
    match config::parse(path, bytes) {
        Ok(d) => {
            for id in [
                Some(&d.security_tooling),
                Some(&d.log_archive),
                d.management.as_ref(),
            ]
            .into_iter()
            .flatten()
            {
                prop_assert!(
                    id.as_str().len() == 12 && id.as_str().bytes().all(|b| b.is_ascii_digit())
                );
            }
            prop_assert_ne!(&d.security_tooling, &d.log_archive);
            prop_assert!(d.management.as_ref() != Some(&d.security_tooling));
            prop_assert!(d.management.as_ref() != Some(&d.log_archive));
            prop_assert!(
                KNOWN_REGIONS
                    .iter()
                    .any(|(r, p)| *r == d.region.as_str() && *p == d.partition())
            );
            prop_assert!(!d.alias.short().starts_with("aws/"));
            prop_assert!(!d.alias.short().is_empty() && d.alias.full().len() <= 256);
            prop_assert_eq!(
                d.tags.get("ManagedBy").map(String::as_str),
                Some("trailkey")
            );
            prop_assert!(
                d.tags
                    .keys()
                    .all(|k| !k.to_ascii_lowercase().starts_with("aws:"))
            );
            if let config::TrailRef::Arn(arn) = &d.trail {
                let prefix = format!("arn:{}:cloudtrail:{}:", d.partition(), d.region);
                prop_assert!(arn.starts_with(&prefix), "{arn}");
            }
        }
        Err(e) => {
            let rendered = e.render();
            match &e {
                Error::Config {
                    file,
                    message,
                    hint,
                    ..
                } => {
                    prop_assert_eq!(file.as_path(), path);
                    prop_assert!(!message.trim().is_empty());
                    prop_assert!(!hint.trim().is_empty());
                    prop_assert!(rendered.contains(FUZZ_PATH), "{rendered}");
                }
                other => prop_assert!(false, "not a config error: {other:?}"),
            }
        }
    }
    Ok(())
}

/// Lines of valid and nearly valid configs, recombined by the fuzzer.
const FRAGMENTS: &[&str] = &[
    "region = \"us-east-1\"\n",
    "region = \"eu-west-1\"\n",
    "region = \"us-gov-west-1\"\n",
    "region = \"cn-north-1\"\n",
    "region = \"us-east-9\"\n",
    "region = 1\n",
    "ct_key_alias = \"cloudtrail-org-key\"\n",
    "ct_key_alias = \"alias/aws/x\"\n",
    "ct_key_alias = \"alias/\"\n",
    "[accounts]\n",
    "security_tooling = \"111111111111\"\n",
    "log_archive = \"222222222222\"\n",
    "management = \"333333333333\"\n",
    "management = \"011111111111\"\n",
    "log_archive = 222222222222\n",
    "[roles]\n",
    "security_tooling = \"AWSControlTowerExecution\"\n",
    "security_tooling = \"arn:aws:iam::111111111111:role/path/Admin\"\n",
    "management = \"arn:aws:iam::333333333333:role/TrailkeyRunner\"\n",
    "management = \"arn:aws-us-gov:iam::333333333333:role/R\"\n",
    "[trail]\n",
    "name = \"org-trail\"\n",
    "name = \"arn:aws:cloudtrail:us-east-1:333333333333:trail/org-trail\"\n",
    "name = \"arn:aws-us-gov:cloudtrail:us-gov-west-1:333333333333:trail/t.1\"\n",
    "name = \"arn:aws:cloudtrail:\"\n",
    "organization_trail = false\n",
    "allow_control_tower = true\n",
    "[key]\n",
    "rotation = true\n",
    "rotation = \"yes\"\n",
    "tags = { CostCenter = \"sec\" }\n",
    "tags = [\"a\"]\n",
    "[key.tags]\n",
    "Team = \"platform\"\n",
    "\"aws:x\" = \"y\"\n",
    "ManagedBy = \"me\"\n",
    "accounts.security_tooling = \"111111111111\"\n",
    "accounts = [\"111111111111\", \"222222222222\", \"333333333333\"]\n",
    "trail = { name = \"org-trail\" }\n",
    "trail = \"org-trail\"\n",
    "[[accounts]]\n",
    "[accounts.log_archive]\n",
    "x = [1, 2, \"3\"]\n",
    "'quoted key' = \"v\"\n",
    "dt = 1979-05-27T07:32:00Z\n",
    "s = '''\nmulti\n'''\n",
    "f = 1e400\n",
    "u = \"\\u00e9\\u0000\"\n",
    "é = \"ü\"\n",
    "# comment ✓\n",
    "\n",
    "\r\n",
    "{\"accounts\": {}}\n",
];

/// Characters the mutations insert: TOML syntax, multi-byte UTF-8, controls.
const INSERTS: &[char] = &[
    '"', '\'', '[', ']', '=', '\n', '#', '{', '}', ',', '.', '\\', ' ', '\t', '\r', '\0', '1', 'a',
    '-', ':', '/', 'é', '€', '😀', '\u{feff}', '\u{7f}', '\u{2028}',
];

#[derive(Debug, Clone)]
enum Mutation {
    Insert(usize, char),
    Delete(usize, usize),
    Duplicate(usize, usize),
    Truncate(usize),
    Swap(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), prop::sample::select(INSERTS)).prop_map(|(i, c)| Mutation::Insert(i, c)),
        3 => (any::<usize>(), 1..8usize).prop_map(|(i, n)| Mutation::Delete(i, n)),
        1 => (any::<usize>(), 1..40usize).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Swap(a, b)),
    ]
}

/// Applies mutations on characters, so the result stays valid UTF-8.
fn mutate(text: &str, mutations: &[Mutation]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for m in mutations {
        let len = chars.len();
        let at = |i: usize| if len == 0 { 0 } else { i % (len + 1) };
        match *m {
            Mutation::Insert(i, c) => chars.insert(at(i), c),
            Mutation::Delete(i, n) if len > 0 => {
                let start = i % len;
                let end = (start + n).min(len);
                chars.drain(start..end);
            }
            Mutation::Duplicate(i, n) if len > 0 => {
                let start = i % len;
                let end = (start + n).min(len);
                let copy: Vec<char> = chars[start..end].to_vec();
                let pos = at(i.wrapping_mul(31));
                chars.splice(pos..pos, copy);
            }
            Mutation::Truncate(i) => chars.truncate(at(i)),
            Mutation::Swap(a, b) if len > 0 => chars.swap(a % len, b % len),
            _ => {}
        }
    }
    chars.into_iter().collect()
}

fn toml_ish() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(prop::sample::select(FRAGMENTS), 0..24),
        prop::collection::vec(mutation(), 0..6),
    )
        .prop_map(|(lines, mutations)| mutate(&lines.concat(), &mutations))
}

/// A config that is valid, then mutated a little: reaches deep into validation.
const VALID: &str = "region = \"us-east-1\"\nct_key_alias = \"alias/cloudtrail-org-key\"\n\n[accounts]\nsecurity_tooling = \"111111111111\"\nlog_archive = \"222222222222\"\nmanagement = \"333333333333\"\n\n[roles]\nsecurity_tooling = \"arn:aws:iam::111111111111:role/AWSControlTowerExecution\"\nmanagement = \"arn:aws:iam::333333333333:role/TrailkeyRunner\"\n\n[trail]\nname = \"arn:aws:cloudtrail:us-east-1:333333333333:trail/org-trail\"\n\n[key]\nrotation = true\ntags = { CostCenter = \"security\" }\n";

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn config_parser_survives_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        check_parse(&bytes)?;
    }

    #[test]
    fn config_parser_survives_toml_ish_text(text in toml_ish()) {
        check_parse(text.as_bytes())?;
    }

    #[test]
    fn config_parser_survives_small_mutations_of_a_valid_config(
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        check_parse(mutate(VALID, &mutations).as_bytes())?;
    }
}

#[test]
fn the_fuzz_seed_config_is_valid() {
    let d = config::parse(Path::new(FUZZ_PATH), VALID.as_bytes()).unwrap();
    assert_eq!(d.region.as_str(), "us-east-1");
}

// ---------------------------------------------------------------------------
// (b) The policy normalizer and merger.

const PARTITIONS: &[&str] = &["aws", "aws-us-gov", "aws-cn"];

fn account_id() -> impl Strategy<Value = String> + Clone {
    "[0-9]{12}"
}

fn principal(partition: &'static str) -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        account_id(),
        account_id().prop_map(move |id| format!("arn:{partition}:iam::{id}:root")),
        (account_id(), "[A-Za-z]{1,10}")
            .prop_map(move |(id, r)| format!("arn:{partition}:iam::{id}:role/{r}")),
        Just("*".to_owned()),
        "AROA[A-Z0-9]{16}",
    ]
}

/// A string or a list of strings (possibly with duplicates).
fn one_or_many(s: impl Strategy<Value = String> + Clone) -> impl Strategy<Value = Value> {
    prop_oneof![
        s.clone().prop_map(Value::String),
        prop::collection::vec(s, 1..4)
            .prop_map(|v| Value::Array(v.into_iter().map(Value::String).collect())),
    ]
}

fn action() -> impl Strategy<Value = String> + Clone {
    (
        prop::sample::select(
            &[
                "kms:Decrypt",
                "kms:Encrypt",
                "kms:GenerateDataKey*",
                "kms:DescribeKey",
                "kms:*",
                "kms:ReEncrypt*",
                "kms:CreateGrant",
                "s3:GetObject",
            ][..],
        ),
        any::<bool>(),
    )
        .prop_map(|(a, upper)| {
            if upper {
                a.to_ascii_uppercase()
            } else {
                a.to_owned()
            }
        })
}

fn sid_value() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        "Trailkey[A-Za-z]{0,12}".prop_map(Some),
        Just(Some("TrailkeyRootAdministration".to_owned())),
        "[A-Za-z0-9 ]{0,16}".prop_map(Some),
        "trailkey[A-Za-z]{0,4}".prop_map(Some),
    ]
}

/// Condition keys differ in more than case (normalize lower-cases them).
const CONDITION_KEYS: &[&str] = &[
    "aws:SourceArn",
    "aws:SourceAccount",
    "kms:EncryptionContext:aws:cloudtrail:arn",
    "kms:CallerAccount",
    "kms:ViaService",
];

fn condition() -> impl Strategy<Value = Value> {
    let block = prop::collection::btree_map(
        prop::sample::select(CONDITION_KEYS),
        one_or_many("[a-z0-9:*/-]{1,20}"),
        1..3,
    )
    .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()));
    prop::collection::btree_map(
        prop::sample::select(&["StringEquals", "StringLike", "Null", "ArnLike"][..]),
        block,
        1..3,
    )
    .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
}

fn statement(partition: &'static str) -> impl Strategy<Value = Value> {
    let principal_value = prop_oneof![
        Just(json!("*")),
        one_or_many(principal(partition)).prop_map(|v| json!({ "AWS": v })),
        one_or_many(
            prop::sample::select(&["cloudtrail.amazonaws.com", "logs.amazonaws.com"][..])
                .prop_map(str::to_owned)
        )
        .prop_map(|v| json!({ "Service": v })),
    ];
    (
        sid_value(),
        prop::sample::select(&["Allow", "Deny"][..]),
        principal_value,
        one_or_many(action()),
        prop_oneof![Just(json!("*")), Just(json!(["*"]))],
        prop::option::of(condition()),
    )
        .prop_map(|(sid, effect, principal, action, resource, condition)| {
            let mut s = Map::new();
            if let Some(sid) = sid {
                s.insert("Sid".into(), json!(sid));
            }
            s.insert("Effect".into(), json!(effect));
            s.insert("Principal".into(), principal);
            s.insert("Action".into(), action);
            s.insert("Resource".into(), resource);
            if let Some(c) = condition {
                s.insert("Condition".into(), c);
            }
            Value::Object(s)
        })
}

/// Any JSON at all, for statements and policies that are not well-formed.
fn junk() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[a-zA-Z0-9:*]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(
                    &[
                        "Sid",
                        "Effect",
                        "Principal",
                        "AWS",
                        "Action",
                        "Condition",
                        "Resource",
                        "x"
                    ][..]
                ),
                inner,
                0..4,
            )
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}

fn policy_with(partition: &'static str, junk_weight: u32) -> impl Strategy<Value = Value> {
    let stmt = prop_oneof![
        10 => statement(partition),
        junk_weight => junk(),
    ];
    (
        prop::collection::vec(stmt, 0..8),
        any::<bool>(),
        prop::option::of("[a-z0-9-]{1,12}"),
    )
        .prop_map(|(stmts, single, id)| {
            let mut p = Map::new();
            p.insert("Version".into(), json!("2012-10-17"));
            if let Some(id) = id {
                p.insert("Id".into(), json!(id));
            }
            let statement = if single && stmts.len() == 1 {
                stmts.into_iter().next().unwrap()
            } else {
                Value::Array(stmts)
            };
            p.insert("Statement".into(), statement);
            Value::Object(p)
        })
}

fn partition_and_policy(junk_weight: u32) -> impl Strategy<Value = (&'static str, Value)> {
    prop::sample::select(PARTITIONS).prop_flat_map(move |p| (Just(p), policy_with(p, junk_weight)))
}

/// A tiny deterministic generator for the rewrites below.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn coin(&mut self) -> bool {
        self.next() & 1 == 1
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

/// Rewrites a list of strings, or a string, in an equivalent form: shuffled,
/// a single value as a one-element list and back, each string through `f`.
fn rewrite_set(v: &Value, rng: &mut Rng, f: &dyn Fn(&str, &mut Rng) -> String) -> Value {
    match v {
        Value::String(s) => {
            let s = f(s, rng);
            if rng.coin() { json!([s]) } else { json!(s) }
        }
        Value::Array(items) if items.iter().all(Value::is_string) => {
            let mut items: Vec<String> =
                items.iter().map(|x| f(x.as_str().unwrap(), rng)).collect();
            rng.shuffle(&mut items);
            if items.len() == 1 && rng.coin() {
                json!(items[0])
            } else {
                json!(items)
            }
        }
        other => other.clone(),
    }
}

fn flip_case(s: &str, rng: &mut Rng) -> String {
    s.chars()
        .map(|c| {
            if rng.coin() {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

/// The same policy as `normalize` sees it: statements shuffled, lists
/// shuffled, single values vs one-element lists, the case of actions and
/// condition keys, account IDs vs `arn:<p>:iam::<id>:root`, `Id` changed.
/// With `key_order`, the keys of every object are shuffled too.
fn equivalent_rewrite(policy: &Value, partition: &str, seed: u64, key_order: bool) -> Value {
    let mut rng = Rng(seed | 1);
    let mut stmts: Vec<Value> = statements(policy)
        .into_iter()
        .map(|s| rewrite_statement(s, partition, &mut rng, key_order))
        .collect();
    rng.shuffle(&mut stmts);
    let mut entries = vec![
        (
            "Version".to_owned(),
            policy.get("Version").cloned().unwrap_or(Value::Null),
        ),
        ("Id".to_owned(), json!("rewritten")),
        ("Statement".to_owned(), Value::Array(stmts)),
    ];
    if key_order {
        rng.shuffle(&mut entries);
    }
    Value::Object(entries.into_iter().collect())
}

fn rewrite_statement(s: &Value, partition: &str, rng: &mut Rng, key_order: bool) -> Value {
    let Value::Object(obj) = s else {
        return s.clone();
    };
    let mut entries: Vec<(String, Value)> = obj
        .iter()
        .map(|(k, v)| {
            let nv = match k.as_str() {
                "Action" | "NotAction" => rewrite_set(v, rng, &|a, r| flip_case(a, r)),
                "Resource" | "NotResource" => rewrite_set(v, rng, &|x, _| x.to_owned()),
                "Principal" => rewrite_principal(v, partition, rng, key_order),
                "Condition" => rewrite_condition(v, rng, key_order),
                _ => v.clone(),
            };
            (k.clone(), nv)
        })
        .collect();
    if key_order {
        rng.shuffle(&mut entries);
    }
    Value::Object(entries.into_iter().collect())
}

fn rewrite_principal(v: &Value, partition: &str, rng: &mut Rng, key_order: bool) -> Value {
    let Value::Object(o) = v else {
        return v.clone();
    };
    let root_prefix = format!("arn:{partition}:iam::");
    let swap_form = move |p: &str, rng: &mut Rng| -> String {
        if let Some(id) = AccountId::parse(p) {
            if rng.coin() {
                format!("arn:{partition}:iam::{id}:root")
            } else {
                p.to_owned()
            }
        } else if let Some(id) = p
            .strip_prefix(&root_prefix)
            .and_then(|r| r.strip_suffix(":root"))
            .and_then(AccountId::parse)
        {
            if rng.coin() {
                id.to_string()
            } else {
                p.to_owned()
            }
        } else {
            p.to_owned()
        }
    };
    let mut entries: Vec<(String, Value)> = o
        .iter()
        .map(|(k, vals)| {
            let nv = if k == "AWS" {
                rewrite_set(vals, rng, &swap_form)
            } else {
                rewrite_set(vals, rng, &|x, _| x.to_owned())
            };
            (k.clone(), nv)
        })
        .collect();
    if key_order {
        rng.shuffle(&mut entries);
    }
    Value::Object(entries.into_iter().collect())
}

fn rewrite_condition(v: &Value, rng: &mut Rng, key_order: bool) -> Value {
    let Value::Object(ops) = v else {
        return v.clone();
    };
    let mut out: Vec<(String, Value)> = ops
        .iter()
        .map(|(op, keys)| {
            let Value::Object(keys) = keys else {
                return (op.clone(), keys.clone());
            };
            let mut nk: Vec<(String, Value)> = keys
                .iter()
                .map(|(k, vals)| {
                    (
                        flip_case(k, rng),
                        rewrite_set(vals, rng, &|x, _| x.to_owned()),
                    )
                })
                .collect();
            if key_order {
                rng.shuffle(&mut nk);
            }
            (op.clone(), Value::Object(nk.into_iter().collect()))
        })
        .collect();
    if key_order {
        rng.shuffle(&mut out);
    }
    Value::Object(out.into_iter().collect())
}

fn rendered(
    partition: &str,
    security_tooling: &AccountId,
    management: &str,
    log_archive: &AccountId,
    trail_arn: &str,
) -> Value {
    policy::render(&PolicyInputs {
        partition,
        key_account: security_tooling,
        management,
        log_archive,
        trail_arn,
        readers: Vec::new(),
        protect_exempt: None,
        protect_period: None,
        control_tower: None,
    })
}

/// trailkey's statements for random accounts and trail, as merge takes them.
fn ours(partition: &str, ids: &[String; 3], trail: &str) -> Value {
    let st = AccountId::parse(&ids[0]).unwrap();
    let la = AccountId::parse(&ids[1]).unwrap();
    let arn = format!(
        "arn:{partition}:cloudtrail:us-east-1:{}:trail/{trail}",
        ids[2]
    );
    rendered(partition, &st, &ids[2], &la, &arn)
}

fn three_ids() -> impl Strategy<Value = [String; 3]> {
    (account_id(), account_id(), account_id()).prop_map(|(a, b, c)| [a, b, c])
}

proptest! {
    #![proptest_config(cases(128))]

    #[test]
    fn normalize_never_panics_on_any_json(
        (partition, p) in partition_and_policy(10),
        anything in junk(),
    ) {
        let _ = policy::normalize(&policy::normalize(&p, partition), partition);
        let _ = policy::normalize(&anything, partition);
        let _ = policy::merge(Some(&anything), &p);
        prop_assert!(policy::equivalent(&p, &p, partition), "reflexive");
        prop_assert!(policy::equivalent(&anything, &anything, partition), "reflexive");
    }

    #[test]
    fn normalize_is_idempotent((partition, p) in partition_and_policy(0)) {
        let once = policy::normalize(&p, partition);
        let twice = policy::normalize(&once, partition);
        prop_assert_eq!(&twice, &once);
    }

    #[test]
    fn equivalent_ignores_statement_order_list_order_and_forms(
        (partition, p) in partition_and_policy(0),
        seed in any::<u64>(),
    ) {
        let q = equivalent_rewrite(&p, partition, seed, false);
        prop_assert!(policy::equivalent(&p, &q, partition), "{p}\n{q}");
        prop_assert!(policy::equivalent(&q, &p, partition), "symmetric");
    }

    #[test]
    fn equivalent_is_symmetric(
        (partition, a) in partition_and_policy(1),
        b in policy_with("aws", 1),
    ) {
        prop_assert_eq!(
            policy::equivalent(&a, &b, partition),
            policy::equivalent(&b, &a, partition)
        );
    }

    #[test]
    fn merge_keeps_foreign_statements_and_adds_ours_once(
        (partition, current) in partition_and_policy(1),
        ids in three_ids(),
        trail in "[a-z][a-z0-9-]{1,20}[a-z0-9]",
    ) {
        let ours = ours(partition, &ids, &trail);
        let merged = policy::merge(Some(&current), &ours);

        // Every foreign statement, in its original relative order.
        let foreign = |p: &Value| -> Vec<Value> {
            statements(p).into_iter().filter(|s| !is_ours(s)).cloned().collect()
        };
        prop_assert_eq!(foreign(&merged), foreign(&current));

        // Every one of ours exactly once; no other trailkey statement.
        let merged_stmts = statements(&merged);
        for s in statements(&ours) {
            prop_assert_eq!(merged_stmts.iter().filter(|m| **m == s).count(), 1, "{}", s);
        }
        prop_assert_eq!(
            merged_stmts.iter().filter(|s| is_ours(s)).count(),
            statements(&ours).len()
        );
        let root: Vec<_> = merged_stmts
            .iter()
            .filter(|s| sid(s) == Some("TrailkeyRootAdministration"))
            .collect();
        prop_assert_eq!(root.len(), 1);
        prop_assert_eq!(
            &root[0]["Principal"]["AWS"],
            &json!(format!("arn:{partition}:iam::{}:root", ids[0]))
        );

        // Merging again changes nothing.
        let again = policy::merge(Some(&merged), &ours);
        prop_assert!(policy::equivalent(&again, &merged, partition));
        prop_assert_eq!(&again, &merged);
    }

    #[test]
    fn merge_without_a_current_policy_is_ours(
        partition in prop::sample::select(PARTITIONS),
        ids in three_ids(),
    ) {
        let ours = ours(partition, &ids, "org-trail");
        let merged = policy::merge(None, &ours);
        prop_assert_eq!(statements(&merged), statements(&ours));
    }
}

/// `equivalent_ignores_statement_order_list_order_and_forms`, with the keys
/// of every object shuffled too. `normalize` sorts statements by their JSON
/// text, and serde_json's `preserve_order` is on in this test build (through
/// the AWS SDK's test utilities), so that text follows the input's key order
/// unless `normalize` first sorts the keys of every object (`sorted_keys`),
/// as it does. This property fails if it stops doing so.
#[test]
fn equivalent_ignores_key_order() {
    let mut runner = proptest::test_runner::TestRunner::new(cases(256));
    runner
        .run(
            &(partition_and_policy(0), any::<u64>()),
            |((partition, p), seed)| {
                let q = equivalent_rewrite(&p, partition, seed, true);
                prop_assert!(policy::equivalent(&p, &q, partition), "{p}\n{q}");
                Ok(())
            },
        )
        .unwrap();
}

/// `normalize_is_idempotent` on policies with malformed statements. A value
/// that is neither a string nor a list of strings (`"Action": {"Sid": null}`,
/// `"AWS": 111111111111`) is stringified, and `string_set` must apply the
/// per-item rewrite (lower-casing, account ID to root ARN) to that text too;
/// otherwise a second `normalize` rewrites it again. KMS rejects such
/// policies, so only malformed input is at stake.
#[test]
fn normalize_is_idempotent_on_malformed_policies() {
    let mut runner = proptest::test_runner::TestRunner::new(cases(256));
    runner
        .run(&partition_and_policy(10), |(partition, p)| {
            let once = policy::normalize(&p, partition);
            prop_assert_eq!(&policy::normalize(&once, partition), &once);
            Ok(())
        })
        .unwrap();
}

// ---------------------------------------------------------------------------
// (c) Every rendered policy carries the confused-deputy conditions.

fn region_in(partition: &'static str) -> impl Strategy<Value = &'static str> {
    let regions: Vec<&'static str> = KNOWN_REGIONS
        .iter()
        .filter(|(_, p)| *p == partition)
        .map(|(r, _)| *r)
        .collect();
    prop::sample::select(regions)
}

/// A valid trail name: CloudTrail's pattern, and not in IP address format
/// (four numbers of one to three digits joined by dots), which it refuses.
fn trail_name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9]([A-Za-z0-9]|[._-][A-Za-z0-9]){2,40}".prop_filter("not in IP address format", |n| {
        let parts: Vec<&str> = n.split('.').collect();
        !(parts.len() == 4
            && parts
                .iter()
                .all(|p| p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit())))
    })
}

fn check_rendered(
    p: &Value,
    partition: &str,
    security_tooling: &str,
    management: &str,
    log_archive: &str,
    trail_arn: &str,
) -> Result<(), TestCaseError> {
    let text = p.to_string();
    prop_assert!(!text.contains("${"), "{text}");
    prop_assert!(policy::to_document(p).len() <= policy::MAX_POLICY_BYTES);
    let context = format!("arn:{partition}:cloudtrail:*:{management}:trail/*");
    let stmts = statements(p);
    prop_assert!(stmts.iter().all(|s| is_ours(s)));
    let by_sid = |id: &str| stmts.iter().find(|s| sid(s) == Some(id)).copied();

    // The only statement granting kms:* is the Security Tooling root's.
    let root = by_sid("TrailkeyRootAdministration").expect("root statement");
    prop_assert_eq!(
        &root["Principal"]["AWS"],
        &json!(format!("arn:{partition}:iam::{security_tooling}:root"))
    );
    prop_assert_eq!(&root["Effect"], "Allow");
    for s in &stmts {
        if sid(s) != Some("TrailkeyRootAdministration") {
            prop_assert!(!s["Action"].to_string().contains("kms:*"), "{}", s);
        }
    }

    // Each CloudTrail statement: aws:SourceArn is exactly the trail.
    let cloudtrail: Vec<_> = stmts
        .iter()
        .filter(|s| s["Principal"]["Service"] == "cloudtrail.amazonaws.com")
        .collect();
    prop_assert_eq!(cloudtrail.len(), 3);
    for s in &cloudtrail {
        prop_assert_eq!(
            &s["Condition"]["StringEquals"]["aws:SourceArn"],
            &json!(trail_arn),
            "{}",
            s
        );
    }

    // GenerateDataKey and the readers: the encryption context of the
    // management account's trails.
    let encrypt = stmts
        .iter()
        .find(|s| s["Action"].to_string().contains("GenerateDataKey"))
        .expect("GenerateDataKey statement");
    let readers = by_sid("TrailkeyLogReadersDecrypt").expect("readers statement");
    for s in [encrypt, readers] {
        prop_assert_eq!(
            &s["Condition"]["StringLike"]["kms:EncryptionContext:aws:cloudtrail:arn"],
            &json!(context.clone()),
            "{}",
            s
        );
    }
    prop_assert_eq!(
        &readers["Principal"]["AWS"],
        &json!([
            format!("arn:{partition}:iam::{log_archive}:root"),
            format!("arn:{partition}:iam::{management}:root")
        ])
    );
    Ok(())
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn every_rendered_policy_has_the_confused_deputy_conditions(
        (partition, region) in prop::sample::select(PARTITIONS).prop_flat_map(|p| (Just(p), region_in(p))),
        ids in three_ids(),
        trail in trail_name(),
    ) {
        let st = AccountId::parse(&ids[0]).unwrap();
        let la = AccountId::parse(&ids[1]).unwrap();
        let trail_arn = format!("arn:{partition}:cloudtrail:{region}:{}:trail/{trail}", ids[2]);
        let p = rendered(partition, &st, &ids[2], &la, &trail_arn);
        check_rendered(&p, partition, &ids[0], &ids[2], &ids[1], &trail_arn)?;
    }

    /// The same from a config file: the partition comes from the Region, and
    /// the trail is given by name or by ARN.
    #[test]
    fn a_valid_random_config_parses_and_renders_with_the_conditions(
        (partition, region) in prop::sample::select(PARTITIONS).prop_flat_map(|p| (Just(p), region_in(p))),
        ids in three_ids().prop_filter("three different accounts", |[a, b, c]| a != b && b != c && a != c),
        trail in trail_name(),
        by_arn in any::<bool>(),
        alias in "(alias/)?[A-Za-z0-9][A-Za-z0-9/_-]{0,60}",
    ) {
        prop_assume!(!alias.trim_start_matches("alias/").starts_with("aws/"));
        let trail_arn = format!("arn:{partition}:cloudtrail:{region}:{}:trail/{trail}", ids[2]);
        let text = format!(
            "region = \"{region}\"\nct_key_alias = \"{alias}\"\n[accounts]\nsecurity_tooling = \"{}\"\nlog_archive = \"{}\"\nmanagement = \"{}\"\n[trail]\nname = \"{}\"\n",
            ids[0], ids[1], ids[2], if by_arn { &trail_arn } else { &trail }
        );
        let d = config::parse(Path::new(FUZZ_PATH), text.as_bytes())
            .map_err(|e| TestCaseError::fail(format!("{text}\n{}", e.render())))?;
        prop_assert_eq!(d.partition(), partition);
        let p = rendered(d.partition(), &d.security_tooling, &ids[2], &d.log_archive, &trail_arn);
        check_rendered(&p, partition, &ids[0], &ids[2], &ids[1], &trail_arn)?;
    }
}

// ---------------------------------------------------------------------------
// Flags: any number and any duration text is parsed or refused at once,
// never a panic; the retry schedule of any budget is computed at once.

/// Parses `apply` with the flag and value; a refusal names the flag.
fn check_flag(flag: &str, value: &str) -> Result<(), TestCaseError> {
    use clap::Parser as _;
    let parsed =
        trailkey::cli::Cli::try_parse_from(["trailkey", "apply", &format!("{flag}={value}")]);
    if let Err(e) = parsed {
        prop_assert!(e.to_string().contains(flag), "{flag}={value:?}: {e}");
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn timeout_flags_take_any_number_without_panic(n in any::<u64>()) {
        for flag in ["--policy-retry-timeout", "--propagation-timeout", "--wait-for-delivery"] {
            check_flag(flag, &n.to_string())?;
        }
    }

    #[test]
    fn the_delivery_wait_takes_any_text_without_panic(
        text in prop_oneof![any::<String>(), "[0-9]{0,25}[smhd]?", "-?[0-9]{1,20}(\\.[0-9]+)?[smh]"],
    ) {
        check_flag("--wait-for-delivery", &text)?;
        if let Ok(wait) = trailkey::cli::parse_duration(&text) {
            prop_assert!(wait <= trailkey::cli::MAX_DELIVERY_WAIT);
            prop_assert!(!wait.is_zero());
        }
    }

    #[test]
    fn a_retry_schedule_of_any_length_is_counted_at_once(
        total in any::<u64>(),
        total_nanos in 0u32..1_000_000_000,
        first_nanos in any::<u64>(),
    ) {
        let schedule = trailkey::retry::Backoff {
            total: std::time::Duration::new(total, total_nanos),
            first: std::time::Duration::from_nanos(first_nanos),
            deadline: None,
        };
        let started = std::time::Instant::now();
        let attempts = schedule.attempts();
        prop_assert!(attempts >= 1);
        prop_assert!(started.elapsed() < std::time::Duration::from_millis(50));
    }
}

#[test]
fn a_retry_schedule_counts_the_waits_that_fit() {
    let schedule = |total: u64, first_ms: u64| trailkey::retry::Backoff {
        total: std::time::Duration::from_secs(total),
        first: std::time::Duration::from_millis(first_ms),
        deadline: None,
    };
    // 1 + 2 + 4 + 8 = 15 s, then 10 s each: 120 s is 4 doubling waits and 10 more.
    assert_eq!(schedule(120, 1000).attempts(), 15);
    assert_eq!(schedule(0, 1000).attempts(), 1);
    assert_eq!(schedule(1, 1000).attempts(), 2);
    assert_eq!(schedule(120, 0).attempts(), 1);
    assert_eq!(schedule(3600, 1000).attempts(), 1 + 4 + 358);
}

// ---------------------------------------------------------------------------
// (d) Outside text cannot write to the terminal: whatever AWS or another
// policy author puts in a Sid, an ARN, a value, a finding or an error, the
// human output holds no control character but the renderer's own line
// breaks and colour codes, and every line starts as the renderer starts it.

use trailkey::aws::AwsError;
use trailkey::plan::{Action, Address, Change, Finding, Level, Plan, Target};
use trailkey::policy::{ChangedStatement, FieldChange, StatementDiff};

/// Text an attacker might choose: any characters, with control characters,
/// bidi overrides and forged line starts made likely.
fn hostile() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        3 => any::<char>().prop_map(String::from),
        2 => (0u32..0x20).prop_map(|c| char::from_u32(c).unwrap().to_string()),
        1 => (0x7fu32..0xa0).prop_map(|c| char::from_u32(c).unwrap().to_string()),
        1 => prop::sample::select(vec![
            "\u{202a}", "\u{202e}", "\u{2066}", "\u{2069}", "\u{1b}[31m", "\u{1b}[2J",
            "\u{2028}", "\u{2029}", "\u{200f}", "\u{61c}",
            "\nPlan: 0 to add, 0 to change, 0 to destroy.", "\nhint: ", "\nerror: ",
            "\r\nWarning: ", "\nNo changes.", "a", "arn:aws:kms:us-east-1:1:key/x",
        ])
        .prop_map(str::to_owned),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|p| p.concat())
}

fn hostile_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        hostile().prop_map(Value::String),
        prop::collection::vec(hostile(), 0..3).prop_map(|v| json!(v)),
        (hostile(), hostile()).prop_map(|(k, v)| json!({ k: v })),
    ]
}

/// The colour codes trailkey's renderers write (`src/render.rs`,
/// `src/error.rs`), each style's start and reset.
fn renderer_codes() -> Vec<String> {
    use anstyle::{AnsiColor, Style};
    let mut codes: Vec<String> = [
        AnsiColor::Green.on_default(),
        AnsiColor::Yellow.on_default(),
        AnsiColor::Red.on_default(),
        AnsiColor::Green.on_default().bold(),
        AnsiColor::Yellow.on_default().bold(),
        AnsiColor::Red.on_default().bold(),
        AnsiColor::Cyan.on_default().bold(),
        Style::new().bold(),
        Style::new().dimmed(),
    ]
    .iter()
    .flat_map(|s| [format!("{s}"), format!("{s:#}")])
    .collect();
    codes.sort_by_key(|c| std::cmp::Reverse(c.len()));
    codes
}

/// `text` without the renderer's colour codes has no control character
/// (C0, DEL, C1) but `\n`, and no bidi override; its lines, each starting
/// with one of `starts`, are returned.
fn check_clean(text: &str, starts: &[&str]) -> Result<Vec<String>, TestCaseError> {
    let mut plain = text.to_owned();
    for code in renderer_codes() {
        plain = plain.replace(&code, "");
    }
    for c in plain.chars() {
        prop_assert!(
            c == '\n'
                || !(c.is_control()
                    || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')),
            "{c:?} in:\n{text}"
        );
    }
    let lines: Vec<String> = plain.lines().map(str::to_owned).collect();
    for line in &lines {
        prop_assert!(
            line.is_empty() || starts.iter().any(|s| line.starts_with(s)),
            "line {line:?} in:\n{text}"
        );
    }
    Ok(lines)
}

fn hostile_plan() -> impl Strategy<Value = Plan> {
    let target = (
        hostile(),
        hostile(),
        hostile(),
        hostile(),
        prop::option::of(hostile()),
    )
        .prop_map(|(region, account, trail_arn, alias, key_arn)| Target {
            region,
            management_account: "333333333333".to_owned(),
            security_tooling_account: account.clone(),
            key_account: account,
            trail_arn,
            alias,
            key_arn,
        });
    let diff = (
        prop::collection::vec(hostile(), 0..3),
        prop::collection::vec(
            (hostile(), hostile(), hostile_value(), hostile_value()),
            0..3,
        ),
        prop::collection::vec(hostile(), 0..3),
        prop::collection::vec(hostile(), 0..3),
    )
        .prop_map(|(added, changed, removed, kept)| StatementDiff {
            added,
            changed: changed
                .into_iter()
                .map(|(sid, path, before, after)| ChangedStatement {
                    sid,
                    fields: vec![FieldChange {
                        path,
                        before,
                        after,
                    }],
                })
                .collect(),
            removed,
            kept,
        });
    let change = |address: Address, action: Action| {
        (
            prop::collection::vec((hostile(), hostile_value(), hostile_value()), 0..3),
            prop::collection::vec(hostile(), 0..2),
        )
            .prop_map(move |(fields, reasons)| {
                let mut before = Map::new();
                let mut after = Map::new();
                for (k, b, a) in fields {
                    before.insert(k.clone(), b);
                    after.insert(k, a);
                }
                Change {
                    address,
                    action,
                    before: Value::Object(before),
                    after: Value::Object(after),
                    reasons,
                    statements: None,
                    steps: Vec::new(),
                }
            })
    };
    let policy = (diff, prop::collection::vec(hostile(), 0..2)).prop_map(|(d, reasons)| Change {
        address: Address::KmsKeyPolicy,
        action: Action::Update,
        before: Value::Null,
        after: Value::Null,
        reasons,
        statements: Some(d),
        steps: Vec::new(),
    });
    let findings = prop::collection::vec(
        (any::<bool>(), hostile()).prop_map(|(warning, message)| Finding {
            level: if warning { Level::Warning } else { Level::Note },
            message,
        }),
        0..3,
    );
    (
        target,
        prop::option::of(policy),
        prop::option::of(change(Address::KmsKey, Action::Create)),
        prop::option::of(change(Address::TrailEncryption, Action::Update)),
        prop::option::of(change(Address::KmsAlias, Action::Delete)),
        findings,
    )
        .prop_map(|(target, policy, key, trail, alias, findings)| Plan {
            format_version: trailkey::plan::FORMAT_VERSION,
            target,
            changes: [policy, key, trail, alias].into_iter().flatten().collect(),
            findings,
            key: None,
        })
}

/// How the human plan starts its lines.
const PLAN_STARTS: &[&str] = &[
    "trail:  ",
    "key:    ",
    "        ",
    "trailkey will perform the following actions:",
    "  ",
    "Plan: ",
    "No changes. ",
    "Warning: ",
    "Note: ",
];

proptest! {
    #![proptest_config(cases(300))]

    #[test]
    fn outside_text_in_a_plan_is_escaped(plan in hostile_plan()) {
        let text = trailkey::render::plan_human(&plan);
        let lines = check_clean(&text, PLAN_STARTS)?;
        let summaries = lines.iter().filter(|l| l.starts_with("Plan:")).count();
        let unchanged = lines.iter().filter(|l| l.starts_with("No changes.")).count();
        prop_assert_eq!((summaries, unchanged), if plan.has_changes() { (1, 0) } else { (0, 1) }, "{}", text);
        let found = lines.iter().filter(|l| l.starts_with("Warning:") || l.starts_with("Note:")).count();
        prop_assert_eq!(found, plan.findings.len(), "{}", text);
        prop_assert_eq!(lines.iter().filter(|l| l.starts_with("trail:")).count(), 1, "{}", text);

        let result = trailkey::apply::ApplyResult {
            key_arn: plan.target.key_arn.clone(),
            trail_kms_key_id: plan.target.key_arn.clone(),
            converged: true,
            findings: plan.findings.clone(),
            delivery: None,
        };
        let applied = trailkey::render::apply_human(&[], &plan, &result);
        check_clean(&applied, &["Apply complete! ", "The trail ", "Warning: ", "Note: "])?;
        let destroyed = trailkey::render::destroy_human(&[], &plan, &result);
        check_clean(&destroyed, &["Destroy complete! ", "The trail ", "The key "])?;
    }

    #[test]
    fn outside_text_in_an_error_is_escaped(
        context in hostile(),
        code in hostile(),
        message in hostile(),
        check in hostile(),
        hint in hostile(),
        note in hostile(),
    ) {
        let errors = [
            Error::aws(context.clone(), AwsError::new("GetKeyPolicy", code, message)),
            Error::aws(context, AwsError::new("PutKeyPolicy", "AccessDeniedException", "x")).noting(&note),
            Error::check(check.clone(), hint.clone()).noting(&note),
            Error::conflict(check.clone(), hint.clone()),
            Error::usage(check, hint),
        ];
        for e in errors {
            let text = e.render_styled();
            let lines = check_clean(&text, &["error: ", "  ", "hint: "])?;
            prop_assert_eq!(lines.iter().filter(|l| l.starts_with("error:")).count(), 1, "{}", text);
            prop_assert!(lines.last().is_some_and(|l| l.starts_with("hint: ")), "{}", text);
            prop_assert_eq!(lines.iter().filter(|l| l.starts_with("hint:")).count(), 1, "{}", text);
        }
    }
}

#[test]
fn a_forged_plan_line_in_a_sid_is_shown_escaped() {
    let sid = "TrailkeyZ\u{1b}[31m\nPlan: 0 to add, 0 to change, 0 to destroy.";
    let plan = Plan {
        format_version: trailkey::plan::FORMAT_VERSION,
        target: Target {
            region: "us-east-1".to_owned(),
            management_account: "333333333333".to_owned(),
            security_tooling_account: "111111111111".to_owned(),
            key_account: "111111111111".to_owned(),
            trail_arn: "arn:aws:cloudtrail:us-east-1:333333333333:trail/org-trail".to_owned(),
            alias: "alias/cloudtrail-org-key".to_owned(),
            key_arn: Some("arn:aws:kms:us-east-1:111111111111:key/\u{1b}[2J".to_owned()),
        },
        changes: vec![Change {
            address: Address::KmsKeyPolicy,
            action: Action::Update,
            before: Value::Null,
            after: Value::Null,
            reasons: Vec::new(),
            statements: Some(StatementDiff {
                added: Vec::new(),
                changed: Vec::new(),
                removed: vec![sid.to_owned()],
                kept: vec![sid.to_owned()],
            }),
            steps: Vec::new(),
        }],
        findings: vec![Finding {
            level: Level::Warning,
            message: format!("statement {sid} is odd"),
        }],
        key: None,
    };
    let text = anstream::adapter::strip_str(&trailkey::render::plan_human(&plan)).to_string();
    assert!(!text.contains('\u{1b}'), "{text}");
    assert_eq!(
        text.lines().filter(|l| l.starts_with("Plan:")).count(),
        1,
        "{text}"
    );
    let shown = r"TrailkeyZ\u{1b}[31m\nPlan: 0 to add, 0 to change, 0 to destroy.";
    assert!(
        text.contains(&format!("- statement {shown} (no longer")),
        "{text}"
    );
    assert!(
        text.contains(&format!("= statement \"{shown}\" (not managed")),
        "{text}"
    );
    assert!(
        text.contains(&format!("Warning: statement {shown} is odd")),
        "{text}"
    );
    assert!(text.contains(r"key/\u{1b}[2J"), "{text}");

    let e = Error::aws(
        "reading the key policy",
        AwsError::new("GetKeyPolicy", "Bad\u{1b}[2J", format!("no\n{sid}")),
    );
    let text = e.render_styled();
    let shown = format!(r"AWS GetKeyPolicy returned Bad\u{{1b}}[2J: no\n{shown}");
    assert!(text.contains(&shown), "{text}");
}
