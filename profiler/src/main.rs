//! The `profiler` binary: parse the command line, run it, report errors with their causes.

use clap::Parser as _;

fn main() -> std::process::ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).format_timestamp(None).init();
    match profiler::cli::run(profiler::cli::Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // `check` or `diff` found something and said what: 1, as diff(1) does.
        Err(err) if err.downcast_ref::<profiler::output::Found>().is_some() => {
            eprintln!("{err}");
            std::process::ExitCode::from(1)
        }
        Err(err) => {
            eprintln!("error: {}", message(&err));
            std::process::ExitCode::from(2)
        }
    }
}

/// The error and its causes, each cause once: many of our messages already quote their cause.
fn message(err: &anyhow::Error) -> String {
    let mut text = err.to_string();
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}
