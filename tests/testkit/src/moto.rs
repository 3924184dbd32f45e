//! The harness: a moto server per test on 127.0.0.1 (free port, stopped on
//! drop), the boto3 fixture (`fixture.py`) to seed and read back AWS state
//! independently of trailkey, the real-AWS layer in front of it, and what
//! the tests read runs and states with.

use std::cell::RefCell;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::isolate_aws_env;
use crate::proxy::{self, Proxy};
use crate::rules;

/// The root of trailkey's repository.
pub fn repo_root() -> PathBuf {
    let kit = Path::new(env!("CARGO_MANIFEST_DIR"));
    kit.parent()
        .and_then(Path::parent)
        .expect("the test kit is tests/testkit of the repository")
        .to_owned()
}

/// A file of the test kit (`fixture.py`, `tty_stdin.py`, ...).
pub fn kit_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
}

/// The `trailkey` binary under test: Cargo tells the integration tests it
/// runs where it built it (`CARGO_BIN_EXE_trailkey`); a test binary run by
/// hand (under strace, a debugger) looks next to the directory it is in,
/// where Cargo puts both (`target/debug/deps/<test>`, `target/debug/trailkey`).
pub fn trailkey_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("CARGO_BIN_EXE_trailkey") {
        return PathBuf::from(bin);
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|test| Some(test.parent()?.parent()?.join("trailkey")))
        .filter(|bin| bin.exists());
    beside.expect("CARGO_BIN_EXE_trailkey is not set and no trailkey is beside the test binary: run the tests with `cargo test`")
}

/// The venv with moto and boto3 (`make test` creates it).
pub fn venv() -> PathBuf {
    let dir = std::env::var_os("TRAILKEY_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv"));
    assert!(
        dir.join("bin/moto_server").exists(),
        "no moto in {}: run `make test`, which installs tests/requirements.txt into .venv",
        dir.display()
    );
    dir
}

fn fixture_script() -> PathBuf {
    kit_file("fixture.py")
}

/// How long the real-AWS layer hides a new key, alias or key policy in the
/// end-to-end scenarios ([`Moto::layer`]).
pub const LAYER_WINDOW: Duration = Duration::from_secs(1);

/// A moto server on a free loopback port, stopped when dropped.
pub struct Moto {
    child: Child,
    pub endpoint: String,
    pub dir: tempfile::TempDir,
    /// The real-AWS rules layer in front of it, started on first use.
    layer: std::cell::OnceCell<Proxy>,
    /// The fixture's process, started on first use.
    fixture: RefCell<Option<Fixture>>,
    /// What the fixture set up that the layer's rules need to know
    /// (bucket owners and Regions, trails' buckets).
    pub world: rules::World,
}

impl Moto {
    pub fn start() -> Moto {
        let venv = venv();
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("temp dir");
            // Port 0: moto's server binds a free port itself and says which
            // on stderr. A port picked here and bound later could be taken
            // in between by another test's server, which would then answer
            // as this moto.
            let mut child = Command::new(venv.join("bin/moto_server"))
                .args(["-H", "127.0.0.1", "-p", "0"])
                .env("MOTO_RECORDER_FILEPATH", dir.path().join("recording"))
                .current_dir(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start moto_server");
            let stderr = child.stderr.take().expect("moto_server's stderr");
            let Some(port) = bound_port(stderr) else {
                let _ = child.kill();
                let _ = child.wait();
                continue;
            };
            let mut moto = Moto {
                child,
                endpoint: format!("http://127.0.0.1:{port}"),
                dir,
                layer: std::cell::OnceCell::new(),
                fixture: RefCell::new(None),
                world: rules::World::default(),
            };
            if moto.wait_ready(port) {
                moto.world.moto_endpoint(&moto.endpoint);
                return moto;
            }
        }
        panic!("moto_server did not start after 5 tries");
    }

    fn wait_ready(&mut self, port: u16) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false; // exited: try again
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Runs `fixture.py <args> --endpoint <moto>` and returns its JSON.
    pub fn fixture(&self, args: &[&str]) -> Value {
        let answer = self.fixture_at(&self.endpoint, args);
        self.world.learn(&answer);
        answer
    }

    /// Runs `fixture.py <args>` with its requests sent through `proxy`,
    /// which must be in front of this moto.
    pub fn fixture_via(&self, proxy: &Proxy, args: &[&str]) -> Value {
        assert_eq!(
            proxy.upstream, self.endpoint,
            "the proxy forwards to another moto"
        );
        let answer = self.fixture_at(&proxy.endpoint, args);
        self.world.learn(&answer);
        answer
    }

    fn fixture_at(&self, endpoint: &str, args: &[&str]) -> Value {
        self.fixture
            .borrow_mut()
            .get_or_insert_with(|| Fixture::start(&self.endpoint))
            .run(endpoint, args)
    }

    /// Sends `calls` in order from one boto3 process (`fixture.py calls`),
    /// to this moto or through `proxy`, and returns one result per call:
    /// `op`, `ok`, `response` or `code` and `message`, `attempts`, `at`.
    /// Each call is `{"op": "kms:DescribeKey", "params": {...}}`, plus
    /// `"until_ok": <seconds>` to repeat it until it succeeds or that long
    /// has passed; `$KeyId` and `$Arn` in the params stand for the key of
    /// the last successful `kms:CreateKey` before it.
    pub fn calls(&self, proxy: Option<&Proxy>, calls: &Value) -> Vec<Value> {
        self.calls_in(None, proxy, calls)
    }

    /// [`Moto::calls`], signed by a role of `account`, as someone working
    /// in that account (e.g. the Log Archive account, owner of the bucket).
    pub fn calls_as(&self, account: &str, proxy: Option<&Proxy>, calls: &Value) -> Vec<Value> {
        self.calls_in(Some(account), proxy, calls)
    }

    /// [`Moto::calls_as`], signed by the role `role` (a name, with its path
    /// if it has one) of `account`, in a session named `trailkey-fixture`.
    pub fn calls_as_role(
        &self,
        account: &str,
        role: &str,
        proxy: Option<&Proxy>,
        calls: &Value,
    ) -> Vec<Value> {
        self.calls_with(Some(account), Some(role), proxy, calls)
    }

    fn calls_in(&self, account: Option<&str>, proxy: Option<&Proxy>, calls: &Value) -> Vec<Value> {
        self.calls_with(account, None, proxy, calls)
    }

    fn calls_with(
        &self,
        account: Option<&str>,
        role: Option<&str>,
        proxy: Option<&Proxy>,
        calls: &Value,
    ) -> Vec<Value> {
        let json = calls.to_string();
        let mut args = vec!["calls", "--json", json.as_str()];
        if let Some(account) = account {
            args.extend(["--account", account]);
        }
        if let Some(role) = role {
            args.extend(["--role", role]);
        }
        let out = match proxy {
            Some(proxy) => self.fixture_via(proxy, &args),
            None => self.fixture(&args),
        };
        out["results"]
            .as_array()
            .expect("calls prints results")
            .clone()
    }

    /// Credentials of a session of the role `role` (a name, with its path if
    /// it has one) of `account`, from an `sts:AssumeRole` the fixture makes
    /// with the default credentials through `via`, which must be in front
    /// of this moto: `via`'s rules then know the credentials' account (the
    /// layer tells a request's account from the `sts:AssumeRole` answers in
    /// its traffic). moto lets the default credentials assume any role of
    /// any account, existing or not.
    pub fn assume_role(&self, account: &str, role: &str, via: &Proxy) -> Credentials {
        let v = self.fixture_via(via, &["assume", "--account", account, "--role", role]);
        let text = |field: &str| {
            v[field]
                .as_str()
                .unwrap_or_else(|| panic!("fixture.py assume gives {field}: {v:#}"))
                .to_owned()
        };
        Credentials {
            access_key_id: text("access_key_id"),
            secret_access_key: text("secret_access_key"),
            session_token: text("session_token"),
            role_arn: text("role_arn"),
            account: account.to_owned(),
        }
    }

    /// `service:Action` of each request through `proxy` (in front of this
    /// moto) that credentials of `account` signed, the fixture's own left
    /// out, in order ([`rules::World::signed_in`]): what the client sent,
    /// whichever credentials the layer sent moto in its place. E.g. that a
    /// run as the Security Tooling account ([`Run::as_account`](crate::Run::as_account))
    /// signed nothing with the management account's credentials:
    /// `moto.requests_signed_in(moto.layer(), &seed.management)` is empty.
    pub fn requests_signed_in(&self, proxy: &Proxy, account: &str) -> Vec<String> {
        self.world
            .signed_in(&proxy.exchanges(), account)
            .iter()
            .map(|e| e.call())
            .collect()
    }

    /// Asserts that what went through the real-AWS layer, the fixture's own
    /// requests left out, was a run from Security Tooling on its own
    /// credentials ([`Run::credentials`](crate::Run::credentials) of
    /// [`Moto::assume_role`] there): no `AssumeRole`, nothing signed with
    /// the management account's credentials.
    pub fn assert_security_toolings_own(&self, seed: &Seed) {
        let sent: Vec<String> = self
            .layer()
            .exchanges()
            .iter()
            .filter(|e| !rules::from_the_fixture(&e.request))
            .map(|e| e.call())
            .collect();
        assert!(
            !sent
                .iter()
                .any(|c| c == "sts:AssumeRole" || c.ends_with(":AssumeRole")),
            "{sent:?}"
        );
        let by_management = self.requests_signed_in(self.layer(), &seed.management);
        assert!(by_management.is_empty(), "{by_management:?}");
    }

    /// A proxy in front of this moto that answers as real AWS does where
    /// moto is lenient ([`rules::real_aws`]); `window` is how long a new
    /// KMS key or alias stays unseen, and how long CloudTrail still checks a
    /// key's previous policy after `PutKeyPolicy`.
    pub fn real_aws(&self, window: Duration) -> Proxy {
        self.proxy_with(rules::real_aws(window, &self.world))
    }

    /// Seeds an organization and writes a config; returns the seed facts.
    pub fn seed(&self) -> Seed {
        let config = self.dir.path().join("trailkey.toml");
        self.seed_with(&["--write-config", config.to_str().unwrap()])
            .0
    }

    /// Seeds an organization with `fixture.py seed <args>` (e.g.
    /// `--security-tooling-name Audit`, `--extra-account Dev`); it writes a
    /// config only if `args` has `--write-config`. `Seed::config` is
    /// `<moto dir>/trailkey.toml` either way.
    /// Returns the seed facts and the fixture's whole JSON (`accounts`,
    /// `organization_id`, ...).
    pub fn seed_with(&self, args: &[&str]) -> (Seed, Value) {
        let config = self.dir.path().join("trailkey.toml");
        let mut all = vec!["seed"];
        all.extend_from_slice(args);
        let v = self.fixture(&all);
        let seed = Seed {
            config,
            management: v["management_account"].as_str().unwrap().to_owned(),
            security_tooling: v["security_tooling_account"].as_str().unwrap().to_owned(),
            log_archive: v["log_archive_account"].as_str().unwrap().to_owned(),
            trail_name: v["trail_name"].as_str().unwrap().to_owned(),
            trail_arn: v["trail_arn"].as_str().unwrap().to_owned(),
            bucket: v["bucket"].as_str().unwrap().to_owned(),
        };
        (seed, v)
    }

    /// Makes the seeded organization a Control Tower landing zone: Control
    /// Tower's trail `aws-controltower-BaselineCloudTrail` and its bucket
    /// `aws-controltower-logs-<Log Archive ID>-<Region>`, owned by the Log
    /// Archive account (`fixture.py control-tower`, which the World learns
    /// as it learns `seed`'s trail and bucket), and the World's landing zone
    /// ([`rules::World::landing_zone`]) over them, whose operations take
    /// `operation_time`. The landing zone is as a 3.3 launch leaves it
    /// (its manifest as "View the details of your landing zone manifest
    /// file", AWS Control Tower User Guide, describes it):
    /// `ACTIVE`, `IN_SYNC`, its latest version, no KMS key, governing
    /// the seed's Region, with the Log Archive and Security Tooling
    /// (audit) accounts in their places; AWS Config's requests to a key
    /// come from the Log Archive account. Returns it.
    pub fn control_tower(&self, seed: &Seed, operation_time: Duration) -> rules::LandingZone {
        let v = self.fixture(&["control-tower", "--log-archive", &seed.log_archive]);
        let text = |field: &str| {
            v[field]
                .as_str()
                .unwrap_or_else(|| panic!("fixture.py control-tower gives {field}: {v:#}"))
                .to_owned()
        };
        let region = text("region");
        let zone = rules::LandingZone {
            arn: format!(
                "arn:aws:controltower:{region}:{}:landingzone/{}",
                seed.management,
                rules::landing_zone_id()
            ),
            home_region: region.clone(),
            management_account: seed.management.clone(),
            organization_id: text("organization_id"),
            version: "3.3".to_owned(),
            latest_available_version: "3.3".to_owned(),
            status: "ACTIVE".to_owned(),
            drift_status: "IN_SYNC".to_owned(),
            manifest: serde_json::json!({
                "governedRegions": [region],
                "organizationStructure": {
                    "security": {"name": "Security"},
                    "sandbox": {"name": "Sandbox"},
                },
                "centralizedLogging": {
                    "accountId": seed.log_archive,
                    "configurations": {
                        "loggingBucket": {"retentionDays": 365},
                        "accessLoggingBucket": {"retentionDays": 3650},
                    },
                    "enabled": true,
                },
                "securityRoles": {"accountId": seed.security_tooling},
                "accessManagement": {"enabled": true},
            }),
            remediation_types: Vec::new(),
            trail_arn: text("trail_arn"),
            config_account: seed.log_archive.clone(),
            operation_time,
        };
        self.world.landing_zone(zone.clone());
        zone
    }

    /// A config for `seed`'s accounts with `[control_tower] landing_zone =
    /// true`, and `extra` TOML after it, written as `name` in this moto's
    /// directory.
    pub fn control_tower_config(&self, seed: &Seed, name: &str, extra: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(
            &path,
            format!(
                "region = \"us-east-1\"\n[accounts]\nsecurity_tooling = \"{}\"\nlog_archive = \"{}\"\nmanagement = \"{}\"\n[control_tower]\nlanding_zone = true\n{extra}",
                seed.security_tooling, seed.log_archive, seed.management
            ),
        )
        .expect("write the config");
        path
    }

    /// What someone does by hand to a key of the caller's account (the
    /// management account): `policy` put back without AWS Config's
    /// statement.
    pub fn drop_config_statement(&self, key_id: &str, policy: &Value) {
        let mut policy = policy.clone();
        policy["Statement"]
            .as_array_mut()
            .expect("a policy's statements")
            .retain(|s| s["Principal"]["Service"] != "config.amazonaws.com");
        let put = self.calls(
            None,
            &serde_json::json!([{"op": "kms:PutKeyPolicy", "params": {
                "KeyId": key_id, "PolicyName": "default", "Policy": policy.to_string()
            }}]),
        );
        assert_eq!(put[0]["ok"], true, "{put:#?}");
    }

    /// KMS state of the Security Tooling account and the trail, read by boto3.
    pub fn state(&self, seed: &Seed) -> Value {
        self.fixture(&[
            "state",
            "--security-tooling",
            &seed.security_tooling,
            "--trail",
            &seed.trail_name,
        ])
    }

    /// Starts moto's recorder, and forgets the calls the real-AWS layer
    /// answered itself so far.
    pub fn start_recording(&self) {
        self.fixture(&["recording", "start"]);
        self.world.forget_answered();
    }

    /// `recording show`, with the calls the real-AWS layer answered itself
    /// since `start_recording` (operations moto does not have) after moto's.
    fn recording(&self) -> Value {
        let answered: Vec<Value> = self
            .world
            .answered()
            .iter()
            .map(|a| {
                serde_json::json!({
                    "service": a.service, "action": a.action, "access_key": a.access_key
                })
            })
            .collect();
        let answered = Value::Array(answered).to_string();
        self.fixture(&["recording", "show", "--answered", &answered])
    }

    /// The writes among [`Moto::recorded`] ([`is_write`]), in order.
    pub fn recorded_writes(&self) -> Vec<String> {
        self.recorded()
            .into_iter()
            .filter(|c| is_write(c))
            .collect()
    }

    /// `service:Action` of every request recorded since `start_recording`,
    /// the fixture's own left out, those the layer answered itself included.
    pub fn recorded(&self) -> Vec<String> {
        self.recording()["requests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                format!(
                    "{}:{}",
                    r["service"].as_str().unwrap(),
                    r["action"].as_str().unwrap()
                )
            })
            .collect()
    }

    /// Every request recorded since `start_recording`, the fixture's own
    /// left out, as `recording show` prints them: `service`, `action`,
    /// `method`, `access_key` (the access key ID that signed it),
    /// `principal` (the ARN of those credentials) and, for `sts:AssumeRole`,
    /// `role_arn`. The calls the layer answered itself come last.
    pub fn recorded_requests(&self) -> Vec<Value> {
        self.recording()["requests"]
            .as_array()
            .expect("recording show lists requests")
            .clone()
    }

    /// The real-AWS rules layer ([`rules::real_aws`], [`LAYER_WINDOW`])
    /// in front of this moto, which every [`Run`](crate::Run) for it goes
    /// through unless it asks for another proxy or moto alone.
    pub fn layer(&self) -> &Proxy {
        self.layer.get_or_init(|| self.real_aws(LAYER_WINDOW))
    }

    /// A recording proxy in front of this moto, with the real-AWS rules
    /// ([`LAYER_WINDOW`]), for scenarios that read the traffic.
    pub fn proxy(&self) -> Proxy {
        self.layer_with(Vec::new())
    }

    /// The real-AWS layer in front of this moto, asking `first` first: for
    /// scenarios that need rules of their own (holds, delivery) and still
    /// run under the real-AWS rules.
    pub fn layer_with(&self, mut first: Vec<Box<dyn proxy::Rule>>) -> Proxy {
        first.extend(rules::real_aws(LAYER_WINDOW, &self.world));
        self.proxy_with(first)
    }

    /// A proxy in front of this moto that asks only `rules` about each
    /// request: for tests of one rule against moto.
    pub fn proxy_with(&self, rules: Vec<Box<dyn proxy::Rule>>) -> Proxy {
        Proxy::with_rules(&self.endpoint, rules)
    }
}

/// A `fixture.py serve` process: one Python and boto3 start for all the
/// fixture's commands of a test, instead of one for each.
struct Fixture {
    child: Child,
    commands: ChildStdin,
    answers: BufReader<ChildStdout>,
}

impl Fixture {
    fn start(endpoint: &str) -> Fixture {
        let mut cmd = Command::new(venv().join("bin/python"));
        cmd.arg(fixture_script())
            .arg("serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        isolate_aws_env(&mut cmd, endpoint);
        let mut child = cmd.spawn().expect("start fixture.py serve");
        let commands = child.stdin.take().expect("piped stdin");
        let answers = BufReader::new(child.stdout.take().expect("piped stdout"));
        Fixture {
            child,
            commands,
            answers,
        }
    }

    /// `fixture.py <args> --endpoint <endpoint>`: its JSON.
    fn run(&mut self, endpoint: &str, args: &[&str]) -> Value {
        let mut argv: Vec<&str> = args.to_vec();
        argv.extend(["--endpoint", endpoint]);
        let mut line = serde_json::to_string(&argv).expect("arguments as JSON");
        line.push('\n');
        self.commands
            .write_all(line.as_bytes())
            .and_then(|()| self.commands.flush())
            .expect("send a command to fixture.py serve");
        let mut answer = String::new();
        let read = self
            .answers
            .read_line(&mut answer)
            .expect("read fixture.py serve");
        assert!(read > 0, "fixture.py serve ended before answering {args:?}");
        let answer: Value = serde_json::from_str(&answer).expect("fixture.py serve answers JSON");
        assert_eq!(
            answer["status"],
            0,
            "fixture.py {args:?} failed: {}",
            answer["stderr"].as_str().unwrap_or_default()
        );
        serde_json::from_str(answer["stdout"].as_str().unwrap_or_default())
            .expect("fixture.py prints JSON")
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.fixture.take();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The role the fixture assumes in a member account unless told another
/// (`fixture.py`'s `DEFAULT_ROLE`).
pub const DEFAULT_ROLE: &str = "AWSControlTowerExecution";

/// Credentials of a role session ([`Moto::assume_role`]).
#[derive(Debug, Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    /// `arn:aws:iam::<account>:role/<role>`.
    pub role_arn: String,
    /// The account the credentials act in.
    pub account: String,
}

pub struct Seed {
    pub config: PathBuf,
    pub management: String,
    pub security_tooling: String,
    pub log_archive: String,
    pub trail_name: String,
    pub trail_arn: String,
    /// The trail's bucket, owned by the Log Archive account.
    pub bucket: String,
}

impl Seed {
    /// Adds `roles.log_archive` (a role name) to the config; returns the
    /// role's ARN in the Log Archive account.
    pub fn add_log_archive_role(&self) -> String {
        let text = std::fs::read_to_string(&self.config).unwrap();
        std::fs::write(
            &self.config,
            format!("{text}\n[roles]\nlog_archive = \"TrailkeyLogArchiveRead\"\n"),
        )
        .unwrap();
        format!(
            "arn:aws:iam::{}:role/TrailkeyLogArchiveRead",
            self.log_archive
        )
    }

    /// Adds `roles.management` (a role in the management account) to the
    /// config; returns the role's ARN.
    pub fn add_management_role(&self) -> String {
        let text = std::fs::read_to_string(&self.config).unwrap();
        let role = format!("arn:aws:iam::{}:role/TrailkeyRunner", self.management);
        std::fs::write(
            &self.config,
            format!("{text}\n[roles]\nmanagement = \"{role}\"\n"),
        )
        .unwrap();
        role
    }
}

/// A CloudFormation template of this repository (`path` from its root) as
/// JSON, read by PyYAML (in the test venv, with moto); the short-form tags
/// become `{"Fn::<tag>": value}`: `!Ref X` is `{"Fn::Ref": "X"}`,
/// `!GetAtt A.B` is `{"Fn::GetAtt": "A.B"}`.
pub fn cloudformation(path: &str) -> Value {
    let script = r#"
import json, sys, yaml
class Loader(yaml.SafeLoader):
    pass
def tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {"Fn::" + suffix: value}
Loader.add_multi_constructor("!", tag)
print(json.dumps(yaml.load(open(sys.argv[1]), Loader=Loader)))
"#;
    let file = repo_root().join(path);
    let out = Command::new(venv().join("bin/python"))
        .arg("-c")
        .arg(script)
        .arg(&file)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The template at `path` (as [`cloudformation`] reads it) as CloudFormation
/// deploys it with `parameters`, the others at their defaults: its
/// conditions evaluated, the resources and outputs whose condition is false
/// left out, each `Fn::If` replaced by the branch it takes, and
/// `AWS::NoValue` removed from the lists and objects that hold it. The other
/// intrinsic functions stay as they are. A parameter the template does not
/// have, or a value outside its `AllowedValues`, fails.
pub fn cloudformation_with(path: &str, parameters: &[(&str, &str)]) -> Value {
    let template = cloudformation(path);
    let declared = template["Parameters"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut values: std::collections::BTreeMap<String, String> = declared
        .iter()
        .filter_map(|(name, p)| Some((name.clone(), p.get("Default")?.as_str()?.to_owned())))
        .collect();
    for (name, value) in parameters {
        let p = declared
            .get(*name)
            .unwrap_or_else(|| panic!("{path}: no parameter {name}"));
        if let Some(allowed) = p.get("AllowedValues").and_then(Value::as_array) {
            assert!(
                allowed.iter().any(|a| a == value),
                "{path}: {name} = {value} is not among {allowed:?}"
            );
        }
        values.insert((*name).to_owned(), (*value).to_owned());
    }
    let definitions = template["Conditions"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let conditions: std::collections::BTreeMap<String, bool> = definitions
        .keys()
        .map(|name| {
            (
                name.clone(),
                condition(path, name, &definitions, &values, 0),
            )
        })
        .collect();
    let holds = |entity: &Value| match entity.get("Condition") {
        None => true,
        Some(Value::String(name)) => *conditions
            .get(name)
            .unwrap_or_else(|| panic!("{path}: no condition {name}")),
        Some(other) => panic!("{path}: a Condition that is not a name: {other}"),
    };
    let mut resolved = template.clone();
    for section in ["Resources", "Outputs"] {
        if let Some(entities) = template[section].as_object() {
            let kept: serde_json::Map<String, Value> = entities
                .iter()
                .filter(|(_, e)| holds(e))
                .map(|(name, e)| {
                    let e = resolve_if(path, e, &conditions)
                        .unwrap_or_else(|| panic!("{path}: {section}.{name} is AWS::NoValue"));
                    (name.clone(), e)
                })
                .collect();
            resolved[section] = Value::Object(kept);
        }
    }
    resolved
}

/// The value of the condition `name` among `definitions`, with the
/// parameters' `values`.
fn condition(
    path: &str,
    name: &str,
    definitions: &serde_json::Map<String, Value>,
    values: &std::collections::BTreeMap<String, String>,
    depth: usize,
) -> bool {
    assert!(
        depth < 32,
        "{path}: the conditions refer to each other in a loop"
    );
    let definition = definitions
        .get(name)
        .unwrap_or_else(|| panic!("{path}: no condition {name}"));
    evaluate(path, definition, definitions, values, depth + 1)
}

fn evaluate(
    path: &str,
    expression: &Value,
    definitions: &serde_json::Map<String, Value>,
    values: &std::collections::BTreeMap<String, String>,
    depth: usize,
) -> bool {
    let operand = |v: &Value| -> String {
        match v {
            Value::String(s) => s.clone(),
            Value::Object(o) if o.len() == 1 && o.contains_key("Fn::Ref") => {
                let name = o["Fn::Ref"].as_str().unwrap();
                values
                    .get(name)
                    .unwrap_or_else(|| panic!("{path}: no value for {name} in a condition"))
                    .clone()
            }
            other => panic!("{path}: an operand this reader does not evaluate: {other}"),
        }
    };
    let list = |v: &Value| -> Vec<Value> {
        v.as_array()
            .unwrap_or_else(|| panic!("{path}: not a list: {v}"))
            .clone()
    };
    let object = expression
        .as_object()
        .filter(|o| o.len() == 1)
        .unwrap_or_else(|| panic!("{path}: not a condition function: {expression}"));
    let (function, argument) = object.iter().next().unwrap();
    let all = |v: &Value| -> Vec<bool> {
        list(v)
            .iter()
            .map(|e| evaluate(path, e, definitions, values, depth + 1))
            .collect()
    };
    match function.as_str() {
        "Fn::Equals" => {
            let pair = list(argument);
            assert_eq!(pair.len(), 2, "{path}: {expression}");
            operand(&pair[0]) == operand(&pair[1])
        }
        "Fn::Not" => {
            let one = all(argument);
            assert_eq!(one.len(), 1, "{path}: {expression}");
            !one[0]
        }
        "Fn::And" => all(argument).into_iter().all(|b| b),
        "Fn::Or" => all(argument).into_iter().any(|b| b),
        "Fn::Condition" => condition(path, argument.as_str().unwrap(), definitions, values, depth),
        other => panic!("{path}: a condition function this reader does not evaluate: {other}"),
    }
}

/// `value` with each `Fn::If` replaced by its branch; `None` for
/// `AWS::NoValue`, which leaves the list or object that holds it.
fn resolve_if(
    path: &str,
    value: &Value,
    conditions: &std::collections::BTreeMap<String, bool>,
) -> Option<Value> {
    match value {
        Value::Object(o)
            if o.len() == 1 && o.get("Fn::Ref") == Some(&Value::from("AWS::NoValue")) =>
        {
            None
        }
        Value::Object(o) if o.len() == 1 && o.contains_key("Fn::If") => {
            let branches = o["Fn::If"]
                .as_array()
                .filter(|a| a.len() == 3)
                .unwrap_or_else(|| {
                    panic!("{path}: an Fn::If without a condition and two branches: {value}")
                });
            let name = branches[0].as_str().unwrap();
            let holds = *conditions
                .get(name)
                .unwrap_or_else(|| panic!("{path}: no condition {name}"));
            resolve_if(path, &branches[if holds { 1 } else { 2 }], conditions)
        }
        Value::Object(o) => Some(Value::Object(
            o.iter()
                .filter_map(|(k, v)| Some((k.clone(), resolve_if(path, v, conditions)?)))
                .collect(),
        )),
        Value::Array(a) => Some(Value::Array(
            a.iter()
                .filter_map(|v| resolve_if(path, v, conditions))
                .collect(),
        )),
        other => Some(other.clone()),
    }
}

/// The text of each `<tag>...</tag>` element in `xml`.
pub fn xml_texts(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    xml.split(open.as_str())
        .skip(1)
        .map(|rest| {
            let (text, _) = rest
                .split_once(close.as_str())
                .unwrap_or_else(|| panic!("{open} without {close} in {xml}"));
            text.trim().to_owned()
        })
        .collect()
}

/// The credentials every `sts:AssumeRole` through `proxy` handed out (its
/// access key ID, secret key and session token each), with how many
/// AssumeRole calls there were: what must never appear in any output.
pub fn assumed_credentials(proxy: &Proxy) -> (usize, Vec<String>) {
    let assumed: Vec<_> = proxy
        .exchanges()
        .into_iter()
        .filter(|e| e.is("sts", "AssumeRole"))
        .collect();
    let mut secrets = Vec::new();
    for exchange in &assumed {
        let body = exchange.response_text();
        assert_eq!(exchange.response.status, 200, "{body}");
        for tag in ["AccessKeyId", "SecretAccessKey", "SessionToken"] {
            let values = xml_texts(&body, tag);
            assert_eq!(values.len(), 1, "one {tag} in {body}");
            assert!(values[0].len() >= 16, "a real {tag} in {body}");
            secrets.push(values[0].clone());
        }
    }
    (assumed.len(), secrets)
}

/// Whether the trail of a `fixture.py state` answer is back on SSE-S3 (no
/// `KmsKeyId`, or moto's `""` after `UpdateTrail(KmsKeyId="")`).
pub fn on_sse_s3(state: &Value) -> bool {
    state["trail"]["kms_key_id"]
        .as_str()
        .unwrap_or("")
        .is_empty()
}

/// The key with ARN `arn` in a `fixture.py state` answer.
pub fn key_with_arn<'s>(state: &'s Value, arn: &str) -> &'s Value {
    state["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["arn"] == arn)
        .unwrap_or_else(|| panic!("no key {arn} in {state:#}"))
}

/// The port moto's server says it bound (` * Running on
/// http://127.0.0.1:<port>`, werkzeug's line on stderr), within 30 s; the
/// rest of its stderr (a line per request) is read and dropped, so that the
/// pipe never fills. `None` when the server ends or says nothing in time.
fn bound_port(stderr: std::process::ChildStderr) -> Option<u16> {
    let (tell, told) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut tell = Some(tell);
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(at) = line.find("http://127.0.0.1:") {
                let digits: String = line[at + "http://127.0.0.1:".len()..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                if let (Some(tell), Ok(port)) = (tell.take(), digits.parse::<u16>()) {
                    let _ = tell.send(port);
                }
            }
        }
    });
    told.recv_timeout(Duration::from_secs(30)).ok()
}

/// API actions that change AWS state.
pub fn is_write(action: &str) -> bool {
    let action = action.rsplit(':').next().unwrap_or(action);
    !["Get", "Describe", "List", "AssumeRole"]
        .iter()
        .any(|p| action.starts_with(p))
}

/// A loopback TCP server that only counts connections: point
/// `AWS_ENDPOINT_URL` at it to prove a command makes no AWS request.
pub struct CountingServer {
    pub endpoint: String,
    count: Arc<AtomicUsize>,
}

impl CountingServer {
    pub fn start() -> CountingServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let count = Arc::new(AtomicUsize::new(0));
        let c = Arc::clone(&count);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                c.fetch_add(1, Ordering::SeqCst);
                drop(stream);
            }
        });
        CountingServer { endpoint, count }
    }

    pub fn connections(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

/// The keys tagged `ManagedBy = trailkey` in a `fixture.py state` answer.
pub fn trailkey_keys(state: &Value) -> Vec<&Value> {
    state["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["tags"]["ManagedBy"] == "trailkey")
        .collect()
}

/// Exit code, stdout and stderr of a finished command, as one snapshot text.
pub fn transcript(out: &std::process::Output) -> String {
    format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        out.status
            .code()
            .map_or("signal".to_owned(), |c| c.to_string()),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The latency proxy of `make bench` (`tests/bench/latency_proxy.py`) in
/// front of `endpoint`, adding `delay_ms` to every request: the process and
/// its endpoint.
pub fn latency_proxy(endpoint: &str, delay_ms: u32) -> (std::process::Child, String) {
    use std::io::BufRead as _;
    let upstream = endpoint.trim_start_matches("http://");
    let mut child = std::process::Command::new(venv().join("bin/python"))
        .arg(repo_root().join("tests/bench/latency_proxy.py"))
        .args(["--upstream", upstream, "--delay-ms", &delay_ms.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the latency proxy");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.as_mut().expect("piped"))
        .read_line(&mut line)
        .expect("the latency proxy says where it listens");
    let address = line
        .strip_prefix("listening ")
        .unwrap_or_else(|| panic!("latency proxy: {line:?}"))
        .trim()
        .to_owned();
    (child, format!("http://{address}"))
}

/// One call for [`Moto::calls`]: `{"op": op, "params": params}`.
pub fn call(op: &str, params: Value) -> Value {
    json!({"op": op, "params": params})
}

/// `ok`, or the error code, of each result of [`Moto::calls`].
pub fn outcomes(results: &[Value]) -> Vec<String> {
    results
        .iter()
        .map(|r| {
            if r["ok"] == true {
                "ok".to_owned()
            } else {
                r["code"].as_str().unwrap_or("?").to_owned()
            }
        })
        .collect()
}
