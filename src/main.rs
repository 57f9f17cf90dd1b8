use clap::{Parser, Subcommand};
use destination_kafka::airbyte::{logging, output};
use destination_kafka::config::{spec, Settings};
use destination_kafka::error::{Error, FailureType};
use destination_kafka::stop::Stop;
use destination_kafka::{check, discover, write};

/// Airbyte destination for Apache Kafka.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the connector specification.
    Spec,
    /// Check that the config can reach the cluster (and write to `test_topic`).
    Check {
        #[arg(long)]
        config: String,
    },
    /// List the topics a sync can write to.
    Discover {
        #[arg(long)]
        config: String,
    },
    /// Write Airbyte messages from stdin to Kafka.
    Write {
        #[arg(long)]
        config: String,
        #[arg(long)]
        catalog: String,
    },
}

fn main() {
    let cli = Cli::parse();
    logging::init();
    // First thing: a stop asked for during startup must be seen as much as one mid-sync.
    let (stop, installed) = Stop::install();
    if let Err(e) = installed {
        tracing::warn!("cannot install the SIGTERM/SIGINT handlers: {e}");
    }
    // A panic is a bug, but the platform still deserves a TRACE that says so: the main thread's ends the process;
    // another thread's is logged, and the main thread, which finds that thread gone, fails with one TRACE.
    std::panic::set_hook(Box::new(|info| {
        let message = format!("internal error: {info}");
        match std::thread::current().name() {
            Some("main") => {
                let _ = output::emit(&output::trace_error(FailureType::SystemError, &message));
            }
            _ => tracing::error!("{message}"),
        }
    }));
    let result = match cli.command {
        Command::Spec => output::emit(&output::spec_message(spec::spec())).map_err(stdout_error),
        Command::Check { config } => {
            let outcome = Settings::load(&config).and_then(|settings| check::run(&settings, &stop));
            if let Err(e) = &outcome {
                tracing::warn!("check failed ({:?}): {e}", e.failure_type());
            }
            output::emit(&output::connection_status(outcome.map_err(|e| e.to_string()))).map_err(stdout_error)
        }
        Command::Discover { config } => Settings::load(&config)
            .and_then(|settings| discover::run(&settings, &stop))
            .and_then(|operations| output::emit(&output::destination_catalog(operations)).map_err(stdout_error)),
        Command::Write { config, catalog } => {
            Settings::load(&config).and_then(|settings| write::run(&settings, &catalog, &stop))
        }
    };
    if let Err(error) = result {
        let _ = output::emit(&output::trace_error(error.failure_type(), &error.to_string()));
        std::process::exit(1);
    }
}

fn stdout_error(e: std::io::Error) -> Error {
    Error::io("cannot write to stdout", e)
}
