//! Embeds the git revision in `trailkey --version`.

use std::process::Command;

fn main() {
    let rev = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".to_owned());
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .ok()
        .is_some_and(|o| o.status.success() && !o.stdout.is_empty());
    let rev = if dirty { format!("{rev}-dirty") } else { rev };
    println!("cargo:rustc-env=TRAILKEY_GIT_REV={rev}");
    // Run again when the commit or the index changes: HEAD, the checked-out
    // branch's ref (not the whole refs/ folder, which every other branch's
    // and worktree's commits touch), packed-refs and the index. Git says
    // where those live: in a linked worktree `.git` is a file, and HEAD and
    // the index are in the main repository's `.git/worktrees/<name>/` (a
    // path that does not exist would make cargo run this script, and rebuild
    // the crate, every time). Outside a repository (a crate from crates.io)
    // only this file counts.
    println!("cargo:rerun-if-changed=build.rs");
    let branch = git(&["symbolic-ref", "-q", "HEAD"]);
    let names = ["HEAD", "index", "packed-refs"]
        .into_iter()
        .map(str::to_owned)
        .chain(branch);
    for name in names {
        if let Some(path) =
            git(&["rev-parse", "--git-path", &name]).filter(|p| std::path::Path::new(p).exists())
        {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}

/// The trimmed output of a git command that succeeded.
fn git(args: &[&str]) -> Option<String> {
    Command::new("git")
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}
