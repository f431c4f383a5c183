//! `secretctl`: the command-line client. A thin gRPC client: every decision
//! about secrets is the daemon's.
#![forbid(unsafe_code)]

mod audit;
mod cli;
mod connect;
mod error;
mod mcp;
mod output;
mod password;
mod run;
mod secrets;
mod service;
mod session;
mod templates;

use clap::Parser;

use cli::{Cli, Command};
use error::CliError;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cli = Cli::parse();
    let name = cli.command.name();
    let json = cli.json;
    let result: Result<i32, CliError> = match cli.command {
        Command::Init(a) => session::init(a, json).await.map(|_| 0),
        Command::Unlock(a) => session::unlock(a, json).await.map(|_| 0),
        Command::Lock => session::lock(json).await.map(|_| 0),
        Command::Status => session::status(json).await.map(|_| 0),
        Command::Set(a) => secrets::set(a, json).await.map(|_| 0),
        Command::Get(a) => secrets::get(a, json).await.map(|_| 0),
        Command::List(a) => secrets::list(a, json).await.map(|_| 0),
        Command::Delete(a) => secrets::delete(a, json).await.map(|_| 0),
        Command::Run(a) => run::run(a).await,
        Command::Audit(c) => audit::run(c, json).await.map(|_| 0),
        Command::Policy(cli::PolicyCommand::Check) => mcp::policy_check(json).await.map(|_| 0),
        Command::McpServer => mcp::exec_shim(),
        Command::Service(cli::ServiceCommand::Install { print }) => {
            service::install(print).await.map(|_| 0)
        }
        Command::Service(cli::ServiceCommand::Uninstall { print }) => {
            service::uninstall(print).await.map(|_| 0)
        }
        Command::Service(cli::ServiceCommand::Status { print }) => {
            service::status(print).await.map(|_| 0)
        }
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "secretctl", &mut std::io::stdout());
            Ok(0)
        }
        Command::Man => clap_mangen::Man::new(<Cli as clap::CommandFactory>::command())
            .render(&mut std::io::stdout())
            .map(|_| 0)
            .map_err(CliError::from),
    };
    let code = match result {
        Ok(code) => code, // 0, or the child's code for run
        Err(e) => {
            eprintln!("secretctl {name}: {}", e.message);
            if let Some(h) = &e.hint {
                eprintln!("hint: {h}");
            }
            e.code
        }
    };
    std::process::exit(code);
}
