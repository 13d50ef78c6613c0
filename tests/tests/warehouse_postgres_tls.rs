//! TLS to a PostgreSQL warehouse against the real test server (which serves TLS: the
//! machine's own with Debian's certificate for `localhost`, or the throwaway one `scripts/test`
//! starts with its own): what a load sends is read off the wire by a tap between sluice and
//! the server, so `require` is shown to encrypt and `disable` not to; the `verify-*` modes are
//! shown to check the chain and the name.

mod api_support;
mod warehouse_support;

use std::sync::{Arc, Mutex};

use api_support::Server;
use reqwest::StatusCode;
use serde_json::{Map, Value, json};
use tokio::net::{TcpListener, TcpStream};
use warehouse_support::{
    fresh_prefix, postgres, postgres_settings, postgres_target, sync_until, warehouse,
};

/// The first message of a client that asks for TLS: length 8, code 80877103.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// A TCP proxy to the test server that keeps every byte the client sent.
struct Tap {
    port: u16,
    sent: Arc<Mutex<Vec<u8>>>,
}

impl Tap {
    async fn start() -> Tap {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let (host, target_port, ..) = postgres_target();
        let kept = sent.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let kept = kept.clone();
                let target = format!("{host}:{target_port}");
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(target).await else {
                        return;
                    };
                    relay(client, server, kept).await;
                });
            }
        });
        Tap { port, sent }
    }

    fn sent(&self) -> Vec<u8> {
        self.sent.lock().unwrap().clone()
    }
}

/// Copies both ways, keeping what the client sends.
async fn relay(client: TcpStream, server: TcpStream, kept: Arc<Mutex<Vec<u8>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = async move {
        let mut buffer = vec![0u8; 64 << 10];
        while let Ok(n) = client_read.read(&mut buffer).await {
            if n == 0 {
                break;
            }
            kept.lock().unwrap().extend_from_slice(&buffer[..n]);
            if server_write.write_all(&buffer[..n]).await.is_err() {
                break;
            }
        }
        let _ = server_write.shutdown().await;
    };
    let downstream = async move {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
    };
    tokio::join!(upstream, downstream);
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Settings of a warehouse reached through `tap` with `sslmode`.
fn through(tap: &Tap, prefix: &str, sslmode: &str) -> Map<String, Value> {
    let mut settings = postgres_settings(prefix);
    settings.insert("hostname".into(), json!("127.0.0.1"));
    settings.insert("port".into(), json!(tap.port));
    settings.insert("sslmode".into(), json!(sslmode));
    settings
}

async fn connection_state(server: &Server, id: &str) -> (String, String) {
    let r = server
        .get(&format!("/warehouses/{id}/connection-state"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let data = r.data();
    (
        data["connectionState"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        data["reason"].as_str().unwrap_or_default().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_loads_over_tls_and_disable_in_the_clear() {
    let client = postgres().await;
    let ssl: String = client.query_one("SHOW ssl", &[]).await.unwrap().get(0);
    assert_eq!(
        ssl, "on",
        "the test PostgreSQL must serve TLS (scripts/test starts one that does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let source = server.source("web").await;
    let key = server.write_key(&source).await;
    let (clear_tap, tls_tap) = (Tap::start().await, Tap::start().await);
    let (clear_prefix, tls_prefix) = (fresh_prefix(), format!("{}t", fresh_prefix()));
    let clear = warehouse(
        &server,
        "postgres",
        through(&clear_tap, &clear_prefix, "disable"),
        &source,
    )
    .await;
    let tls = warehouse(
        &server,
        "postgres",
        through(&tls_tap, &tls_prefix, "require"),
        &source,
    )
    .await;

    let marker = "marker-only-on-the-wire-in-the-clear";
    let events: Vec<Value> = (0..5)
        .map(|i| {
            json!({"type": "track", "messageId": format!("tls-{i}"), "userId": "u1",
                        "event": "Signed Up", "properties": {"note": marker}})
        })
        .collect();
    server.send_batch(&key, events).await;
    sync_until(&server, &clear, 5).await;
    sync_until(&server, &tls, 5).await;
    for prefix in [&clear_prefix, &tls_prefix] {
        let n: i64 = client
            .query_one(
                &format!("SELECT count(*) FROM \"{prefix}web\".signed_up WHERE note = $1"),
                &[&marker],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 5, "every event loaded into {prefix}web");
    }
    let (in_clear, encrypted) = (clear_tap.sent(), tls_tap.sent());
    assert!(
        contains(&in_clear, marker.as_bytes()),
        "`disable` sends the rows in the clear"
    );
    assert!(!in_clear.starts_with(&SSL_REQUEST));
    assert!(
        encrypted.starts_with(&SSL_REQUEST),
        "`require` asks for TLS first"
    );
    assert!(
        !contains(&encrypted, marker.as_bytes()),
        "`require` never sends a row in the clear"
    );
    assert!(!contains(&encrypted, b"COPY"), "nor a statement");
    for prefix in [clear_prefix, tls_prefix] {
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{prefix}web\" CASCADE"))
            .await
            .unwrap();
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_modes_check_the_chain_and_the_name() {
    let client = postgres().await;
    let file: String = client
        .query_one("SHOW ssl_cert_file", &[])
        .await
        .unwrap()
        .get(0);
    let pem = std::fs::read_to_string(&file).unwrap_or_else(|e| {
        panic!("the test server's certificate {file} is read to trust it: {e} (the test needs the server on this machine)")
    });
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let source = server.source("web").await;
    let prefix = fresh_prefix();
    // The test certificates name `localhost`, not `127.0.0.1`.
    let case = |host: &str, mode: &str, root: Option<&str>| {
        let mut settings = postgres_settings(&prefix);
        settings.insert("hostname".into(), json!(host));
        settings.insert("sslmode".into(), json!(mode));
        if let Some(root) = root {
            settings.insert("sslrootcert".into(), json!(root));
        }
        settings
    };
    let cases = [
        (
            case("localhost", "verify-full", None),
            "FAILED",
            "UnknownIssuer",
        ),
        (
            case("localhost", "verify-full", Some(pem.as_str())),
            "CONNECTED",
            "",
        ),
        (
            case("127.0.0.1", "verify-full", Some(pem.as_str())),
            "FAILED",
            "not valid for name",
        ),
        (
            case("127.0.0.1", "verify-ca", Some(pem.as_str())),
            "CONNECTED",
            "",
        ),
        (case("127.0.0.1", "require", None), "CONNECTED", ""),
        (case("127.0.0.1", "prefer", None), "CONNECTED", ""),
    ];
    for (settings, want, reason) in cases {
        let shown = json!(settings).to_string();
        let id = warehouse(&server, "postgres", settings, &source).await;
        let (state, why) = connection_state(&server, &id).await;
        assert_eq!(state, want, "{shown}: {why}");
        assert!(
            why.contains(reason),
            "{shown}: the reason names {reason}: {why}"
        );
    }

    for (key, value, named) in [
        ("sslmode", "allow", "`sslmode` must be"),
        ("sslrootcert", "/etc/ssl/certs/ca.pem", "PEM text"),
    ] {
        let mut settings = postgres_settings(&prefix);
        settings.insert(key.into(), json!(value));
        let r = server
            .post(
                "/warehouses",
                json!({"metadataId": "postgres", "settings": settings}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
        assert!(r.body.to_string().contains(named), "{}", r.body);
    }
    server.stop().await;
}
