//! kclpy-local's ferrokinesis engine: the ferrokinesis library's Kinesis router on
//! 127.0.0.1 only.
//!
//! ```text
//! kclpy-local-ferrokinesis [--port N] [--region NAME] [--shard-limit N] [--operation-ms N]
//! ```
//!
//! ferrokinesis's own binary listens on every interface with no option to change
//! that; its library serves the same router on a listener the caller binds, and
//! this program binds it to 127.0.0.1:N (0: a free port). Once bound it prints
//! `kclpy-local ferrokinesis: listening on 127.0.0.1:PORT` on stdout.
//!
//! Streams go from CREATING to ACTIVE, and splits, merges and other updates
//! finish, after `--operation-ms` (default 0: at once). It stops on SIGTERM or
//! SIGINT, and when its lifeline ends: `KCLPY_LOCAL_LIFELINE` names the read end
//! of a pipe whose write end only its parent holds, which reads end-of-file once
//! the parent is gone, however it ended. Open connections get `DRAIN` to finish.
//!
//! Exit codes: 0 after a stop, 1 when the port cannot be bound, 2 for bad arguments.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::{FromRawFd, RawFd};
use std::process::ExitCode;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use ferrokinesis::store::StoreOptions;
use tokio::sync::watch;

const PREFIX: &str = "kclpy-local ferrokinesis:";
const LIFELINE: &str = "KCLPY_LOCAL_LIFELINE";
/// How long open connections may take to finish once a stop is asked for.
const DRAIN: Duration = Duration::from_secs(1);
/// The largest request body (a PutRecords of 500 records of 1 MiB is 5 MiB of data,
/// more in base64); the ferrokinesis binary's default.
const MAX_BODY_BYTES: usize = 7 * 1024 * 1024;

struct Options {
    port: u16,
    region: String,
    shard_limit: u32,
    operation_ms: u64,
}

fn usage() -> String {
    "usage: kclpy-local-ferrokinesis [--port N] [--region NAME] [--shard-limit N] \
     [--operation-ms N]"
        .to_string()
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        port: 0,
        region: "us-east-1".to_string(),
        shard_limit: 50,
        operation_ms: 0,
    };
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        if flag == "--help" || flag == "-h" {
            return Err(usage());
        }
        let value = rest
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{}", usage()))?;
        let number = |what: &str| format!("{flag} takes {what}, not {value:?}");
        match flag.as_str() {
            "--port" => options.port = value.parse().map_err(|_| number("a port 0-65535"))?,
            "--region" if !value.is_empty() => options.region = value.clone(),
            "--shard-limit" => {
                options.shard_limit = value.parse().map_err(|_| number("a whole number"))?;
            }
            "--operation-ms" => {
                options.operation_ms = value.parse().map_err(|_| number("milliseconds"))?;
            }
            _ => return Err(format!("unknown argument {flag:?}\n{}", usage())),
        }
    }
    Ok(options)
}

/// The lifeline's descriptor, taken out of the environment; `None` without one.
fn take_lifeline() -> Option<File> {
    let value = std::env::var(LIFELINE).ok()?;
    std::env::remove_var(LIFELINE); // not for a child of this process
    let fd: RawFd = match value.parse() {
        Ok(fd) if fd >= 0 => fd,
        _ => {
            eprintln!("{PREFIX} {LIFELINE}={value:?} is not a descriptor; not watching it");
            return None;
        }
    };
    // SAFETY: the parent handed this descriptor to this process for it alone.
    let file = unsafe { File::from_raw_fd(fd) };
    if let Err(err) = file.metadata() {
        std::mem::forget(file); // not ours to close
        eprintln!("{PREFIX} {LIFELINE}={fd} is not an open descriptor ({err}); not watching it");
        return None;
    }
    Some(file)
}

/// Read the lifeline to its end on a thread of its own; then say so on `stop`.
fn watch_lifeline(mut lifeline: File, stop: watch::Sender<Option<&'static str>>) {
    std::thread::spawn(move || {
        let mut buffer = [0u8; 512];
        loop {
            match lifeline.read(&mut buffer) {
                Ok(0) => break,
                Ok(_) => {}
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = stop.send(Some("the lifeline ended"));
    });
}

/// SIGTERM or SIGINT; then say so on `stop`.
async fn watch_signals(stop: watch::Sender<Option<&'static str>>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        eprintln!("{PREFIX} cannot watch SIGTERM and SIGINT");
        return;
    };
    let why = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    let _ = stop.send(Some(why));
}

async fn stopped(mut asked: watch::Receiver<Option<&'static str>>) -> &'static str {
    let why = asked.wait_for(Option::is_some).await.ok().and_then(|why| *why);
    match why {
        Some(why) => why,
        None => std::future::pending().await, // every sender gone: no stop will come
    }
}

#[tokio::main]
async fn serve(options: Options, lifeline: Option<File>) -> ExitCode {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, options.port));
    let listener = match tokio::net::TcpListener::bind(address).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("{PREFIX} cannot listen on {address}: {err}");
            return ExitCode::from(1);
        }
    };
    let bound = listener.local_addr().unwrap_or(address);

    let (stop, asked) = watch::channel(None);
    if let Some(file) = lifeline {
        watch_lifeline(file, stop.clone());
    }
    tokio::spawn(watch_signals(stop));

    let (app, _store) = ferrokinesis::create_app(StoreOptions {
        create_stream_ms: options.operation_ms,
        delete_stream_ms: options.operation_ms,
        update_stream_ms: options.operation_ms,
        shard_limit: options.shard_limit,
        aws_region: options.region,
        ..StoreOptions::default()
    });
    let app = app.layer(DefaultBodyLimit::max(MAX_BODY_BYTES));

    println!("{PREFIX} listening on {bound}");
    let _ = std::io::stdout().flush();

    let graceful = stopped(asked.clone());
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let why = graceful.await;
        println!("{PREFIX} stopping ({why})");
        let _ = std::io::stdout().flush();
    });
    let drained = async {
        stopped(asked).await;
        tokio::time::sleep(DRAIN).await;
    };
    tokio::select! {
        result = server => {
            if let Err(err) = result {
                eprintln!("{PREFIX} the server failed: {err}");
                return ExitCode::from(1);
            }
        }
        () = drained => {}
    }
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse_args(&args) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let lifeline = take_lifeline(); // before any thread starts
    serve(options, lifeline)
}
