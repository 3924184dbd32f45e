#!/usr/bin/env python3
"""trailkey against the same job done with the AWS CLI, on a local moto server.

    bench.py --trailkey target/release/trailkey --venv .venv --aws .venv-bench/bin/aws \
        [--runs 10] [--delay-ms 50] [--guard-log FILE] [--json FILE]

`make bench` runs it. Nothing here talks to real AWS: it starts a moto server
on 127.0.0.1 (a free port) and a latency proxy in front of it
(latency_proxy.py, 50 ms added to every request), gives every client dummy
credentials and keeps the machine's AWS configuration out.

Five jobs, each timed --runs times directly against moto and again through
the proxy:

  trailkey no-op plan       `trailkey plan --detailed-exitcode` on a converged
                            organization (seeded once, applied once), with
                            AWS_ACCOUNT_ID set beside the access keys, so
                            that the credentials name their account (as SSO
                            and profile roles do)
  ... credentials without   the same without AWS_ACCOUNT_ID: GetCallerIdentity
  their account             answers who runs before AssumeRole is made
  trailkey first apply      `trailkey apply --auto-approve` on a fresh seed
                            (moto reset, fixture.py seed) each run, with
                            AWS_ACCOUNT_ID
  AWS CLI no-op check       aws_cli_remediation.sh check on the same converged
                            organization
  AWS CLI first remediation aws_cli_remediation.sh remediate on a fresh seed each
                            run, with the key policy `trailkey policy --offline`
                            renders; afterwards `trailkey plan` must find nothing
                            to do, so both did the same work

AWS calls are counted once per job with moto's request recorder (fixture.py
`recording start|show`), outside the timed runs. Rounds (sequential waits on
AWS) are measured: (median wall with the proxy - median wall without) / delay.
The guard tests' round counts (src/reconcile/tests/rounds.rs, a fake AWS on a paused
clock) are shown beside them when --guard-log has their output.

It prints a Markdown table (also written to --markdown) and, with --json, the
raw figures. Exit status 0 when every run did what it should, whatever the
figures; 1 if a run failed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests/testkit/fixture.py"
PROXY = ROOT / "tests/bench/latency_proxy.py"
CLI_SCRIPT = ROOT / "tests/bench/aws_cli_remediation.sh"

JOBS = {
    "tk_plan": "trailkey no-op `plan`",
    "tk_plan_unnamed": "trailkey no-op `plan`, credentials without their account",
    "tk_apply": "trailkey first `apply`",
    "cli_check": "AWS CLI no-op check",
    "cli_remediate": "AWS CLI first remediation",
}


class BenchError(Exception):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def aws_env(endpoint: str, scratch: Path) -> dict[str, str]:
    """The environment for every AWS client: moto, dummy credentials, no real config."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AWS_") and k not in ("NO_COLOR", "RUST_LOG")
    }
    env.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=str(scratch / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(scratch / "no-aws-credentials"),
        NO_COLOR="1",
    )
    return env


@dataclass
class Moto:
    venv: Path
    scratch: Path
    process: subprocess.Popen | None = None
    port: int = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        for _ in range(5):
            self.port = free_port()
            log = open(self.scratch / "moto.log", "wb")
            self.process = subprocess.Popen(
                [str(self.venv / "bin/moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
                cwd=self.scratch,
                env={**os.environ, "MOTO_RECORDER_FILEPATH": str(self.scratch / "moto_recording")},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    urllib.request.urlopen(self.endpoint + "/moto-api/", timeout=1).read()
                    return
                except OSError:
                    time.sleep(0.1)
            self.stop()
        raise BenchError("moto_server did not start")

    def api(self, path: str) -> None:
        request = urllib.request.Request(self.endpoint + path, method="POST", data=b"")
        urllib.request.urlopen(request, timeout=30).read()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Proxy:
    def __init__(self, python: str, upstream_port: int, delay_ms: float):
        self.process = subprocess.Popen(
            [python, str(PROXY), "--upstream", f"127.0.0.1:{upstream_port}", "--delay-ms", str(delay_ms)],
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.process.stdout.readline()
        if not line.startswith("listening "):
            self.stop()
            raise BenchError(f"latency proxy did not start: {line!r}")
        self.endpoint = "http://" + line.split()[1]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


@dataclass
class Seed:
    config: Path
    policy: Path
    security_tooling: str
    trail: str
    management: str


@dataclass
class Job:
    key: str
    calls: list[str] = field(default_factory=list)
    walls: dict[str, list[float]] = field(default_factory=lambda: {"direct": [], "proxied": []})


class Bench:
    def __init__(self, args: argparse.Namespace, scratch: Path):
        self.args = args
        self.scratch = scratch
        self.python = str(args.venv / "bin/python")
        self.moto = Moto(args.venv, scratch)
        self.proxy: Proxy | None = None
        self.jobs = {key: Job(key) for key in JOBS}
        self.failures: list[str] = []

    # ----------------------------------------------------------- helpers

    def endpoint(self, mode: str) -> str:
        return self.proxy.endpoint if mode == "proxied" else self.moto.endpoint

    def fixture(self, *args: str) -> dict:
        out = subprocess.run(
            [self.python, str(FIXTURE), *args, "--endpoint", self.moto.endpoint],
            env=aws_env(self.moto.endpoint, self.scratch),
            capture_output=True,
            text=True,
        )
        if out.returncode != 0:
            raise BenchError(f"fixture.py {' '.join(args)}: {out.stderr.strip()}")
        return json.loads(out.stdout)

    def fresh_seed(self) -> Seed:
        """An empty moto (/moto-api/reset), seeded by fixture.py, and the key policy to attach."""
        self.moto.api("/moto-api/reset")
        config = self.scratch / "trailkey.toml"
        facts = self.fixture("seed", "--write-config", str(config))
        policy = self.scratch / "policy.json"
        out = subprocess.run(
            [str(self.args.trailkey), "-c", str(config), "policy", "--offline"],
            env=aws_env(self.moto.endpoint, self.scratch),
            capture_output=True,
        )
        if out.returncode != 0:
            raise BenchError(f"trailkey policy --offline: {out.stderr.decode()}")
        policy.write_bytes(out.stdout)
        return Seed(
            config,
            policy,
            facts["security_tooling_account"],
            facts["trail_name"],
            facts["management_account"],
        )

    def command(self, job: str, seed: Seed) -> list[str]:
        tk = [str(self.args.trailkey), "-c", str(seed.config)]
        cli = [
            "bash",
            str(CLI_SCRIPT),
            "check" if job == "cli_check" else "remediate",
            "--security-tooling",
            seed.security_tooling,
            "--trail",
            seed.trail,
            "--policy",
            str(seed.policy),
        ]
        return {
            "tk_plan": tk + ["plan", "--detailed-exitcode"],
            "tk_plan_unnamed": tk + ["plan", "--detailed-exitcode"],
            "tk_apply": tk + ["apply", "--auto-approve"],
            "cli_check": cli,
            "cli_remediate": cli,
        }[job]

    def run(self, job: str, seed: Seed, mode: str) -> float:
        """Runs one job once; returns its wall time in seconds."""
        env = aws_env(self.endpoint(mode), self.scratch)
        if job in ("tk_plan", "tk_apply"):
            env["AWS_ACCOUNT_ID"] = seed.management
        env["AWS"] = str(self.args.aws)
        env["PYTHON"] = str(self.args.aws.parent / "python")
        cmd = self.command(job, seed)
        start = time.perf_counter()
        out = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True)
        wall = time.perf_counter() - start
        if out.returncode != 0:
            raise BenchError(
                f"{JOBS[job]} ({mode}) exited {out.returncode}:\n{out.stdout.decode()}{out.stderr.decode()}"
            )
        return wall

    def converged(self, seed: Seed, why: str) -> None:
        """trailkey finds nothing to do (the job left the organization converged)."""
        out = subprocess.run(
            [str(self.args.trailkey), "-c", str(seed.config), "plan", "--detailed-exitcode"],
            env=aws_env(self.moto.endpoint, self.scratch),
            capture_output=True,
        )
        if out.returncode != 0:
            raise BenchError(f"after {why}, trailkey plan exited {out.returncode}:\n{out.stdout.decode()}")

    def count(self, job: str, seed: Seed) -> None:
        """One untimed run with moto's recorder on: the job's AWS calls."""
        self.fixture("recording", "start")
        self.run(job, seed, "direct")
        requests = self.fixture("recording", "show")["requests"]
        self.moto.api("/moto-api/recorder/stop-recording")
        self.jobs[job].calls = [f"{r['service']}:{r['action']}" for r in requests]

    # -------------------------------------------------------------- runs

    def execute(self) -> None:
        self.moto.start()
        self.proxy = Proxy(self.python, self.moto.port, self.args.delay_ms)
        try:
            self.counts()
            self.timed()
        finally:
            self.proxy.stop()
            self.moto.stop()

    def counts(self) -> None:
        seed = self.fresh_seed()
        self.count("tk_apply", seed)
        self.converged(seed, "trailkey apply")
        self.count("tk_plan", seed)
        self.count("tk_plan_unnamed", seed)
        self.count("cli_check", seed)
        seed = self.fresh_seed()
        self.count("cli_remediate", seed)
        self.converged(seed, "the AWS CLI remediation")

    def timed(self) -> None:
        runs = self.args.runs
        modes = ("direct", "proxied")
        # No-op jobs: one converged organization, runs interleaved.
        seed = self.fresh_seed()
        self.run("tk_apply", seed, "direct")
        for job in ("tk_plan", "tk_plan_unnamed", "cli_check"):  # warm-up (page cache), not counted
            self.run(job, seed, "direct")
        for i in range(runs):
            for mode in modes:
                for job in ("tk_plan", "tk_plan_unnamed", "cli_check"):
                    self.jobs[job].walls[mode].append(self.run(job, seed, mode))
            progress(f"no-op runs {i + 1}/{runs}")
        # First runs: a fresh seed before each.
        for i in range(runs):
            for mode in modes:
                for job, what in (("tk_apply", "trailkey apply"), ("cli_remediate", "the AWS CLI remediation")):
                    seed = self.fresh_seed()
                    self.jobs[job].walls[mode].append(self.run(job, seed, mode))
                    self.converged(seed, what)
            progress(f"first runs {i + 1}/{runs}")


def progress(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------- report


def is_write(call: str) -> bool:
    action = call.rsplit(":", 1)[-1]
    return not action.startswith(("Get", "Describe", "List", "AssumeRole"))


def guard_rounds(log: Path | None) -> dict[str, str]:
    """`no-op plan: 10 calls in 2 rounds` lines printed by the guard tests."""
    if not log or not log.exists():
        return {}
    keys = {
        "no-op plan": "tk_plan",
        "no-op plan, credentials without their account": "tk_plan_unnamed",
        "first apply": "tk_apply",
    }
    found = {}
    for line in log.read_text(errors="replace").splitlines():
        # With --nocapture a test's line may follow libtest's "test NAME ... ".
        m = re.search(r"(?:^|\.\.\. )([a-z, -]+): (\d+) calls in (\d+) rounds", line)
        if m and m[1] in keys:
            found[keys[m[1]]] = f"{m[3]} ({m[2]} calls)"
    return found


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def triple(walls: list[float]) -> str:
    return f"{ms(min(walls))} / {ms(statistics.median(walls))} / {ms(max(walls))}"


def report(bench: Bench, args: argparse.Namespace, started: str, loads: list) -> tuple[str, dict]:
    delay = args.delay_ms / 1000
    guard = guard_rounds(args.guard_log)
    rows = []
    data: dict = {"jobs": {}}
    for key, job in bench.jobs.items():
        d, p = job.walls["direct"], job.walls["proxied"]
        measured_rounds = (statistics.median(p) - statistics.median(d)) / delay
        writes = sum(is_write(c) for c in job.calls)
        rounds = f"{measured_rounds:.1f}"
        if key in guard:
            rounds += f"; guard: {guard[key]}"
        elif key.startswith("cli"):
            rounds += f"; sequential: {len(job.calls)}"
        rows.append(
            f"| {JOBS[key]} | {len(job.calls)} ({writes} writes) | {rounds} | {triple(d)} | {triple(p)} |"
        )
        data["jobs"][key] = {
            "name": JOBS[key],
            "calls": job.calls,
            "writes": writes,
            "rounds_measured": round(measured_rounds, 2),
            "rounds_guard": guard.get(key),
            "wall_ms_direct": [round(w * 1000, 1) for w in d],
            "wall_ms_proxied": [round(w * 1000, 1) for w in p],
        }

    def ratio(cli: str, tk: str, mode: str) -> float:
        return statistics.median(bench.jobs[cli].walls[mode]) / statistics.median(bench.jobs[tk].walls[mode])

    ratios = {
        f"{what} {mode}": ratio(cli, tk, mode)
        for what, cli, tk in (("no-op", "cli_check", "tk_plan"), ("first run", "cli_remediate", "tk_apply"))
        for mode in ("direct", "proxied")
    }
    data["ratios_median_wall"] = {k: round(v, 1) for k, v in ratios.items()}
    plan_proxied = bench.jobs["tk_plan"].walls["proxied"]
    budget = 3 * args.delay_ms + 100
    data["noop_plan_budget_ms"] = budget

    lat = f"{args.delay_ms:g} ms"
    lines = [
        f"trailkey vs the AWS CLI on moto: {args.runs} runs each; wall ms as min / median / max;"
        f" with {lat} added to every AWS request by the loopback proxy.",
        "",
        f"| job | AWS calls | rounds (measured{'; guard test' if guard else ''}) | wall ms, no latency | wall ms, {lat} latency |",
        "| --- | ---: | ---: | ---: | ---: |",
        *rows,
        "",
        "| AWS CLI / trailkey (median wall) | no latency | " + lat + " latency |",
        "| --- | ---: | ---: |",
        f"| no-op: check / plan | {ratios['no-op direct']:.1f}x | {ratios['no-op proxied']:.1f}x |",
        f"| first run: remediation / apply | {ratios['first run direct']:.1f}x | {ratios['first run proxied']:.1f}x |",
        f"| AWS calls, no-op / first run | {len(bench.jobs['cli_check'].calls)} vs {len(bench.jobs['tk_plan'].calls)}"
        f" | {len(bench.jobs['cli_remediate'].calls)} vs {len(bench.jobs['tk_apply'].calls)} |",
        "",
        "Targets:",
        "- side by side against the same moto, trailkey at least 20x faster (median wall): "
        + ", ".join(
            f"{k.removesuffix(' direct')} {v:.1f}x {'met' if v >= 20 else 'MISSED'}"
            for k, v in ratios.items()
            if k.endswith("direct")
        ),
        f"- no-op plan with {lat} latency within 3 x {lat} + 100 ms = {budget:g} ms: median"
        f" {ms(statistics.median(plan_proxied))} ms {'met' if statistics.median(plan_proxied) * 1000 <= budget else 'MISSED'},"
        f" max {ms(max(plan_proxied))} ms {'met' if max(plan_proxied) * 1000 <= budget else 'MISSED'}",
        f"Also measured (no target): the same ratios through the {lat} proxy: "
        + ", ".join(
            f"{k.removesuffix(' proxied')} {v:.1f}x{'' if v >= 20 else ' (under 20x)'}"
            for k, v in ratios.items()
            if k.endswith("proxied")
        ),
        "",
        "Calls:",
        *(f"- {JOBS[k]}: {', '.join(j.calls)}" for k, j in bench.jobs.items()),
        "",
        f"Run: {started}; load average at start {loads[0]}, at end {loads[1]};"
        f" {args.trailkey.name} {bench_version([str(args.trailkey), '--version'])};"
        f" {bench_version([str(args.aws), '--version'])}",
    ]
    return "\n".join(lines), data


def bench_version(cmd: list[str]) -> str:
    out = subprocess.run(cmd, capture_output=True, text=True)
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else "?"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trailkey", type=Path, required=True, help="the (release) binary")
    parser.add_argument("--venv", type=Path, required=True, help="venv with moto_server and boto3 (.venv)")
    parser.add_argument("--aws", type=Path, required=True, help="the pinned AWS CLI (.venv-bench/bin/aws)")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--delay-ms", type=float, default=50.0)
    parser.add_argument("--guard-log", type=Path, help="output of the call/round guard tests")
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    parser.add_argument("--markdown", type=Path, help="write the table here too")
    args = parser.parse_args(argv)
    args.trailkey = args.trailkey.resolve()
    args.aws = args.aws.absolute()
    args.venv = args.venv.absolute()
    for path in (args.trailkey, args.aws, args.venv / "bin/moto_server"):
        if not path.exists():
            parser.error(f"{path} does not exist")
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load_start = " ".join(f"{x:.2f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="trailkey-bench.") as scratch:
        bench = Bench(args, Path(scratch))
        try:
            bench.execute()
        except BenchError as err:
            print(f"bench: {err}", file=sys.stderr)
            return 1
    load_end = " ".join(f"{x:.2f}" for x in os.getloadavg())
    text, data = report(bench, args, started, [load_start, load_end])
    data.update(
        started=started,
        load_average=[load_start, load_end],
        runs=args.runs,
        delay_ms=args.delay_ms,
        machine=f"{platform.node()} {platform.platform()} nproc={os.cpu_count()}",
    )
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    if args.json:
        args.json.write_text(json.dumps(data, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
