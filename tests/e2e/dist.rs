//! The release binary `make dist` builds runs on a bare root filesystem: in
//! an empty chroot holding only the binary, its config, a CA bundle,
//! `/etc/hosts` and, for the DNS check, `/etc/resolv.conf` (no shell, no
//! libc, no NSS module, no `/etc/nsswitch.conf`), against moto on the host's
//! loopback. `plan --detailed-exitcode` must exit 2 on a fresh seed with the
//! endpoint given as `127.0.0.1`, as `localhost` (resolved through
//! `/etc/hosts`) and as a name only a DNS server knows (a fake one on a
//! loopback address, named in `/etc/resolv.conf`).
//!
//! The binary is `TRAILKEY_DIST_BIN` (`make test` sets it to `make dist`'s
//! output and builds it first). The chroot needs root, or an unprivileged
//! user namespace (`unshare --map-root-user`); the fake DNS server needs
//! port 53 on a loopback address: root, or `net.ipv4.ip_unprivileged_port_start`
//! at most 53. Where one of these is missing, each test says so loudly and
//! stops; with `CI` set it fails instead, so CI cannot skip the check.

use std::ffi::OsStr;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use trailkey_testkit::lambda_api::{RuntimeApi, appending, update_trail_event};
use trailkey_testkit::{Moto, Run, Seed, on_sse_s3, trailkey_bin, transcript};

/// An endpoint where nothing answers, for runs that make no request.
const NOWHERE: &str = "http://127.0.0.1:9";

/// The CA bundle copied into the root (Debian's and Ubuntu's path; the SDK's
/// TLS client loads the system's roots from it).
const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Says why the check cannot run here: fails under CI, otherwise prints it
/// and lets the test pass. It writes to stderr itself, not with `eprintln!`,
/// which the test harness would capture and hide for a passing test.
fn unavailable(why: &str) {
    let msg = format!("static binary check NOT RUN: {why}");
    if std::env::var_os("CI").is_some() {
        panic!("{msg} (CI is set, so this is a failure)");
    }
    let _ = writeln!(std::io::stderr(), "\n!!!!!!!! {msg}\n");
}

/// The static binary, if `make dist` built it from this same source
/// (`--version` carries the git revision, `-dirty` included).
fn static_binary() -> Result<PathBuf, String> {
    let Some(bin) = std::env::var_os("TRAILKEY_DIST_BIN").map(PathBuf::from) else {
        return Err("TRAILKEY_DIST_BIN is not set: run `make test`, which builds it".into());
    };
    if !bin.exists() {
        return Err(format!("{} does not exist: run `make dist`", bin.display()));
    }
    let version = |program: &Path| {
        let out = Run::at(NOWHERE).program(program).arg("--version").run();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let (ours, dist) = (version(&trailkey_bin()), version(&bin));
    if ours != dist {
        return Err(format!(
            "{} is from other source ({:?}, the tests' build is {:?}): run `make dist`",
            bin.display(),
            dist.trim(),
            ours.trim()
        ));
    }
    Ok(bin)
}

/// An empty root: the binary, the seed's config, a CA bundle, `/etc/hosts`.
struct Root {
    dir: tempfile::TempDir,
}

impl Root {
    fn new(bin: &Path, seed: &Seed) -> Root {
        // Next to the binary, so that it can be hard-linked in: a copy is a
        // file open for writing, which a child forked meanwhile by another
        // test's thread holds until it execs, and running it then fails with
        // "Text file busy".
        let dir = tempfile::Builder::new()
            .prefix("chroot-")
            .tempdir_in(bin.parent().expect("the binary's directory"))
            .or_else(|_| tempfile::tempdir())
            .expect("temp dir");
        let root = dir.path();
        if std::fs::hard_link(bin, root.join("trailkey")).is_err() {
            std::fs::copy(bin, root.join("trailkey")).expect("copy the binary");
        }
        std::fs::copy(&seed.config, root.join("trailkey.toml")).expect("copy the config");
        std::fs::create_dir_all(root.join("etc/ssl/certs")).unwrap();
        std::fs::copy(CA_BUNDLE, root.join(&CA_BUNDLE[1..])).expect("copy the CA bundle");
        std::fs::write(
            root.join("etc/hosts"),
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
        )
        .unwrap();
        Root { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Every file in the root, relative to it, sorted.
    fn files(&self) -> Vec<String> {
        fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, root, out);
                } else {
                    out.push(path.strip_prefix(root).unwrap().display().to_string());
                }
            }
        }
        let mut out = Vec::new();
        walk(self.path(), self.path(), &mut out);
        out.sort();
        out
    }

    /// `/trailkey -c /trailkey.toml <args>` inside the root, with only the
    /// test's AWS environment (`endpoint`): chroot as root, otherwise in a
    /// user namespace where this user is root.
    fn run(&self, endpoint: &str, args: &[&str]) -> Output {
        let chroot: &[&OsStr] = if is_root() {
            &[OsStr::new("chroot")]
        } else {
            &[
                OsStr::new("unshare"),
                OsStr::new("--map-root-user"),
                OsStr::new("chroot"),
            ]
        };
        let run = Run::at(endpoint)
            .launched_by(chroot.iter().copied().chain([self.path().as_os_str()]))
            .program("/trailkey")
            .config("/trailkey.toml")
            .args(args)
            .env_clear();
        // Where the binary had to be copied, a run can still meet the copy's
        // write handle in another test's child for a moment (see `new`).
        let mut tries = 0;
        loop {
            let out = run.run();
            tries += 1;
            if tries == 10 || !String::from_utf8_lossy(&out.stderr).contains("Text file busy") {
                return out;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Whether this user can run the binary in the root at all.
    fn usable(&self) -> Result<(), String> {
        let out = self.run(NOWHERE, &["--version"]);
        if out.status.success() {
            return Ok(());
        }
        Err(format!(
            "cannot run the binary in a chroot ({}): run as root, or allow unprivileged \
             user namespaces (on Ubuntu: sysctl kernel.apparmor_restrict_unprivileged_userns=0)",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn is_root() -> bool {
    // The effective user's ID, as the kernel reports it.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|id| id == "0"))
        })
        .unwrap_or(false)
}

fn port_of(endpoint: &str) -> &str {
    endpoint.rsplit(':').next().expect("endpoint with a port")
}

/// A moto, its seed and a root holding the static binary, or why not.
fn setup() -> Option<(Moto, Seed, Root)> {
    let bin = match static_binary() {
        Ok(bin) => bin,
        Err(why) => {
            unavailable(&why);
            return None;
        }
    };
    let moto = Moto::start();
    let seed = moto.seed();
    let root = Root::new(&bin, &seed);
    if let Err(why) = root.usable() {
        unavailable(&why);
        return None;
    }
    Some((moto, seed, root))
}

#[test]
fn the_static_binary_plans_in_an_empty_root_by_address_and_by_localhost() {
    let Some((moto, seed, root)) = setup() else {
        return;
    };
    assert_eq!(
        root.files(),
        [
            "etc/hosts",
            "etc/ssl/certs/ca-certificates.crt",
            "trailkey",
            "trailkey.toml"
        ]
    );

    // 127.0.0.1: exit 2, and the same plan as the tests' own (dynamic)
    // build's, compared as JSON values (the human text lists a resource's
    // attributes in an order that differs between release and test builds).
    let plan = root.run(&moto.endpoint, &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(2), "{}", transcript(&plan));
    let json = |out: &Output| -> serde_json::Value {
        assert_eq!(out.status.code(), Some(0), "{}", transcript(out));
        serde_json::from_slice(&out.stdout).expect("plan --format json prints JSON")
    };
    assert_eq!(
        json(&root.run(&moto.endpoint, &["plan", "--format", "json"])),
        json(
            &Run::new(&moto)
                .direct()
                .config(&seed.config)
                .args(["plan", "--format", "json"])
                .run()
        )
    );

    // localhost: resolved by glibc's own /etc/hosts lookup, no NSS module.
    let localhost = format!("http://localhost:{}", port_of(&moto.endpoint));
    let plan = root.run(&localhost, &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(2), "{}", transcript(&plan));

    // A write path too: apply, then the plan finds nothing to do.
    let apply = root.run(&localhost, &["apply", "--auto-approve"]);
    assert_eq!(apply.status.code(), Some(0), "{}", transcript(&apply));
    let plan = root.run(&moto.endpoint, &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{}", transcript(&plan));

    // A name that is in no /etc/hosts and no DNS fails to resolve, with a
    // hint, and does not hang.
    let unknown = format!(
        "http://trailkey-unknown.invalid:{}",
        port_of(&moto.endpoint)
    );
    let plan = root.run(&unknown, &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(1), "{}", transcript(&plan));
}

/// The name the fake DNS server answers, with 127.0.0.1.
const FAKE_NAME: &str = "moto.test";

/// A DNS server on UDP port 53 of a loopback address that answers `A`
/// queries for [`FAKE_NAME`] with 127.0.0.1, other queries for it with no
/// record, and every other name with NXDOMAIN; it records each question.
struct FakeDns {
    addr: Ipv4Addr,
    questions: Arc<Mutex<Vec<(String, u16)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeDns {
    fn start() -> Result<FakeDns, String> {
        // A loopback address of its own (all of 127/8 is loopback on
        // Linux), so that no local resolver or other test run is in the way.
        let mut last = None;
        for i in 0..20u32 {
            let n = std::process::id().wrapping_mul(31).wrapping_add(i * 7919);
            let addr = Ipv4Addr::new(127, 53, (n >> 8) as u8, (n as u8).max(2));
            match UdpSocket::bind(SocketAddrV4::new(addr, 53)) {
                Ok(socket) => return Ok(FakeDns::serve(socket, addr)),
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => last = Some(e),
                Err(e) => {
                    return Err(format!(
                        "cannot bind UDP {addr}:53 for the fake DNS server ({e}): run as root, \
                         or set net.ipv4.ip_unprivileged_port_start=53"
                    ));
                }
            }
        }
        Err(format!("no free loopback address for port 53: {last:?}"))
    }

    fn serve(socket: UdpSocket, addr: Ipv4Addr) -> FakeDns {
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let questions = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (q, s) = (Arc::clone(&questions), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !s.load(Ordering::SeqCst) {
                let Ok((len, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                if let Some((name, qtype, reply)) = answer(&buf[..len]) {
                    q.lock().unwrap().push((name, qtype));
                    let _ = socket.send_to(&reply, from);
                }
            }
        });
        FakeDns {
            addr,
            questions,
            stop,
            thread: Some(thread),
        }
    }

    fn questions(&self) -> Vec<(String, u16)> {
        self.questions.lock().unwrap().clone()
    }
}

impl Drop for FakeDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

const TYPE_A: u16 = 1;

/// The question of a DNS query (RFC 1035 4.1) and the reply to it.
fn answer(query: &[u8]) -> Option<(String, u16, Vec<u8>)> {
    if query.len() < 12 || u16::from_be_bytes([query[4], query[5]]) != 1 {
        return None;
    }
    let mut labels = Vec::new();
    let mut i = 12;
    loop {
        let len = usize::from(*query.get(i)?);
        i += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(i..i + len)?).to_ascii_lowercase());
        i += len;
    }
    let qtype = u16::from_be_bytes([*query.get(i)?, *query.get(i + 1)?]);
    let question_end = i + 4;
    let question = query.get(12..question_end)?;
    let name = labels.join(".");
    let known = name == FAKE_NAME;
    let answers = u16::from(known && qtype == TYPE_A);

    let mut reply = Vec::new();
    reply.extend_from_slice(&query[..2]); // the query's ID
    // QR, the query's RD, RA; NOERROR, or NXDOMAIN for an unknown name.
    reply.extend_from_slice(&[0x80 | (query[2] & 0x01), if known { 0x80 } else { 0x83 }]);
    reply.extend_from_slice(&1u16.to_be_bytes());
    reply.extend_from_slice(&answers.to_be_bytes());
    reply.extend_from_slice(&[0, 0, 0, 0]);
    reply.extend_from_slice(question);
    if answers == 1 {
        reply.extend_from_slice(&[0xc0, 12]); // the name, as a pointer to the question's
        reply.extend_from_slice(&TYPE_A.to_be_bytes());
        reply.extend_from_slice(&1u16.to_be_bytes()); // class IN
        reply.extend_from_slice(&60u32.to_be_bytes()); // TTL
        reply.extend_from_slice(&4u16.to_be_bytes());
        reply.extend_from_slice(&Ipv4Addr::LOCALHOST.octets());
    }
    Some((name, qtype, reply))
}

#[test]
fn the_static_binary_resolves_a_name_through_resolv_conf() {
    let Some((moto, _seed, root)) = setup() else {
        return;
    };
    let dns = match FakeDns::start() {
        Ok(dns) => dns,
        Err(why) => return unavailable(&why),
    };
    std::fs::write(
        root.path().join("etc/resolv.conf"),
        format!("nameserver {}\noptions timeout:2 attempts:1\n", dns.addr),
    )
    .unwrap();

    let endpoint = format!("http://{FAKE_NAME}:{}", port_of(&moto.endpoint));
    let plan = root.run(&endpoint, &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(2), "{}", transcript(&plan));
    let questions = dns.questions();
    assert!(
        questions.contains(&(FAKE_NAME.to_owned(), TYPE_A)),
        "the binary asked the DNS server of /etc/resolv.conf for {FAKE_NAME}: {questions:?}"
    );

    // The same name without the DNS server: nothing else resolves it.
    std::fs::remove_file(root.path().join("etc/resolv.conf")).unwrap();
    drop(dns);
    let plan = root.run(&endpoint, &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(1), "{}", transcript(&plan));
}

/// Unpacks a zip as Lambda does: every entry with its Unix mode.
const UNPACK: &str = r#"
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for info in z.infolist():
        path = z.extract(info, sys.argv[2])
        os.chmod(path, (info.external_attr >> 16) & 0o777)
        print(info.filename)
"#;

/// The deployment package of `make lambda-package`, unpacked as Lambda does
/// and run as Lambda runs it: `bootstrap` with no argument and the config
/// next to it, under the local Runtime API, against moto through the
/// real-AWS layer. The static binary itself repairs a drift event in
/// `apply` mode.
#[test]
fn the_lambda_package_runs_as_a_function_and_repairs_a_drift_event() {
    let bin = match static_binary() {
        Ok(bin) => bin,
        Err(why) => return unavailable(&why),
    };
    let moto = Moto::start();
    let seed = moto.seed();
    let out = Run::new(&moto)
        .config(&seed.config)
        .args(["apply", "--auto-approve"])
        .run();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    moto.fixture(&["drift", "trail-unencrypt"]);

    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("function.zip");
    let make = Command::new("make")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["-s", "lambda-zip"])
        .arg(format!("LAMBDA_BIN={}", bin.display()))
        .arg(format!("LAMBDA_CONFIG={}", seed.config.display()))
        .arg(format!("LAMBDA_ZIP={}", zip.display()))
        .output()
        .expect("run make");
    assert!(make.status.success(), "{}", transcript(&make));
    let task = dir.path().join("task");
    let unpacked = Command::new(trailkey_testkit::venv().join("bin/python"))
        .args(["-c", UNPACK])
        .arg(&zip)
        .arg(&task)
        .output()
        .unwrap();
    assert!(unpacked.status.success(), "{}", transcript(&unpacked));
    assert_eq!(
        String::from_utf8_lossy(&unpacked.stdout)
            .lines()
            .collect::<Vec<_>>(),
        ["bootstrap", "trailkey.toml"]
    );

    let api = RuntimeApi::start();
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut function = Run::new(&moto)
        .program(task.join("bootstrap"))
        .env_remove("TRAILKEY_CONFIG")
        .env("TRAILKEY_MODE", "apply")
        .envs(api.lambda_env())
        .current_dir(&task)
        .command()
        .stdout(appending(&log))
        .stderr(appending(&log))
        .spawn()
        .expect("start bootstrap");
    moto.start_recording();
    let id = api.invoke(update_trail_event(&seed));
    let result = api.wait_result(&id, Duration::from_secs(60));
    let _ = function.kill();
    let _ = function.wait();
    let logged = std::fs::read_to_string(log.path()).unwrap();
    let r = result.response();
    assert_eq!(
        (r["handled"].clone(), r["applied"].clone()),
        (serde_json::json!(true), serde_json::json!(true)),
        "{r:#}\n{logged}"
    );
    let writes = moto.recorded_writes();
    assert_eq!(writes, ["cloudtrail:UpdateTrail"]);
    assert!(!on_sse_s3(&moto.state(&seed)), "repaired");
    assert!(
        logged.contains("\"message\":\"trailkey lambda invocation\""),
        "the invocation's log line: {logged}"
    );
}
