//! `secretctl`: the command-line client. A thin gRPC client: every decision
//! about secrets is the daemon's; this binary parses flags, reads values
//! and passwords without echo or argv, starts the daemon when needed, and
//! prints answers and errors with the contract's exit codes.
#![forbid(unsafe_code)]
// Every line to stdout goes through `outln!`, which returns EPIPE instead
// of panicking like `println!` (`secretctl list | head`).
#![deny(clippy::print_stdout)]

#[macro_use]
mod output;
mod agent;
mod audit;
mod backup;
mod backup_file;
mod cli;
mod cli_transfer;
mod connect;
mod daemon_cmd;
mod doctor;
mod error;
mod export;
mod flags;
mod generate;
mod import;
mod man;
mod mcp;
mod password;
mod password_change;
mod proxy_ca;
mod reauth;
mod restore;
mod run;
mod secrets;
mod security;
mod service;
mod session;
mod set_request;
mod templates;
mod ui;

use clap::Parser;

use cli::{
    Cli, Command, ConfigCommand, PasswordCommand, PolicyCommand, ProxyCommand, ServiceCommand,
};

/// Runs one command; `Ok` holds the exit code (0, or a run's child's code).
async fn dispatch(command: Command, json: bool) -> error::Result<i32> {
    let done = |r: error::Result<()>| r.map(|()| 0);
    if json && !command.prints_json() {
        return Err(error::CliError::usage(format!(
            "--json does nothing for 'secretctl {}'",
            command.name()
        ))
        .hint("leave it out; 'secretctl status --json', 'list --json', 'get --json', 'audit list --json' and the other data commands print JSON")
        .into());
    }
    match command {
        Command::Init(a) => done(session::init(a, json).await),
        Command::Unlock(a) => done(session::unlock(a, json).await),
        Command::Lock => done(session::lock(json).await),
        Command::Status => done(session::status(json).await),
        Command::Set(a) => done(secrets::set(a, json).await),
        Command::Get(a) => done(secrets::get(a, json).await),
        Command::List(a) => done(secrets::list(a, json).await),
        Command::Delete(a) => done(secrets::delete(a, json).await),
        Command::Run(a) => run::run(a).await,
        Command::Export(a) => done(export::run(a).await),
        Command::Import(a) => done(import::run(a, json).await),
        Command::Backup(a) => done(backup::backup(a, json).await),
        Command::Restore(a) => done(restore::restore(a, json).await),
        Command::Password(PasswordCommand::Change(a)) => done(password_change::run(a, json).await),
        Command::Generate(a) => done(generate::run(a).await),
        Command::Security(a) => done(security::run(a, json).await),
        Command::Ui(a) => done(ui::run(a, json).await),
        Command::Audit(c) => done(audit::run(c, json).await),
        Command::Proxy(ProxyCommand::Ca(c)) => done(proxy_ca::run(c, json).await),
        Command::Policy(PolicyCommand::Check) => done(mcp::policy_check(json).await),
        Command::Policy(PolicyCommand::Apply) => done(mcp::apply(mcp::Apply::Policy, json).await),
        Command::Config(ConfigCommand::Apply) => done(mcp::apply(mcp::Apply::Config, json).await),
        Command::Agent(a) => agent::run(a).await,
        Command::Doctor => done(doctor::run(json).await),
        Command::Daemon(c) => done(daemon_cmd::run(c, json).await),
        Command::McpServer => mcp::exec_shim(),
        Command::Service(ServiceCommand::Install { print }) => done(service::install(print).await),
        Command::Service(ServiceCommand::Uninstall { print }) => {
            done(service::uninstall(print).await)
        }
        Command::Service(ServiceCommand::Status { print }) => done(service::status(print).await),
        // Rendered into memory first: the generators panic on a write
        // error (`secretctl completions bash | head`).
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut text = Vec::new();
            clap_complete::generate(shell, &mut cmd, "secretctl", &mut text);
            output::write_all(&text)?;
            Ok(0)
        }
        Command::Man { dir: None } => {
            let mut text = Vec::new();
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command()).render(&mut text)?;
            output::write_all(&text)?;
            Ok(0)
        }
        Command::Man { dir: Some(dir) } => done(man::write_pages(&dir)),
    }
}

// One thread: a CLI call is a few round trips on a local socket, and a
// multi-threaded runtime would cost more to start than they take.
#[tokio::main(flavor = "current_thread")]
async fn main() {
    // clap prints its own usage errors and exits 2.
    let cli = Cli::parse();
    let name = cli.command.name();
    let code = match dispatch(cli.command, cli.json).await {
        Ok(code) => code,
        Err(e) => error::report(name, &e),
    };
    std::process::exit(code);
}
