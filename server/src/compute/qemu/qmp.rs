//! A minimal synchronous QMP client: one connection per conversation, over the
//! machine's Unix socket. QMP serves one client at a time, so conversations are short.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// How long one QMP reply may take. QEMU answers in milliseconds; a machine that does
/// not answer in this time is wedged.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum QmpError {
    #[error("cannot reach the machine's QMP socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("QMP closed the connection")]
    Closed,
    #[error("QMP sent something that is not JSON: {0}")]
    Garbled(String),
    #[error("QMP refused {command}: {class}: {desc}")]
    Refused { command: String, class: String, desc: String },
}

pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    /// Connects, reads the greeting and leaves capabilities negotiation mode.
    pub fn connect(socket: &Path) -> Result<Self, QmpError> {
        let stream = UnixStream::connect(socket)?;
        stream.set_read_timeout(Some(REPLY_TIMEOUT))?;
        stream.set_write_timeout(Some(REPLY_TIMEOUT))?;
        let writer = stream.try_clone()?;
        let mut qmp = Self { reader: BufReader::new(stream), writer };
        let greeting = qmp.read_message()?;
        if greeting.get("QMP").is_none() {
            return Err(QmpError::Garbled(greeting.to_string()));
        }
        qmp.execute("qmp_capabilities", None)?;
        Ok(qmp)
    }

    /// Runs one command and returns its `return` value. Events that arrive meanwhile
    /// are skipped: nothing here waits for them.
    pub fn execute(&mut self, command: &str, arguments: Option<Value>) -> Result<Value, QmpError> {
        let mut request = json!({ "execute": command });
        if let Some(arguments) = arguments {
            request["arguments"] = arguments;
        }
        let mut line = request.to_string();
        line.push('\n');
        self.writer.write_all(line.as_bytes())?;
        loop {
            let mut message = self.read_message()?;
            if let Some(value) = message.get_mut("return") {
                return Ok(value.take());
            }
            if let Some(error) = message.get("error") {
                let text = |key: &str| error.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
                return Err(QmpError::Refused {
                    command: command.to_owned(),
                    class: text("class"),
                    desc: text("desc"),
                });
            }
        }
    }

    fn read_message(&mut self) -> Result<Value, QmpError> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(QmpError::Closed);
        }
        serde_json::from_str(&line).map_err(|_| QmpError::Garbled(line.trim().chars().take(200).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    /// A scripted QMP peer: answers each line it reads with the next canned reply.
    fn fake_qemu(
        replies: Vec<&'static str>,
    ) -> (tempfile::TempDir, std::path::PathBuf, std::thread::JoinHandle<Vec<String>>) {
        let dir = tempfile::tempdir().expect("dir");
        let socket = dir.path().join("qmp.sock");
        let listener = UnixListener::bind(&socket).expect("bind");
        let peer = std::thread::spawn(move || {
            let (stream, _) = listener.accept().expect("accept");
            let mut writer = stream.try_clone().expect("clone");
            let mut reader = BufReader::new(stream);
            writer.write_all(b"{\"QMP\": {\"version\": {}, \"capabilities\": []}}\n").expect("greet");
            let mut received = Vec::new();
            for reply in replies {
                let mut line = String::new();
                reader.read_line(&mut line).expect("read");
                received.push(line.trim().to_owned());
                writer.write_all(reply.as_bytes()).expect("reply");
            }
            received
        });
        (dir, socket, peer)
    }

    #[test]
    fn skips_events_and_returns_the_answer() {
        let (_dir, socket, peer) = fake_qemu(vec![
            "{\"return\": {}}\n",
            "{\"event\": \"RESUME\", \"data\": {}}\n{\"return\": {\"status\": \"running\"}}\n",
        ]);
        let mut qmp = Qmp::connect(&socket).expect("connect");
        let status = qmp.execute("query-status", None).expect("status");
        assert_eq!(status["status"], "running");
        let received = peer.join().expect("peer");
        assert_eq!(received[0], r#"{"execute":"qmp_capabilities"}"#);
        assert_eq!(received[1], r#"{"execute":"query-status"}"#);
    }

    #[test]
    fn a_refusal_names_the_command_and_reason() {
        let (_dir, socket, _peer) =
            fake_qemu(vec!["{\"return\": {}}\n", "{\"error\": {\"class\": \"GenericError\", \"desc\": \"no way\"}}\n"]);
        let mut qmp = Qmp::connect(&socket).expect("connect");
        let error = qmp.execute("cont", None).expect_err("refused");
        assert_eq!(error.to_string(), "QMP refused cont: GenericError: no way");
    }
}
