//! `toolhost new`: scaffold a tool project in Rust, Python or JavaScript that
//! builds and passes its own tests as generated.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use toolhost::scaffold::{self, Lang};

#[derive(Debug, Args)]
pub(super) struct NewArgs {
    /// The tool's name: a lowercase letter, then up to 63 of a-z 0-9 _ -.
    /// It names the folder, the component and its one tool.
    name: String,
    /// The language of the tool.
    #[arg(long, value_enum)]
    lang: LangArg,
    /// Where to create the project folder [default: the current folder].
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// (Rust) The toolhost-sdk folder to depend on by path [default: this
    /// build's own sdk/ if it is still there, else toolhost-sdk by version].
    #[arg(long)]
    sdk: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LangArg {
    Rust,
    Python,
    Js,
}

pub(super) fn run(args: NewArgs) -> anyhow::Result<ExitCode> {
    let lang = match args.lang {
        LangArg::Rust => Lang::Rust,
        LangArg::Python => Lang::Python,
        LangArg::Js => Lang::Js,
    };
    let created = scaffold::create(&args.name, lang, &args.dir, args.sdk.as_deref())?;
    println!(
        "created {} ({lang} tool `{}`)\n",
        created.root.display(),
        args.name
    );
    println!("next:\n  cd {}", created.root.display());
    for line in created.build.lines() {
        println!("  {line}");
    }
    println!("  {}\n  {}", created.test, created.call);
    Ok(ExitCode::SUCCESS)
}
