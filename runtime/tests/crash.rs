//! The data plane survives SIGKILL: clients send batches to a real `sluice serve` process, the
//! process is killed mid-stream, restarted on the same data directory, and every event that
//! was acknowledged with a 200 reaches the webhook receiver (at least once).

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::start;

mod support;

const TOKEN: &str = "crash-test-owner-token";

/// One HTTP/1.1 POST of JSON; the status code and the body, or `None` on any I/O failure.
fn post(address: &str, path: &str, auth: &str, body: &Value) -> Option<(u16, Value)> {
    let mut stream = TcpStream::connect(address).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let body = body.to_string();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    Some((status, serde_json::from_str(body).unwrap_or(Value::Null)))
}

/// A webhook receiver: records every delivered `messageId`.
fn receiver() -> (String, Arc<Mutex<HashSet<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("address"));
    let seen = Arc::new(Mutex::new(HashSet::new()));
    let shared = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let shared = shared.clone();
            std::thread::spawn(move || serve_connection(stream, &shared));
        }
    });
    (url, seen)
}

fn serve_connection(stream: TcpStream, seen: &Mutex<HashSet<String>>) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut length = 0usize;
        let mut line = String::new();
        let mut first = true;
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line == "\r\n" && !first {
                break;
            }
            first = false;
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if let Ok(event) = serde_json::from_slice::<Value>(&body)
            && let Some(id) = event["messageId"].as_str()
        {
            seen.lock().expect("lock").insert(id.to_string());
        }
        if writer
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .is_err()
        {
            return;
        }
    }
}

#[test]
fn every_acknowledged_event_is_delivered_after_sigkill() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (hook, seen) = receiver();
    let mut server = start(dir.path(), Some(TOKEN));
    let address = server.address.clone();
    let bearer = format!("Bearer {TOKEN}");
    let (status, body) = post(
        &address,
        "/sources",
        &bearer,
        &json!({"slug": "crash", "enabled": true, "metadataId": "http"}),
    )
    .expect("the server answers");
    assert_eq!(status, 201, "{body}");
    let source = body["data"]["source"]["id"]
        .as_str()
        .expect("an id")
        .to_string();
    let key = body["data"]["source"]["writeKeys"][0]
        .as_str()
        .expect("a key")
        .to_string();
    let (status, body) = post(
        &address,
        "/destinations",
        &bearer,
        &json!({"sourceId": source, "metadataId": "webhook", "settings": {"url": hook}}),
    )
    .expect("the server answers");
    assert_eq!(status, 201, "{body}");

    // Two clients send batches of 20 until the server dies; acknowledged ids are recorded.
    let acked = Arc::new(Mutex::new(HashSet::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let basic = format!("Basic {}", base64_user(&key));
    let clients: Vec<_> = (0..2)
        .map(|c| {
            let (acked, stop, address, basic) =
                (acked.clone(), stop.clone(), address.clone(), basic.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let ids: Vec<String> = (0..20).map(|i| format!("c{c}-b{n}-e{i}")).collect();
                    n += 1;
                    let batch: Vec<Value> = ids
                        .iter()
                        .map(|id| json!({"type": "track", "event": "Tick", "userId": "u", "messageId": id}))
                        .collect();
                    if let Some((200, _)) = post(&address, "/v1/batch", &basic, &json!({"batch": batch})) {
                        acked.lock().expect("lock").extend(ids);
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    server.child.kill().expect("SIGKILL");
    let _ = server.child.wait();
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().expect("client thread");
    }
    let acked = acked.lock().expect("lock").clone();
    assert!(
        acked.len() >= 20,
        "some events were acknowledged before the kill"
    );

    eprintln!("{} events acknowledged before SIGKILL", acked.len());
    let mut server = start(dir.path(), Some(TOKEN));
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let missing = {
            let seen = seen.lock().expect("lock");
            acked.iter().filter(|id| !seen.contains(*id)).count()
        };
        if missing == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} of {} acknowledged events never arrived",
            acked.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = server.child.kill();
    let _ = server.child.wait();
}

/// base64 of `"<key>:"` (HTTP Basic with an empty password).
fn base64_user(key: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("{key}:"))
}

/// A server whose log reader went away (its stderr is a broken pipe) still stops on SIGTERM
/// instead of hanging.
#[test]
fn sigterm_stops_the_server_even_when_its_stderr_is_gone() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("SLUICE_DATA_DIR", dir.path())
        .env("SLUICE_BOOTSTRAP_TOKEN", TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sluice starts");
    {
        let mut lines = BufReader::new(child.stderr.take().expect("stderr is piped")).lines();
        loop {
            let line = lines
                .next()
                .expect("the server logs its address")
                .expect("a line");
            if line.contains("address=") {
                break;
            }
        }
        // The reader is dropped here: later log lines hit a closed pipe.
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if child.try_wait().expect("waits").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
