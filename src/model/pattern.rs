//! IAM's pattern matching, in one place: action wildcards (`kms:Gen*`)
//! and `ArnLike`. Patterns come from policies someone else wrote, so each
//! match is bounded whatever the pattern holds.

/// IAM's wildcards: `*` any run, `?` one character, case-sensitive (a
/// caller that compares actions lower-cases both sides). The pattern comes from a policy someone else
/// wrote, so matching must stay cheap whatever it holds: this is the greedy
/// matcher that, on a mismatch, only moves the text position of the last `*`
/// forward, so it takes at most O(pattern × text) steps (a backtracking
/// matcher is exponential in the number of `*`).
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    // After the last `*` seen: where the pattern resumes, and the text
    // position that `*` has swallowed up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                pi += 1;
                star = Some((pi, ti));
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((resume, swallowed)) => {
                    pi = resume;
                    ti = swallowed + 1;
                    star = Some((resume, ti));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// IAM's `ArnLike`: the six colon-separated parts matched one by one, with
/// `*` and `?`, the resource part taking the rest of the ARN.
pub fn arn_like(pattern: &str, arn: &str) -> bool {
    let p: Vec<&str> = pattern.splitn(6, ':').collect();
    let a: Vec<&str> = arn.splitn(6, ':').collect();
    p.len() == 6 && a.len() == 6 && p.iter().zip(&a).all(|(p, a)| wildcard_match(p, a))
}

/// Whether any of `patterns` is `ArnLike` `arn`: what an `ArnNotLike`
/// condition listing `patterns` leaves out.
pub fn any_arn_like(patterns: &[String], arn: &str) -> bool {
    patterns.iter().any(|pattern| arn_like(pattern, arn))
}
