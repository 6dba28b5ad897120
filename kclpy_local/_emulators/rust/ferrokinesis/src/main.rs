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
//! The library's GetRecords answer at a closed shard's end has no next iterator but
//! no `ChildShards` either, which the KCL requires there (KCL 1.15 refuses the answer
//! and retries it for ever). This program adds them, as Kinesis sends them: every
//! shard whose parent or adjacent parent is the shard read, with its parents and its
//! hash key range, in the answer's own encoding (JSON or CBOR).
//!
//! `GET /_kclpy-local/wire` answers `{"cbor": N, "json": M}`: how many Kinesis API
//! requests came in each wire format since the start, so a test can tell which one
//! a client really spoke.
//!
//! Exit codes: 0 after a stop, 1 when the port cannot be bound, 2 for bad arguments.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::{FromRawFd, RawFd};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use ferrokinesis::shard_iterator::decode_shard_iterator;
use ferrokinesis::store::{Store, StoreOptions};
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

    let (app, store) = ferrokinesis::create_app(StoreOptions {
        create_stream_ms: options.operation_ms,
        delete_stream_ms: options.operation_ms,
        update_stream_ms: options.operation_ms,
        shard_limit: options.shard_limit,
        aws_region: options.region,
        ..StoreOptions::default()
    });
    let app = app
        .route("/_kclpy-local/wire", get(wire_counts))
        .layer(middleware::from_fn_with_state(store, child_shards))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));

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

const CBOR_TYPE: &str = "application/x-amz-cbor-1.1";

/// Kinesis API requests served, by wire format (see the module comment).
static SERVED_CBOR: AtomicU64 = AtomicU64::new(0);
static SERVED_JSON: AtomicU64 = AtomicU64::new(0);

async fn wire_counts() -> Response {
    let counts = serde_json::json!({
        "cbor": SERVED_CBOR.load(Ordering::Relaxed),
        "json": SERVED_JSON.load(Ordering::Relaxed),
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(counts.to_string()))
        .unwrap_or_default()
}

/// A request or answer body, decoded from its encoding.
enum Decoded {
    Json(serde_json::Value),
    Cbor(ciborium::Value),
}

impl Decoded {
    fn parse(bytes: &[u8], cbor: bool) -> Option<Decoded> {
        if cbor {
            ciborium::from_reader(bytes).ok().map(Decoded::Cbor)
        } else {
            serde_json::from_slice(bytes).ok().map(Decoded::Json)
        }
    }

    fn has(&self, key: &str) -> bool {
        match self {
            Decoded::Json(value) => value.get(key).is_some_and(|v| !v.is_null()),
            Decoded::Cbor(ciborium::Value::Map(entries)) => entries
                .iter()
                .any(|(k, v)| k.as_text() == Some(key) && !v.is_null()),
            Decoded::Cbor(_) => false,
        }
    }

    fn text(&self, key: &str) -> Option<String> {
        match self {
            Decoded::Json(value) => value.get(key)?.as_str().map(str::to_owned),
            Decoded::Cbor(ciborium::Value::Map(entries)) => entries
                .iter()
                .find(|(k, _)| k.as_text() == Some(key))
                .and_then(|(_, v)| v.as_text().map(str::to_owned)),
            Decoded::Cbor(_) => None,
        }
    }

    /// `self` with `key` set to `value` (a JSON value, converted for CBOR), encoded.
    fn with(self, key: &str, value: serde_json::Value) -> Option<Vec<u8>> {
        match self {
            Decoded::Json(mut object) => {
                object.as_object_mut()?.insert(key.to_owned(), value);
                serde_json::to_vec(&object).ok()
            }
            Decoded::Cbor(ciborium::Value::Map(mut entries)) => {
                let converted = ciborium::Value::serialized(&value).ok()?;
                entries.push((ciborium::Value::Text(key.to_owned()), converted));
                let mut out = Vec::new();
                ciborium::into_writer(&ciborium::Value::Map(entries), &mut out).ok()?;
                Some(out)
            }
            Decoded::Cbor(_) => None,
        }
    }
}

/// The children of `shard_id` in `stream_name`, as GetRecords's `ChildShards`.
async fn children_of(store: &Store, stream_name: &str, shard_id: &str) -> Vec<serde_json::Value> {
    let Ok(stream) = store.get_stream(stream_name).await else {
        return Vec::new();
    };
    stream
        .shards
        .iter()
        .filter(|child| {
            child.parent_shard_id.as_deref() == Some(shard_id)
                || child.adjacent_parent_shard_id.as_deref() == Some(shard_id)
        })
        .map(|child| {
            let parents: Vec<&String> = child
                .parent_shard_id
                .iter()
                .chain(child.adjacent_parent_shard_id.iter())
                .collect();
            serde_json::json!({
                "ShardId": child.shard_id,
                "ParentShards": parents,
                "HashKeyRange": {
                    "StartingHashKey": child.hash_key_range.starting_hash_key,
                    "EndingHashKey": child.hash_key_range.ending_hash_key,
                },
            })
        })
        .collect()
}

/// Counts each Kinesis API request by wire format, and adds `ChildShards` to a
/// GetRecords answer that ends its shard (see the module comment); every other
/// request and answer passes unchanged.
async fn child_shards(State(store): State<Store>, request: Request, next: Next) -> Response {
    let Some(target) = request
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    else {
        return next.run(request).await;
    };
    let cbor = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with(CBOR_TYPE));
    if cbor { &SERVED_CBOR } else { &SERVED_JSON }.fetch_add(1, Ordering::Relaxed);
    if !target.ends_with(".GetRecords") {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY_BYTES).await else {
        return Response::builder()
            .status(StatusCode::PAYLOAD_TOO_LARGE)
            .body(Body::empty())
            .unwrap_or_default();
    };
    let iterator = Decoded::parse(&bytes, cbor).and_then(|d| d.text("ShardIterator"));
    let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    let Some(iterator) = iterator else {
        return response;
    };
    if response.status() != StatusCode::OK {
        return response;
    }
    // Only a shard with children (a closed one) can end: an open shard's answers,
    // nearly all of them, pass without being decoded.
    let Ok((_, stream_name, shard_id, _)) = decode_shard_iterator(&iterator) else {
        return response;
    };
    let children = children_of(&store, &stream_name, &shard_id).await;
    if children.is_empty() {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, usize::MAX).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let unchanged = |parts, bytes: Bytes| Response::from_parts(parts, Body::from(bytes));
    let Some(answer) = Decoded::parse(&bytes, cbor) else {
        return unchanged(parts, bytes);
    };
    if answer.has("NextShardIterator") || answer.has("ChildShards") {
        return unchanged(parts, bytes);
    }
    match answer.with("ChildShards", serde_json::Value::Array(children)) {
        Some(encoded) => {
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(encoded))
        }
        None => unchanged(parts, bytes),
    }
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
