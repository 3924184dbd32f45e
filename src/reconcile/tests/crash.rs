//! A crash between two writes: the next run converges, whichever write the
//! crash came after.

use crate::testing::*;

/// How many writes a from-scratch apply makes.
fn from_scratch_writes() -> usize {
    let fake = empty_cloud();
    apply_now(&fake, &desired());
    fake.writes().len()
}

/// Crashes after `k` writes, reruns apply, and returns what is wrong, if anything.
fn crash_then_rerun(k: usize) -> Result<(), String> {
    let desired = desired();
    let fake = empty_cloud();
    fake.state.borrow_mut().crash_after_writes = Some(k);
    let e = apply_error(&fake, &desired);
    if !e.to_string().contains("apply stopped at") {
        return Err(format!("crash after {k} writes: unexpected error {e}"));
    }
    assert_eq!(fake.writes(), FROM_SCRATCH[..k], "crash after {k} writes");

    fake.state.borrow_mut().crash_after_writes = None;
    block_on(run_apply(&fake, &desired)).map_err(|e| e.render())?;

    let s = fake.state.borrow();
    let mut problems = Vec::new();
    if s.keys.len() != 1 {
        problems.push(format!("{} keys", s.keys.len()));
    }
    let key = &s.keys[s.keys.len() - 1].info;
    if s.aliases.get(ALIAS) != Some(&key.key_id) {
        problems.push(format!("alias names {:?}", s.aliases.get(ALIAS)));
    }
    if s.trails[TRAIL_ARN].kms_key_id.as_deref() != Some(key.arn.as_str()) {
        problems.push(format!("trail on {:?}", s.trails[TRAIL_ARN].kms_key_id));
    }
    drop(s);
    if plan_now(&fake, &desired).has_changes() {
        problems.push("the final plan has changes".to_owned());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "crash after {k} writes ({}), then rerun: {}",
            FROM_SCRATCH[..k].join(", "),
            problems.join("; ")
        ))
    }
}

#[test]
fn a_rerun_converges_after_a_crash_at_every_write_position() {
    let n = from_scratch_writes();
    assert_eq!(n, FROM_SCRATCH.len());
    let failures: Vec<String> = (0..n).filter_map(|k| crash_then_rerun(k).err()).collect();
    eprintln!(
        "first apply: {n} writes; a crash at write position k = 1..{n} then a rerun converged for {} of {n}",
        n - failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Repairing drift on an existing key never creates one, so a crash at any
/// write of the repair converges on the next run.
#[test]
fn a_rerun_converges_after_a_crash_at_every_write_of_a_repair() {
    let desired = desired();
    for (name, drift) in DRIFTS {
        let repair = {
            let fake = converged_cloud_with_foreign_statement(&desired);
            drift(&fake);
            fake.clear_calls();
            apply_now(&fake, &desired);
            fake.writes()
        };
        for k in 0..repair.len() {
            let fake = converged_cloud_with_foreign_statement(&desired);
            drift(&fake);
            fake.clear_calls();
            fake.state.borrow_mut().crash_after_writes = Some(k);
            let e = apply_error(&fake, &desired);
            assert!(
                e.to_string().contains("apply stopped at"),
                "{name}, {k}: {e}"
            );
            assert_eq!(fake.writes(), repair[..k], "{name}, {k}");

            fake.state.borrow_mut().crash_after_writes = None;
            apply_now(&fake, &desired);
            assert!(!plan_now(&fake, &desired).has_changes(), "{name}, {k}");
            let key = only_key(&fake);
            assert_eq!(trail_kms_key_id(&fake), Some(key.info.arn), "{name}, {k}");
            assert!(
                statements(&key.policy).contains(&third_party_statement()),
                "{name}, {k}"
            );
        }
    }
}
