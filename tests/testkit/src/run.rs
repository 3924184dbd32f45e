//! [`Run`]: how every test runs the `trailkey` binary.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::{Credentials, DEFAULT_ROLE, Moto, Proxy, kit_file, repo_root, trailkey_bin, venv};

/// One run of the `trailkey` binary, which reaches AWS through the standard
/// AWS environment only ([`isolate_aws_env`]: `AWS_ENDPOINT_URL`, dummy
/// credentials, `us-east-1`, no profile or metadata service).
///
/// By default it runs the binary Cargo built for the tests, in the
/// repository's root, with no standard input (a terminal with [`Run::tty`]),
/// and against the real-AWS layer
/// in front of the moto it was made for ([`Moto::layer`]):
///
/// ```text
/// let moto = Moto::start();
/// let seed = moto.seed();
/// let out = Run::new(&moto).config(&seed.config).args(["plan"]).run();
/// ```
///
/// [`Run::via`] sends its requests through another proxy in front of that
/// moto, [`Run::direct`] to moto alone, and [`Run::at`] makes a run against
/// any endpoint (e.g. a [`CountingServer`](crate::CountingServer), which proves
/// that no request is made).
#[derive(Debug, Clone)]
pub struct Run {
    /// The moto the run was made for, whose endpoint a proxy must forward to.
    moto: Option<String>,
    endpoint: String,
    /// `None`: the binary Cargo built ([`trailkey_bin`]), found when the
    /// command is made.
    program: Option<PathBuf>,
    /// What runs the program, its arguments first: `chroot <root>`, or the
    /// pseudo-terminal of [`Run::tty`].
    launcher: Vec<OsString>,
    config: Option<PathBuf>,
    args: Vec<OsString>,
    /// Set (`Some`) or removed (`None`), in order, after the AWS environment.
    env: Vec<(OsString, Option<OsString>)>,
    /// Only `PATH` and the AWS environment from the test's environment.
    clear_env: bool,
    current_dir: PathBuf,
}

impl Run {
    /// trailkey against `moto` through its real-AWS layer ([`Moto::layer`]).
    pub fn new(moto: &Moto) -> Run {
        let mut run = Run::at(&moto.layer().endpoint);
        run.moto = Some(moto.endpoint.clone());
        run
    }

    /// trailkey against `moto` through its real-AWS layer, with the
    /// credentials of a session of the role `AWSControlTowerExecution` of
    /// `account` instead of the default (management account) ones: e.g. as
    /// the Security Tooling account, CloudTrail's delegated administrator
    /// ([`World::delegated_administrator`](crate::rules::World::delegated_administrator)).
    /// The fixture assumes the role through the layer ([`Moto::assume_role`]),
    /// so that the layer's rules know whose the credentials are. A run sent
    /// through another proxy ([`Run::via`]) needs credentials assumed
    /// through that proxy: [`Run::credentials`].
    pub fn as_account(moto: &Moto, account: &str) -> Run {
        Run::as_role(moto, account, DEFAULT_ROLE)
    }

    /// [`Run::as_account`] with the role `role` (a name, with its path if it
    /// has one) of `account`.
    pub fn as_role(moto: &Moto, account: &str, role: &str) -> Run {
        let credentials = moto.assume_role(account, role, moto.layer());
        Run::new(moto).credentials(&credentials)
    }

    /// With `credentials` (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`) instead of the default ones.
    pub fn credentials(self, credentials: &Credentials) -> Run {
        self.env("AWS_ACCESS_KEY_ID", &credentials.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &credentials.secret_access_key)
            .env("AWS_SESSION_TOKEN", &credentials.session_token)
    }

    /// trailkey with `AWS_ENDPOINT_URL` set to `endpoint`.
    pub fn at(endpoint: &str) -> Run {
        Run {
            moto: None,
            endpoint: endpoint.to_owned(),
            program: None,
            launcher: Vec::new(),
            config: None,
            args: Vec::new(),
            env: Vec::new(),
            clear_env: false,
            current_dir: repo_root(),
        }
    }

    /// trailkey against `server`, which counts the connections it gets.
    /// Through `proxy` instead, which must be in front of the same moto.
    pub fn via(mut self, proxy: &Proxy) -> Run {
        let moto = self
            .moto
            .as_deref()
            .expect("Run::via is for a run made for a moto (Run::new)");
        assert_eq!(proxy.upstream, moto, "the proxy forwards to another moto");
        self.endpoint = proxy.endpoint.clone();
        self
    }

    /// To moto alone, without the real-AWS layer: for the tests that count
    /// a run's calls when nothing has to propagate.
    pub fn direct(mut self) -> Run {
        self.endpoint = self
            .moto
            .clone()
            .expect("Run::direct is for a run made for a moto (Run::new)");
        self
    }

    /// `-c <path>`, first on the command line.
    pub fn config(mut self, path: impl AsRef<Path>) -> Run {
        self.config = Some(path.as_ref().to_owned());
        self
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Run {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// An environment variable, set after the AWS environment (so it can
    /// replace a part of it).
    pub fn env(mut self, name: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Run {
        self.env
            .push((name.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    pub fn envs<I, K, V>(self, vars: I) -> Run
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        vars.into_iter().fold(self, |run, (k, v)| run.env(k, v))
    }

    /// Without the environment variable `name`, the AWS environment's
    /// included.
    pub fn env_remove(mut self, name: impl AsRef<OsStr>) -> Run {
        self.env.push((name.as_ref().to_owned(), None));
        self
    }

    /// Nothing of the test's environment but `PATH`; the AWS environment
    /// and [`Run::env`] still apply.
    pub fn env_clear(mut self) -> Run {
        self.clear_env = true;
        self
    }

    /// Standard input on a pseudo-terminal that receives `answer` and a
    /// newline (`tty_stdin.py`); the exit status is trailkey's.
    pub fn tty(self, answer: &str) -> Run {
        let python = venv().join("bin/python");
        self.launched_by([
            python.as_os_str(),
            kit_file("tty_stdin.py").as_os_str(),
            OsStr::new(answer),
        ])
    }

    /// Runs the program as the last argument of `launcher` (e.g. `chroot
    /// <root>`), its own arguments after it.
    pub fn launched_by<I, S>(mut self, launcher: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        assert!(self.launcher.is_empty(), "one launcher per run");
        self.launcher = launcher
            .into_iter()
            .map(|a| a.as_ref().to_owned())
            .collect();
        self
    }

    /// Another build of trailkey: the static release binary, a Lambda
    /// package's `bootstrap`, or a path inside a [`Run::launched_by`] root.
    pub fn program(mut self, path: impl AsRef<Path>) -> Run {
        self.program = Some(path.as_ref().to_owned());
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Run {
        self.current_dir = dir.as_ref().to_owned();
        self
    }

    /// The command: to spawn several runs at once, or to send the output
    /// elsewhere. Its standard input is null unless [`Run::tty`] gives one.
    pub fn command(&self) -> Command {
        let program = self.program.clone().unwrap_or_else(trailkey_bin);
        let mut cmd = match self.launcher.split_first() {
            Some((first, rest)) => {
                let mut cmd = Command::new(first);
                cmd.args(rest).arg(&program);
                cmd
            }
            None => Command::new(&program),
        };
        if let Some(config) = &self.config {
            cmd.arg("-c").arg(config);
        }
        cmd.args(&self.args);
        if self.clear_env {
            cmd.env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default());
        }
        isolate_aws_env(&mut cmd, &self.endpoint);
        for (name, value) in &self.env {
            match value {
                Some(value) => cmd.env(name, value),
                None => cmd.env_remove(name),
            };
        }
        cmd.current_dir(&self.current_dir).stdin(Stdio::null());
        cmd
    }

    /// Runs it to the end; its exit status, stdout and stderr.
    pub fn run(&self) -> Output {
        self.command().output().expect("run trailkey")
    }
}

/// Environment that keeps any real AWS configuration of the machine out,
/// and points the AWS SDK at `endpoint`.
pub fn isolate_aws_env(cmd: &mut Command, endpoint: &str) {
    for var in [
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent/trailkey-test/config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/trailkey-test/credentials",
        )
        .env("NO_COLOR", "1");
}
