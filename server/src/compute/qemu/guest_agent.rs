//! Setting a machine's guest account password through the QEMU guest agent: a small
//! client of the agent's protocol over the machine's `qga.sock`, and the background
//! worker that waits for a booting guest's agent to answer.
//!
//! The agent runs inside the guest, which is untrusted (a student may be root in
//! their own desktop and answer in the agent's place). So everything read from it is
//! bounded in size and time, nothing it says is believed beyond "done" or "refused",
//! and the password travels base64-encoded in the request only, never on a command
//! line or in a log.

use super::{GUEST_AGENT_SOCKET, RUN_FILE, RunState, SPEC_FILE, StoredSpec, lock, process_is_our_qemu, read_json};
use crate::compute::GuestAccount;
use base64::Engine;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a started guest has for its agent to answer: a desktop booting under
/// TCG on a busy host takes minutes, not hours.
pub(super) const AGENT_DEADLINE: Duration = Duration::from_secs(10 * 60);
/// One attempt to reach the agent: while the guest boots, nothing answers.
const SYNC_TIMEOUT: Duration = Duration::from_secs(3);
/// Setting a password runs `chpasswd` in the guest.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
const RETRY_PAUSE: Duration = Duration::from_secs(2);
/// The most the client reads from the agent in one attempt; a real agent's replies
/// here are a few dozen bytes.
const MAX_READ: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub(super) enum AgentError {
    /// Nothing (or nothing sensible) answered: the guest is still booting, or has no
    /// agent. Worth another try.
    #[error("the guest agent does not answer ({0})")]
    NoAnswer(String),
    /// The agent answered with an error: another try gets the same.
    #[error("the guest agent refused: {0}")]
    Refused(String),
}

/// Machines whose account is being set by a worker, each with whether the account
/// changed since the worker last read it.
pub(super) type Pending = Mutex<HashMap<String, bool>>;

/// The worker for machine `id`: sets the account stored in its `machine.json` once
/// the agent answers, and again whenever [`Pending`] says it changed meanwhile. Ends
/// when the account in force is set, when the machine stops, or at the deadline.
pub(super) fn keep_setting(id: &str, dir: &Path, pending: &Pending, deadline: Duration) {
    loop {
        {
            let mut pending = lock(pending);
            match pending.get_mut(id) {
                Some(changed) if *changed => *changed = false,
                _ => {
                    pending.remove(id);
                    return;
                }
            }
        }
        let Ok(StoredSpec { guest_account: Some(account), .. }) = read_json::<StoredSpec>(&dir.join(SPEC_FILE)) else {
            continue;
        };
        match set_when_ready(dir, &account, deadline) {
            Ok(()) => tracing::info!(machine = id, user = %account.username, "OS password set in the guest"),
            Err(error) => tracing::warn!(
                machine = id,
                user = %account.username,
                %error,
                "the guest keeps its old OS password (it is set again at the next start)"
            ),
        }
    }
}

/// Tries until the agent answers, the machine's QEMU is gone, or `deadline` passes.
fn set_when_ready(dir: &Path, account: &GuestAccount, deadline: Duration) -> Result<(), AgentError> {
    let started = Instant::now();
    let socket = dir.join(GUEST_AGENT_SOCKET);
    loop {
        let running = read_json::<RunState>(&dir.join(RUN_FILE))
            .is_ok_and(|run| process_is_our_qemu(run.pid, &dir.join(super::QMP_SOCKET)));
        if !running {
            return Err(AgentError::NoAnswer("the machine is not running".into()));
        }
        match set_password(&socket, account) {
            Err(AgentError::NoAnswer(reason)) if started.elapsed() < deadline => {
                tracing::trace!(%reason, "guest agent not there yet");
                std::thread::sleep(RETRY_PAUSE);
            }
            Err(AgentError::NoAnswer(reason)) => {
                return Err(AgentError::NoAnswer(format!("{reason}; gave up after {} s", deadline.as_secs())));
            }
            outcome => return outcome,
        }
    }
}

/// One conversation: synchronise with the agent, then `guest-set-user-password`.
pub(super) fn set_password(socket: &Path, account: &GuestAccount) -> Result<(), AgentError> {
    let no_answer = |e: std::io::Error| AgentError::NoAnswer(e.to_string());
    let mut stream = UnixStream::connect(socket).map_err(no_answer)?;
    stream.set_write_timeout(Some(SYNC_TIMEOUT)).map_err(no_answer)?;
    let mut reader = Replies::new(stream.try_clone().map_err(no_answer)?);

    // The protocol's own resynchronisation: 0xFF makes the agent drop whatever a
    // former client left half-sent; it answers `guest-sync-delimited` after a 0xFF of
    // its own, and everything before that is stale.
    let sync_id = crate::random::number();
    let mut request = vec![0xFF];
    request.extend(json!({ "execute": "guest-sync-delimited", "arguments": { "id": sync_id } }).to_string().bytes());
    request.push(b'\n');
    stream.write_all(&request).map_err(no_answer)?;
    reader.skip_to_sentinel(SYNC_TIMEOUT)?;
    loop {
        let reply = reader.next(SYNC_TIMEOUT)?;
        if reply.get("return").and_then(Value::as_u64) == Some(sync_id) {
            break;
        }
    }

    let password = base64::engine::general_purpose::STANDARD.encode(account.password.expose());
    let mut command = json!({
        "execute": "guest-set-user-password",
        "arguments": { "username": account.username, "password": password, "crypted": false },
    })
    .to_string();
    command.push('\n');
    stream.write_all(command.as_bytes()).map_err(no_answer)?;
    let reply = reader.next(COMMAND_TIMEOUT)?;
    match (reply.get("return"), reply.get("error")) {
        (Some(_), None) => Ok(()),
        (_, Some(error)) => {
            let said = error.get("desc").and_then(Value::as_str).unwrap_or("no reason given");
            Err(AgentError::Refused(said.chars().take(200).collect()))
        }
        _ => Err(AgentError::NoAnswer("an answer that is neither a return nor an error".into())),
    }
}

/// The agent's answers: JSON objects, one per line, read with a bound on the bytes
/// and on the time each may take.
struct Replies {
    stream: UnixStream,
    buffer: Vec<u8>,
    read: usize,
}

impl Replies {
    fn new(stream: UnixStream) -> Self {
        Self { stream, buffer: Vec::new(), read: 0 }
    }

    /// Reads more into the buffer, failing past `until` or past [`MAX_READ`].
    fn fill(&mut self, until: Instant) -> Result<(), AgentError> {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(AgentError::NoAnswer("no answer in time".into()));
        }
        if self.read >= MAX_READ {
            return Err(AgentError::NoAnswer(format!("more than {MAX_READ} bytes without an answer")));
        }
        self.stream.set_read_timeout(Some(left)).map_err(|e| AgentError::NoAnswer(e.to_string()))?;
        let mut chunk = [0u8; 4096];
        match self.stream.read(&mut chunk) {
            Ok(0) => Err(AgentError::NoAnswer("the agent's channel closed".into())),
            Ok(n) => {
                self.read += n;
                self.buffer.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(e) => Err(AgentError::NoAnswer(e.to_string())),
        }
    }

    fn skip_to_sentinel(&mut self, timeout: Duration) -> Result<(), AgentError> {
        let until = Instant::now() + timeout;
        loop {
            if let Some(at) = self.buffer.iter().position(|b| *b == 0xFF) {
                self.buffer.drain(..=at);
                return Ok(());
            }
            self.buffer.clear();
            self.fill(until)?;
        }
    }

    /// The next JSON object; lines that are not one are skipped.
    fn next(&mut self, timeout: Duration) -> Result<Value, AgentError> {
        let until = Instant::now() + timeout;
        loop {
            while let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                if let Ok(value @ Value::Object(_)) = serde_json::from_slice::<Value>(&line) {
                    return Ok(value);
                }
            }
            self.fill(until)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::os::unix::net::UnixListener;
    use thindesk_shared::Secret;

    fn account() -> GuestAccount {
        GuestAccount { username: "student".into(), password: Secret::new("pässword 1") }
    }

    /// An agent on a socket that answers as `script` says, given each request line.
    fn agent(script: impl Fn(&Value) -> Vec<u8> + Send + 'static) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("dir");
        let socket = dir.path().join("qga.sock");
        let listener = UnixListener::bind(&socket).expect("bind");
        std::thread::spawn(move || {
            let Ok((stream, _)) = listener.accept() else { return };
            let mut writer = stream.try_clone().expect("clone");
            for line in BufReader::new(stream).split(b'\n') {
                let Ok(line) = line else { return };
                let text: Vec<u8> = line.into_iter().filter(|b| *b != 0xFF).collect();
                let Ok(request) = serde_json::from_slice::<Value>(&text) else { continue };
                if writer.write_all(&script(&request)).is_err() {
                    return;
                }
            }
        });
        (dir, socket)
    }

    fn sync_reply(request: &Value, stale: &str) -> Vec<u8> {
        let mut reply = stale.as_bytes().to_vec();
        reply.push(0xFF);
        reply.extend(format!("{}\n", json!({ "return": request["arguments"]["id"] })).bytes());
        reply
    }

    #[test]
    fn the_password_is_sent_base64_after_a_sync_past_stale_replies() {
        let (seen_tx, seen_rx) = std::sync::mpsc::channel();
        let (_dir, socket) = agent(move |request| match request["execute"].as_str() {
            Some("guest-sync-delimited") => sync_reply(request, "{\"return\": 7}\n"),
            _ => {
                let _ = seen_tx.send(request.clone());
                b"{\"return\": {}}\n".to_vec()
            }
        });
        set_password(&socket, &account()).expect("set");
        let request = seen_rx.recv().expect("request");
        assert_eq!(request["execute"], "guest-set-user-password");
        assert_eq!(request["arguments"]["username"], "student");
        assert_eq!(request["arguments"]["crypted"], false);
        let sent = base64::engine::general_purpose::STANDARD
            .decode(request["arguments"]["password"].as_str().expect("text"))
            .expect("base64");
        assert_eq!(sent, "pässword 1".as_bytes());
    }

    #[test]
    fn an_agent_error_is_a_refusal_with_its_reason() {
        let (_dir, socket) = agent(|request| match request["execute"].as_str() {
            Some("guest-sync-delimited") => sync_reply(request, ""),
            _ => b"{\"error\": {\"class\": \"GenericError\", \"desc\": \"cannot find 'passwd' program in PATH\"}}\n"
                .to_vec(),
        });
        match set_password(&socket, &account()) {
            Err(AgentError::Refused(reason)) => assert!(reason.contains("passwd"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_guest_that_floods_the_channel_is_not_believed_and_not_buffered_without_end() {
        let (_dir, socket) = agent(|_| vec![b'x'; MAX_READ * 4]);
        match set_password(&socket, &account()) {
            Err(AgentError::NoAnswer(reason)) => assert!(reason.contains("bytes"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_agent_on_the_socket_is_no_answer() {
        let dir = tempfile::tempdir().expect("dir");
        assert!(matches!(set_password(&dir.path().join("qga.sock"), &account()), Err(AgentError::NoAnswer(_))));
    }
}
