//! Keyword options → the command line of the same subcommand, parsed by the CLI's own parser
//! (`config::try_parse_args`, `--config` files included), so that `min_count=10` is checked by
//! exactly the code that checks `--min-count 10` and fails with the same message.
//!
//! An option is a long flag in snake_case. A switch takes `True` or `False` (`False` is its
//! `--no-` form where the flag has one, so it overrides a config file); `None` leaves a flag
//! at its default; any other value is passed as its text (`os.fspath` for paths). An unknown
//! option is an error naming the closest valid one; the flags about the terminal and the output
//! directory are errors saying what to use instead.

use crate::DetbalError;
use clap::{Arg, ArgAction, Command};
use detbal::cli::Cli;
use detbal::config::{self, ArgsError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::ffi::OsString;

/// Flags of the command line that do not apply to the Python functions, with what to use.
const NOT_OPTIONS: [(&str, &str, &str); 8] = [
    (
        "analyze",
        "output",
        "the analysis is returned; write it with .write(dir)",
    ),
    ("analyze", "force", "use .write(dir, force=True)"),
    ("analyze", "json", "the report is .report, a dict"),
    (
        "analyze",
        "quiet",
        "nothing is printed; .summary() returns the text",
    ),
    (
        "analyze",
        "fail_on_violation",
        "the verdict is .verdict (`rejected`, `p_value`)",
    ),
    (
        "compare",
        "json",
        "the comparison's .report is the JSON, as a dict",
    ),
    ("simulate", "output", "the log is returned as a table"),
    ("simulate", "truth", "the truth is returned as a dict"),
];

/// `detbal SUBCOMMAND` with `options` as flags, then the caller's `tail` (`--` and the
/// positional arguments, or flags of its own), parsed by the CLI's parser.
pub fn parse(
    subcommand: &str,
    options: Option<&Bound<'_, PyDict>>,
    tail: Vec<OsString>,
) -> PyResult<Cli> {
    let command = config::command();
    let sub = command
        .find_subcommand(subcommand)
        .expect("a subcommand of detbal");
    let mut argv: Vec<OsString> = vec!["detbal".into(), subcommand.into()];
    for (key, value) in options.into_iter().flat_map(|o| o.iter()) {
        let key: String = key.extract()?;
        argv.extend(tokens(sub, subcommand, &key, &value)?);
    }
    argv.extend(tail);
    config::try_parse_args(argv).map_err(|e| match e {
        ArgsError::Config(e) => crate::error(e),
        ArgsError::Clap(e) => DetbalError::new_err(clap_message(&e)),
    })
}

/// The tokens of one option: `--flag=value`, `--flag` or `--no-flag`, or none for `None`.
fn tokens(
    sub: &Command,
    subcommand: &str,
    key: &str,
    value: &Bound<'_, PyAny>,
) -> PyResult<Vec<OsString>> {
    let valid = options(sub);
    if let Some((.., instead)) = NOT_OPTIONS
        .iter()
        .find(|(s, name, _)| *s == subcommand && *name == key)
    {
        return Err(DetbalError::new_err(format!(
            "option `{key}` does not apply to detbal.{subcommand}: {instead}"
        )));
    }
    let Some(arg) = valid.iter().find(|a| snake(a) == key) else {
        return Err(unknown(subcommand, key, &valid));
    };
    let long = arg.get_long().expect("options are long flags");
    if value.is_none() {
        return Ok(Vec::new());
    }
    if matches!(arg.get_action(), ArgAction::SetTrue) {
        let on: bool = value.extract().map_err(|_| {
            DetbalError::new_err(format!(
                "option `{key}` is a switch: expected True or False, got {}",
                value.repr().map_or_else(|_| "?".into(), |r| r.to_string())
            ))
        })?;
        let negation = format!("no-{long}");
        let has_negation = sub.get_arguments().any(|a| a.get_long() == Some(&negation));
        return Ok(match (on, has_negation) {
            (true, _) => vec![format!("--{long}").into()],
            (false, true) => vec![format!("--{negation}").into()],
            (false, false) => Vec::new(),
        });
    }
    let py = value.py();
    let text: OsString = if value.hasattr("__fspath__")? {
        py.import("os")?
            .call_method1("fspath", (value,))?
            .extract()?
    } else {
        value.str()?.to_string().into()
    };
    let mut token = OsString::from(format!("--{long}="));
    token.push(text);
    Ok(vec![token])
}

/// The flags of `sub` that are options: long, shown in its help, not `--help` or `--version`.
fn options(sub: &Command) -> Vec<&Arg> {
    sub.get_arguments()
        .filter(|a| a.get_long().is_some() && !a.is_hide_set())
        .filter(|a| !matches!(a.get_action(), ArgAction::Help | ArgAction::Version))
        .collect()
}

/// A flag's name as a Python option: `--min-count` → `min_count`.
fn snake(arg: &Arg) -> String {
    arg.get_long().unwrap_or_default().replace('-', "_")
}

fn unknown(subcommand: &str, key: &str, valid: &[&Arg]) -> PyErr {
    let names: Vec<String> = valid
        .iter()
        .map(|a| snake(a))
        .filter(|n| {
            !NOT_OPTIONS
                .iter()
                .any(|(s, o, _)| *s == subcommand && o == n)
        })
        .collect();
    let guess = match config::closest(key, &names) {
        Some(name) => format!("did you mean `{name}`? "),
        None => String::new(),
    };
    DetbalError::new_err(format!(
        "unknown option `{key}` of detbal.{subcommand}; {guess}valid options: {}",
        names.join(", ")
    ))
}

/// Clap's message as the command line prints it, without `error: ` and the usage lines after it.
fn clap_message(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    text.split("\n\n")
        .next()
        .unwrap_or_default()
        .trim_end()
        .to_owned()
}
