//! The shell blocks of a walk-through document, read as `tests/e2e/readme.rs` runs them.
//!
//! A fenced block tagged `sh` is one of:
//! - **not run**: its first line is a comment `# not run by the tests: <why>` (real TEE
//!   hardware, a public network, a release build, the test suite itself); the reason shows in
//!   the document where the reader sees the block;
//! - **a transcript**: lines starting with `$ ` are commands, the lines after each are its
//!   output (standard output and error together), where `…` stands for any text within a line;
//! - **a script**: every line is shell, run as written. A command whose trailing comment says
//!   `exit N` may end with status N, and one whose comment says `refused` may fail; any other
//!   failure fails the test. A line `./scripts/serve.sh [ARGS]` (re)starts the server with
//!   those arguments, as it does for the reader in another terminal.

/// One step of a document, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// `./scripts/serve.sh ARGS` at this line (1-based).
    Serve { line: usize, args: Vec<String> },
    /// Shell lines, the first at `line`.
    Script { line: usize, lines: Vec<String> },
    /// `$ command` at `line`, and the output it shows.
    Transcript {
        line: usize,
        command: String,
        output: Vec<String>,
    },
    /// A block not run, at `line`, and why.
    NotRun { line: usize, why: String },
}

/// The marker of a block that is not run.
pub const NOT_RUN: &str = "# not run by the tests:";

/// The steps of `document` (Markdown).
///
/// # Panics
/// On an unterminated block or a not-run marker without a reason: the document is broken.
pub fn steps(document: &str) -> Vec<Step> {
    let lines: Vec<&str> = document.lines().collect();
    let mut steps = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim_end() != "```sh" {
            i += 1;
            continue;
        }
        let first = i + 1;
        let end = (first..lines.len())
            .find(|&j| lines[j].trim_end() == "```")
            .unwrap_or_else(|| panic!("line {}: the sh block never ends", i + 1));
        block(&lines[first..end], first + 1, &mut steps);
        i = end + 1;
    }
    steps
}

fn block(lines: &[&str], line: usize, steps: &mut Vec<Step>) {
    if let Some(why) = lines.first().and_then(|l| l.trim().strip_prefix(NOT_RUN)) {
        let why = why.trim();
        assert!(!why.is_empty(), "line {line}: say why the block is not run");
        steps.push(Step::NotRun {
            line,
            why: why.to_string(),
        });
        return;
    }
    if lines.iter().any(|l| l.starts_with("$ ")) {
        for (k, l) in lines.iter().enumerate() {
            match l.strip_prefix("$ ") {
                Some(command) => steps.push(Step::Transcript {
                    line: line + k,
                    command: command.to_string(),
                    output: Vec::new(),
                }),
                None => match steps.last_mut() {
                    Some(Step::Transcript { output, .. }) if k > 0 => {
                        output.push(l.to_string());
                    }
                    _ => panic!("line {}: output before any `$ ` command", line + k),
                },
            }
        }
        return;
    }
    let mut script: Vec<String> = Vec::new();
    let mut script_line = line;
    for (k, l) in lines.iter().enumerate() {
        let command = l.split(" #").next().unwrap_or_default().trim();
        let serve = command
            .strip_prefix("./scripts/serve.sh")
            .filter(|rest| rest.is_empty() || rest.starts_with(' '));
        match serve {
            Some(rest) => {
                if !script.is_empty() {
                    steps.push(Step::Script {
                        line: script_line,
                        lines: std::mem::take(&mut script),
                    });
                }
                steps.push(Step::Serve {
                    line: line + k,
                    args: rest.split_whitespace().map(str::to_string).collect(),
                });
            }
            None => {
                if script.is_empty() {
                    script_line = line + k;
                }
                script.push(l.to_string());
            }
        }
    }
    if !script.is_empty() {
        steps.push(Step::Script {
            line: script_line,
            lines: script,
        });
    }
}

/// Whether `actual` is what `expected` shows: equal, where each `…` stands for any text
/// (trailing spaces ignored).
pub fn line_matches(expected: &str, actual: &str) -> bool {
    let (expected, actual) = (expected.trim_end(), actual.trim_end());
    let parts: Vec<&str> = expected.split('…').collect();
    if parts.len() == 1 {
        return expected == actual;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !actual.starts_with(first) || actual.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &actual[first.len()..];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// What a script line's trailing comment allows as its exit status: `exit N` allows N,
/// `refused` any failure.
pub fn allowed_failure(line: &str, status: i32) -> bool {
    let Some((_, comment)) = line.split_once(" #") else {
        return false;
    };
    if comment.contains("refused") {
        return status != 0;
    }
    comment
        .split("exit ")
        .skip(1)
        .filter_map(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse::<i32>()
                .ok()
        })
        .any(|n| n == status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_become_steps() {
        let doc = "text\n```sh\n./scripts/serve.sh --pay-to 0xab   # verify-only\n```\n\
                   ```sh\nC=x\n$C ping # ok\n./scripts/serve.sh\necho after\n```\n\
                   ```sh\n$ hello\nHello\n[… ms]\n$ quiet\n```\n\
                   ```sh\n# not run by the tests: needs TDX hardware\nquote\n```\n\
                   ```text\n$ not shell\n```\n";
        assert_eq!(
            steps(doc),
            vec![
                Step::Serve {
                    line: 3,
                    args: vec!["--pay-to".into(), "0xab".into()]
                },
                Step::Script {
                    line: 6,
                    lines: vec!["C=x".into(), "$C ping # ok".into()]
                },
                Step::Serve {
                    line: 8,
                    args: vec![]
                },
                Step::Script {
                    line: 9,
                    lines: vec!["echo after".into()]
                },
                Step::Transcript {
                    line: 12,
                    command: "hello".into(),
                    output: vec!["Hello".into(), "[… ms]".into()]
                },
                Step::Transcript {
                    line: 15,
                    command: "quiet".into(),
                    output: vec![]
                },
                Step::NotRun {
                    line: 18,
                    why: "needs TDX hardware".into()
                },
            ]
        );
    }

    #[test]
    fn an_ellipsis_stands_for_any_text() {
        assert!(line_matches("Hello world", "Hello world  "));
        assert!(!line_matches("Hello world", "Hello there"));
        assert!(line_matches(
            "[exit 0 · … ms · commitment … verified]",
            "[exit 0 · 0.6 ms · commitment 7aba1873 verified]"
        ));
        assert!(!line_matches(
            "[exit 0 · … ms · commitment … verified]",
            "[exit 1 · 0.6 ms · commitment 7aba1873 verified]"
        ));
        assert!(line_matches("a…", "a"));
        assert!(!line_matches("ab…ba", "aba"));
    }

    #[test]
    fn comments_allow_the_failures_they_announce() {
        assert!(allowed_failure(
            "x --time-ms 500   # stopped: exit 124",
            124
        ));
        assert!(!allowed_failure("x --time-ms 500   # stopped: exit 124", 1));
        assert!(allowed_failure("x # exit 3: the whole code arrives", 3));
        assert!(allowed_failure("x # refused: program_kind_mismatch", 2));
        assert!(!allowed_failure("x # refused: program_kind_mismatch", 0));
        assert!(!allowed_failure("x", 1));
    }
}
