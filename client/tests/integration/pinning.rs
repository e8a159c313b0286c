//! The server's certificate, pinned: first contact shows its fingerprint and keeps it
//! once trusted; another server on the trusted one's address (another certificate)
//! gets nothing, and the client stops with a screen that says so.

use crate::gui::{Env, app_with_memory, click, env, launch, register_approved, setup, type_into, wait_for};
use egui_kittest::kittest::Queryable;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thindesk_client::Setup;
use thindesk_client::i18n::Lang;
use thindesk_client::settings::{Memory, Settings};
use thindesk_tests::STUDENT;

/// Every byte the impostor received, connection by connection.
type Received = Arc<Mutex<Vec<Vec<u8>>>>;

/// A TLS server with a certificate of its own (made as thindesk makes one) on
/// `address`: it records what arrives, before and after the handshake, and answers
/// nothing else. The thread ends with the test process.
fn impostor(address: SocketAddr) -> (Received, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("dir");
    thindesk_server::tls::ensure(dir.path(), &["127.0.0.1".into()]).expect("a certificate");
    let config = thindesk_server::tls::server_config(dir.path()).expect("TLS settings");
    // The trusted server's port was just freed; the kernel may hold it a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    let listener = loop {
        match TcpListener::bind(address) {
            Ok(listener) => break listener,
            Err(e) if Instant::now() < deadline => {
                eprintln!("waiting for {address}: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("cannot take over {address}: {e}"),
        }
    };
    let received = Received::default();
    let record = received.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (config, record) = (config.clone(), record.clone());
            std::thread::spawn(move || serve_one(stream, config, record));
        }
    });
    (received, dir)
}

fn serve_one(stream: TcpStream, config: Arc<rustls::ServerConfig>, record: Received) {
    let index = {
        let mut all = record.lock().expect("lock");
        all.push(Vec::new());
        all.len() - 1
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut tap = Tap { stream, record, index };
    let Ok(mut tls) = rustls::ServerConnection::new(config) else { return };
    // The handshake fails when the client refuses the certificate; had it gone on,
    // whatever the client sent would be read here, in the clear, and recorded.
    while tls.is_handshaking() {
        if tls.complete_io(&mut tap).is_err() {
            return;
        }
    }
    let mut plain = Vec::new();
    let _ = rustls::Stream::new(&mut tls, &mut tap).read_to_end(&mut plain);
    tap.record.lock().expect("lock")[tap.index].extend_from_slice(b"\nDECRYPTED:");
    tap.record.lock().expect("lock")[tap.index].extend_from_slice(&plain);
}

/// The connection, with every byte read also recorded.
struct Tap {
    stream: TcpStream,
    record: Received,
    index: usize,
}

impl std::io::Read for Tap {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = self.stream.read(buffer)?;
        self.record.lock().expect("lock")[self.index].extend_from_slice(&buffer[..read]);
        Ok(read)
    }
}

impl std::io::Write for Tap {
    fn write(&mut self, buffer: &[u8]) -> std::io::Result<usize> {
        self.stream.write(buffer)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.stream.flush()
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

#[test]
fn a_server_with_another_certificate_on_the_same_address_gets_no_credentials() {
    let env = env();
    let mac = "02:00:00:00:00:41";
    register_approved(&env, mac, "41");
    let address = env.server.server.address();
    let pinned = env.pin();
    let mut h = app_with_memory(&env, env.server.server.url(), mac, env.settings(), Memory::in_memory());
    wait_for(&mut h, "User name");

    // The trusted server goes; a laptop on the LAN answers on its address.
    let Env { server, runtime } = env;
    drop(runtime.block_on(server.stop()));
    let (received, certificate) = impostor(address);

    type_into(&mut h, "User name", STUDENT.0);
    type_into(&mut h, "Password", STUDENT.1);
    click(&mut h, "Log in");
    wait_for(&mut h, "The server's certificate has changed");
    let presented = thindesk_server::tls::show(certificate.path()).expect("its certificate").fingerprint;
    let shown = |fingerprint: &str| {
        let (first, second) = fingerprint.split_at(fingerprint.len() / 2 + 1);
        h.query_by_label(first.trim_matches(':')).is_some() && h.query_by_label(second.trim_matches(':')).is_some()
    };
    assert!(shown(&pinned.to_string()), "the pinned fingerprint is shown");
    assert!(shown(&presented), "the presented fingerprint is shown");
    assert!(h.query_by_label("User name").is_none(), "no login form any more");

    // Nothing is tried again behind the user's back.
    let connections = received.lock().expect("lock").len();
    assert!(connections >= 1, "the client did try the address");
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        h.step();
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(received.lock().expect("lock").len(), connections, "no retry by itself");

    let basic =
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("{}:{}", STUDENT.0, STUDENT.1));
    for (i, bytes) in received.lock().expect("lock").iter().enumerate() {
        assert_eq!(bytes.first(), Some(&0x16), "connection {i} opened with a TLS handshake, not plain HTTP");
        assert!(!contains(bytes, b"DECRYPTED:"), "connection {i} never got past the handshake");
        for secret in [STUDENT.1.as_bytes(), basic.as_bytes(), b"Authorization", b"authorization"] {
            assert!(!contains(bytes, secret), "connection {i} carried {:?}", String::from_utf8_lossy(secret));
        }
    }

    // Asked to, the client checks once more, and stops again.
    click(&mut h, "Check again");
    let deadline = Instant::now() + Duration::from_secs(10);
    while received.lock().expect("lock").len() == connections {
        assert!(Instant::now() < deadline, "Check again tries the server");
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    for _ in 0..20 {
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(h.query_by_label_contains("The server's certificate has changed").is_some(), "and stops again");
    assert!(h.query_by_label("User name").is_none());
    assert_eq!(received.lock().expect("lock").len(), connections + 1, "once");
}

#[test]
fn first_contact_shows_the_fingerprint_and_keeps_it_once_trusted() {
    let env = env();
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("client.toml");
    let server = env.server.server.address().to_string();
    let unpinned = setup(&env.runtime, server.clone(), "02:00:00:00:00:42", Settings::default());
    let mut h = launch(Setup { settings_path: Some(path.clone()), ..unpinned });
    wait_for(&mut h, "Is this your school's server?");
    let fingerprint = env.pin().to_string();
    let (first, second) = fingerprint.split_at(fingerprint.len() / 2 + 1);
    assert!(h.query_by_label(first.trim_matches(':')).is_some(), "the first half of {fingerprint}");
    assert!(h.query_by_label(second.trim_matches(':')).is_some(), "the second half of {fingerprint}");
    assert!(h.query_by_label_contains("Register this terminal").is_none(), "nothing asked before trust");
    assert_eq!(Settings::load(&path).expect("settings").server_fingerprint, None);

    click(&mut h, "Trust this server");
    wait_for(&mut h, "Register this terminal");
    let deadline = Instant::now() + Duration::from_secs(5);
    while Settings::load(&path).expect("settings").server_fingerprint != Some(env.pin()) {
        assert!(Instant::now() < deadline, "the fingerprint is kept in the settings file");
        std::thread::sleep(Duration::from_millis(20));
    }

    // The next start trusts it without asking.
    let saved = setup(&env.runtime, server, "02:00:00:00:00:42", Settings::load(&path).expect("settings"));
    let mut h = launch(Setup { settings_path: Some(path.clone()), lang: Lang::Zh, ..saved });
    wait_for(&mut h, "注册此终端");
}
