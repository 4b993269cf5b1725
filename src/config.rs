//! `detbal analyze --config FILE`: every flag of `analyze` settable in a TOML file, for nightly
//! batch jobs; flags on the command line win.
//!
//! Keys are the flags' long names (kebab-case, `max-iterations = 500`), plus `inputs` (a string
//! or an array of strings) for the positional inputs; a boolean flag is `true` or `false`.
//! Relative paths in the file (`inputs`, `output`) are relative to the file's directory, so a
//! job reads the same data from any working directory.
//!
//! How: the command line is parsed once with the inputs optional, to learn which arguments it
//! gave (`ArgMatches::value_source`); each key of the file that the command line did not give
//! becomes `--key=value` tokens placed before the command line's own, and the result is parsed
//! again by the real parser, so the file obeys exactly the flags' validation. Every value of the
//! file is first checked against the flag's own value parser, so a mistake is an error naming the
//! file, the key and the expected type, never a clap message about a flag nobody typed. An
//! unknown key is an error naming the closest valid key and listing them all. The range and
//! consistency checks of `settings` run later, on the merged arguments; [`attribute`] names the
//! file and key in their errors when the value came from the file.

use crate::cli::{AnalyzeArgs, Cli, Command as Subcommand};
use crate::error::{Error, Result};
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, Command, CommandFactory};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

/// The subcommand that reads `--config`.
const SUBCOMMAND: &str = "analyze";

/// Parses the process arguments, merging `--config FILE` into `analyze`'s. `--help` and
/// `--version` exit the process as clap does (code 0); so do command-line errors: a bad value of
/// a flag (`--alpha abc`, `--device tpu`) with code 1, as the range checks of `settings` do
/// (`--alpha 2`), and an error of the command line's shape (an unknown flag, a missing argument)
/// with code 2 (README "Exit codes"). A bad config file is an error.
///
/// Help is wrapped to the terminal's width, and to at most 80 columns (fewer when `COLUMNS`
/// says so) when standard output is not a terminal.
pub fn parse_args(argv: impl IntoIterator<Item = OsString>) -> Result<Cli> {
    match try_parse_args(argv) {
        Ok(cli) => Ok(cli),
        Err(ArgsError::Config(e)) => Err(e),
        Err(ArgsError::Clap(e)) => exit(e),
    }
}

/// Why arguments could not be parsed.
#[derive(Debug)]
pub enum ArgsError {
    /// The `--config` file is unreadable or wrong.
    Config(Error),
    /// Clap's error about the arguments (also its `--help` and `--version` texts).
    Clap(clap::Error),
}

/// Parses as [`parse_args`] does, but returns clap's error instead of exiting the process (the
/// Python package turns its options into arguments and parses them here).
pub fn try_parse_args(
    argv: impl IntoIterator<Item = OsString>,
) -> std::result::Result<Cli, ArgsError> {
    use clap::FromArgMatches;
    let argv: Vec<OsString> = argv.into_iter().collect();
    let (argv, keys) = merge_config(&argv)
        .map_err(ArgsError::Config)?
        .unwrap_or((argv, Vec::new()));
    let mut cli = command()
        .try_get_matches_from(argv)
        .and_then(|matches| Cli::from_arg_matches(&matches))
        .map_err(ArgsError::Clap)?;
    if let Subcommand::Analyze(args) = &mut cli.command {
        args.from_config = keys;
    }
    Ok(cli)
}

/// Widest help text when standard output is not a terminal.
pub const PIPED_HELP_WIDTH: usize = 80;

/// The command-line interface as clap sees it, with the help width of [`parse_args`].
pub fn command() -> Command {
    use std::io::IsTerminal;
    let command = Cli::command();
    if std::io::stdout().is_terminal() {
        return command;
    }
    let columns = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&c| c > 0);
    command.term_width(columns.map_or(PIPED_HELP_WIDTH, |c| c.min(PIPED_HELP_WIDTH)))
}

/// Exits the process on clap's `error` (or `--help`, `--version`): code 1 for a value its flag
/// does not accept, clap's own code otherwise.
fn exit(error: clap::Error) -> ! {
    use clap::error::ErrorKind;
    // clap reports a flag without its value (`--alpha` last) as an invalid empty value: that
    // is the command line's shape, a usage error.
    let bad_value = match error.kind() {
        ErrorKind::ValueValidation => true,
        ErrorKind::InvalidValue => !matches!(
            error.get(clap::error::ContextKind::InvalidValue),
            Some(clap::error::ContextValue::String(v)) if v.is_empty()
        ),
        _ => false,
    };
    if bad_value {
        // A value the flag does not accept is a bad setting (exit 1), like `--alpha 2`.
        let _ = error.print();
        std::process::exit(1)
    }
    error.exit()
}

/// Names the config file and key in a settings error about a flag whose value came from the
/// file (range and consistency checks happen after parsing, in `settings`).
pub fn attribute(error: Error, args: &AnalyzeArgs) -> Error {
    let (Error::Settings { message, hint }, Some(path)) = (&error, &args.config) else {
        return error;
    };
    let names = |key: &&String| {
        let flag = format!("--{key}");
        message.match_indices(&flag).any(|(i, _)| {
            let next = message[i + flag.len()..].chars().next();
            !next.is_some_and(|c| c.is_alphanumeric() || c == '-')
        })
    };
    match args.from_config.iter().find(names) {
        Some(key) => Error::Settings {
            message: format!("{} sets `{key}`: {message}", path.display()),
            hint: hint.clone(),
        },
        None => error,
    }
}

/// The arguments with the config file's values added and the keys taken from the file, or
/// `None` without `--config`.
fn merge_config(argv: &[OsString]) -> Result<Option<(Vec<OsString>, Vec<String>)>> {
    if argv.get(1).map(OsString::as_os_str) != Some(OsStr::new(SUBCOMMAND)) {
        return Ok(None);
    }
    // Inputs may come from the file, so the first pass must not require them. Any other
    // mistake is reported by the real parser below.
    let lenient =
        Cli::command().mut_subcommand(SUBCOMMAND, |c| c.mut_arg("inputs", |a| a.required(false)));
    let Ok(matches) = lenient.try_get_matches_from(argv) else {
        return Ok(None);
    };
    let Some(matches) = matches.subcommand_matches(SUBCOMMAND) else {
        return Ok(None);
    };
    let Some(path) = matches.get_one::<PathBuf>("config") else {
        return Ok(None);
    };
    let command = Cli::command();
    let analyze = command
        .find_subcommand(SUBCOMMAND)
        .expect("analyze is a subcommand");
    // A switch turned off on the command line (`--no-quiet`) counts as given: the file's value
    // does not apply.
    let on_command_line = |id: &str| {
        matches!(matches.try_get_raw(id), Ok(Some(_)))
            && matches.value_source(id) == Some(ValueSource::CommandLine)
    };
    let given = |id: &str| on_command_line(id) || on_command_line(&format!("no_{id}"));
    let (tokens, keys) = file_tokens(path, analyze, &given)?;
    let mut merged = argv[..2].to_vec();
    merged.extend(tokens);
    merged.extend_from_slice(&argv[2..]);
    Ok(Some((merged, keys)))
}

/// The `--key=value` tokens (and positional inputs) of the file's keys not `given` on the
/// command line, and those keys.
fn file_tokens(
    path: &Path,
    analyze: &Command,
    given: &dyn Fn(&str) -> bool,
) -> Result<(Vec<OsString>, Vec<String>)> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| {
        Error::bad_input(path, format!("not a valid TOML file: {}", e.message()))
            .at(line_of(&text, e.span()))
    })?;
    let base = path.parent().unwrap_or(Path::new(""));
    let settable: Vec<&Arg> = analyze
        .get_arguments()
        .filter(|a| !matches!(key_of(a).as_str(), "config" | "help") && !is_negation(a))
        .collect();
    let (mut tokens, mut keys) = (Vec::new(), Vec::new());
    for (key, value) in &table {
        let Some(arg) = settable.iter().find(|a| key_of(a) == *key) else {
            return Err(unknown_key(path, key, &settable));
        };
        // Checked even when the command line overrides it: a wrong file stays wrong.
        let arg_tokens = arg_tokens(path, key, value, arg, base)?;
        if !given(arg.get_id().as_str()) {
            tokens.extend(arg_tokens);
            keys.push(key.clone());
        }
    }
    Ok((tokens, keys))
}

/// A hidden `--no-X` switch turning `--X` off: a key of the command line only (the file says
/// `X = false`).
fn is_negation(arg: &Arg) -> bool {
    arg.is_hide_set()
        && matches!(arg.get_action(), ArgAction::SetTrue)
        && arg.get_id().as_str().starts_with("no_")
}

/// The key of an argument in the file: its long name, or its id for the positional inputs.
fn key_of(arg: &Arg) -> String {
    arg.get_long()
        .map_or_else(|| arg.get_id().to_string(), str::to_string)
}

/// Parses one value of `arg` alone, with the flag's own parser and validation.
fn check(arg: &Arg, value: &OsStr) -> std::result::Result<(), clap::Error> {
    let token = match arg.get_long() {
        Some(long) => {
            let mut token = OsString::from(format!("--{long}="));
            token.push(value);
            token
        }
        None => value.to_owned(),
    };
    Command::new("detbal")
        .no_binary_name(true)
        .arg(arg.clone().required(false))
        .try_get_matches_from([token])
        .map(drop)
}

/// What a value of `arg` must look like, found by asking the flag's own parser.
fn expected(arg: &Arg) -> String {
    if matches!(arg.get_action(), ArgAction::SetTrue) {
        return "a boolean (true or false)".into();
    }
    let names: Vec<String> = arg
        .get_possible_values()
        .iter()
        .map(|v| format!("\"{}\"", v.get_name()))
        .collect();
    if !names.is_empty() {
        return format!("one of {}", names.join(", "));
    }
    let accepts = |s: &str| check(arg, OsStr::new(s)).is_ok();
    let text = if accepts("not a number") {
        "a string"
    } else if accepts("0.5") {
        "a number"
    } else {
        "an integer"
    };
    if arg.is_positional() {
        format!("{text} or an array of them")
    } else {
        text.into()
    }
}

/// The tokens for one key's value, checked against the flag's type and parser.
fn arg_tokens(
    path: &Path,
    key: &str,
    value: &toml::Value,
    arg: &Arg,
    base: &Path,
) -> Result<Vec<OsString>> {
    use toml::Value as V;
    let expected = expected(arg);
    let wrong = |found: &V| {
        Error::bad_input(
            path,
            format!(
                "key `{key}`: expected {expected}, found {}",
                found.type_str()
            ),
        )
    };
    let long = |v: OsString| {
        let mut token = OsString::from(format!("--{key}="));
        token.push(v);
        token
    };
    if matches!(arg.get_action(), ArgAction::SetTrue) {
        return match value {
            V::Boolean(true) => Ok(vec![format!("--{key}").into()]),
            V::Boolean(false) => Ok(Vec::new()),
            other => Err(wrong(other)),
        };
    }
    let scalars: Vec<&V> = match value {
        V::Array(items) if arg.is_positional() => items.iter().collect(),
        other => vec![other],
    };
    let mut out = Vec::new();
    for v in scalars {
        let text = match v {
            V::String(s) if expected.starts_with("a string") => OsString::from(s),
            V::String(_) if !expected.starts_with("one of") => return Err(wrong(v)),
            V::String(s) => OsString::from(s),
            V::Integer(i) if expected != "a string" => OsString::from(i.to_string()),
            // `{:e}` keeps 1e308 as written (`to_string` spells out its 309 digits).
            V::Float(x) if expected == "a number" => OsString::from(format!("{x:e}")),
            other => return Err(wrong(other)),
        };
        // Paths in the file are relative to the file.
        let text = if matches!(key, "inputs" | "output") {
            base.join(PathBuf::from(text)).into_os_string()
        } else {
            text
        };
        if let Err(e) = check(arg, &text) {
            return Err(Error::bad_input(
                path,
                format!("key `{key}`: {}", clap_reason(&e)),
            ));
        }
        out.push(if arg.is_positional() {
            text
        } else {
            long(text)
        });
    }
    Ok(out)
}

/// Clap's one-line reason for a rejected value, without its `error:` prefix and usage.
fn clap_reason(e: &clap::Error) -> String {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or_default();
    first.trim_start_matches("error: ").to_string()
}

fn unknown_key(path: &Path, key: &str, settable: &[&Arg]) -> Error {
    let keys: Vec<String> = settable.iter().map(|a| key_of(a)).collect();
    let negated = key.strip_prefix("no-").and_then(|k| {
        settable
            .iter()
            .find(|a| key_of(a) == k && matches!(a.get_action(), ArgAction::SetTrue))
    });
    if let Some(arg) = negated {
        let k = key_of(arg);
        return Error::bad_input(path, format!("unknown key `{key}`")).hint(format!(
            "`--{key}` is a command-line flag; in the file write `{k} = false`"
        ));
    }
    let hint = match closest(key, &keys) {
        Some(k) => format!("did you mean `{k}`? valid keys: {}", keys.join(", ")),
        None => format!("valid keys: {}", keys.join(", ")),
    };
    Error::bad_input(path, format!("unknown key `{key}`")).hint(hint)
}

/// The name in `names` closest to the unknown `name` (Jaro–Winkler above 0.8), if one is close:
/// the suggestion for an unknown key here and for an unknown option of the Python package.
pub fn closest<'a>(name: &str, names: &'a [String]) -> Option<&'a String> {
    names
        .iter()
        .map(|n| (strsim::jaro_winkler(name, n), n))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, n)| n)
}

/// `line N` of a byte span in `text`.
fn line_of(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    let start = span.map_or(0, |s| s.start).min(text.len());
    format!("line {}", text[..start].matches('\n').count() + 1)
}
