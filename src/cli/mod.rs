//! The `keyrotor` command: parses the arguments ([`args`]), builds the [`Context`] every
//! command works in once (policy, clock, AWS, output format; [`context`]) and hands the
//! command to its module (`cmd_*`). Exit codes are [`Exit`], the README's table.

mod accounts;
mod args;
mod cmd_audit;
mod cmd_local;
mod cmd_migrate;
mod cmd_read;
mod cmd_respond;
mod cmd_rotate;
mod cmd_sweep;
mod context;
mod exit;
mod output;
mod print;
mod progress;
mod remote;
mod report_html;

use std::process::ExitCode;

use clap::Parser;

use crate::aws::Connection;

pub use args::OutputFormat;
use args::{AuditCommand, Cli, Command, PolicyCommand, ReactivateCommand, RotateCommand};
pub use context::parse_duration;
use context::{Clock, Connect, Context, Settings, load_policy};
use exit::CliError;
pub use exit::Exit;
use print::{emit, note, to_json};

/// The dispatcher: commands that need no AWS run at once; the others get a [`Context`].
async fn run(cli: Cli) -> Result<Exit, CliError> {
    let (policy, policy_source) = load_policy(cli.config.as_ref())?;
    let settings = Settings {
        policy,
        policy_source,
        output: cli.output,
        quiet: cli.quiet,
    };
    let aws = Connect {
        settings,
        connection: Connection {
            profile: cli.profile,
            region: cli.region,
            endpoint_url: cli.endpoint_url,
        },
        call_stats: cli.call_stats,
    };
    match cli.command {
        Command::Policy {
            command: PolicyCommand::Check,
        } => cmd_local::policy_check(&aws.settings),
        Command::Completions { shell } => cmd_local::completions(shell),
        Command::Schedule { cron } => cmd_local::schedule(&aws.settings, &cron),
        Command::Init => aws.run(async |ctx| cmd_audit::init(ctx).await).await,
        Command::Plan { kind, at, record } => {
            aws.run(async |ctx| cmd_read::plan(ctx, &kind, at.as_deref(), record).await)
                .await
        }
        Command::Report { html, recent } => {
            aws.run(async |ctx| cmd_read::report(ctx, html.as_deref(), recent).await)
                .await
        }
        Command::Certs {
            within,
            regions,
            fail_within,
        } => {
            aws.run(async |ctx| {
                cmd_read::certs(ctx, within.as_deref(), &regions, fail_within).await
            })
            .await
        }
        Command::Sweep { kind, emf, remote } => {
            aws.run(async |ctx| cmd_sweep::sweep(ctx, kind, emf, &remote).await)
                .await
        }
        Command::Rotate {
            command: RotateCommand::Secret { secret, via },
        } => {
            aws.run(async |ctx| cmd_rotate::secret(ctx, &secret, via).await)
                .await
        }
        Command::Rotate {
            command:
                RotateCommand::ApiKey {
                    key,
                    reason,
                    remote,
                },
        } => {
            aws.run(async |ctx| cmd_rotate::api_key(ctx, &key, reason, &remote).await)
                .await
        }
        Command::Respond {
            command,
            event,
            override_exemption,
            no_investigation,
        } => {
            let request =
                cmd_respond::What::from_args(command, event, override_exemption, no_investigation)?;
            aws.run(async |ctx| cmd_respond::respond(ctx, &request).await)
                .await
        }
        Command::Reactivate {
            command: ReactivateCommand::IamKey { access_key_id },
        } => {
            aws.run(async |ctx| cmd_rotate::reactivate_iam_key(ctx, &access_key_id).await)
                .await
        }
        Command::Migrate { command } => {
            aws.run(async |ctx| cmd_migrate::migrate(ctx, &command).await)
                .await
        }
        Command::Audit {
            command:
                AuditCommand::List {
                    resource,
                    run,
                    since,
                },
        } => {
            aws.run(async |ctx| cmd_audit::list(ctx, resource, run, since.as_deref()).await)
                .await
        }
        Command::Audit {
            command: AuditCommand::Verify,
        } => aws.run(async |ctx| cmd_audit::verify(ctx).await).await,
    }
}

/// Logs to stderr (`KEYROTOR_LOG`, default warnings); progress bars when stderr is a
/// terminal and `--quiet` is not given.
fn init_tracing(quiet: bool) {
    use std::io::IsTerminal;
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEYROTOR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error,keyrotor=warn"));
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(filter);
    let bars = (!quiet && std::io::stderr().is_terminal()).then(|| {
        progress::Bars::new().with_filter(
            tracing_subscriber::filter::Targets::new()
                .with_target(crate::progress::TARGET, tracing::Level::DEBUG),
        )
    });
    let _ = tracing_subscriber::registry()
        .with(logs)
        .with(bars)
        .try_init();
}

/// Entry point of the `keyrotor` binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.quiet);
    {
        use std::io::IsTerminal;
        output::enable_colour(
            std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::env::var("TERM").as_deref() != Ok("dumb"),
        );
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("keyrotor: error: cannot start the async runtime: {e}");
            return Exit::Failed.into();
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(exit) => exit.into(),
        Err(e) => {
            // Errors quote account data (names, tags): no control characters reach the terminal.
            eprintln!("keyrotor: error: {}", output::clean_lines(&e.to_string()));
            e.exit_code().into()
        }
    }
}
