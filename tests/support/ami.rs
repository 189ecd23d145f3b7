//! A fake Asterisk Manager Interface for tests, speaking the real wire format: the banner,
//! the `Login` action answered by `Response: Success` (or `Error`) with its `ActionID`, then
//! the events a test sends (recorded sequences from `tests/fixtures/ami/`), `\r\n` lines and a
//! blank line after each message. A test may drop the connection to see the hub reconnect.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::broadcast;

#[derive(Debug, Clone)]
enum Command {
    Send(Arc<Vec<u8>>),
    Drop,
}

/// A switch on 127.0.0.1:`port` that accepts `username`/`secret`.
pub struct FakeSwitch {
    pub port: u16,
    logins: Arc<AtomicUsize>,
    commands: broadcast::Sender<Command>,
}

impl FakeSwitch {
    pub async fn start(username: &str, secret: &str) -> FakeSwitch {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let logins = Arc::new(AtomicUsize::new(0));
        let (commands, _) = broadcast::channel(64);
        let (user, pass) = (username.to_string(), secret.to_string());
        let (count, tx) = (logins.clone(), commands.clone());
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let rx = tx.subscribe();
                tokio::spawn(serve(socket, user.clone(), pass.clone(), count.clone(), rx));
            }
        });
        FakeSwitch {
            port,
            logins,
            commands,
        }
    }

    /// Logins accepted so far.
    pub fn logins(&self) -> usize {
        self.logins.load(Ordering::SeqCst)
    }

    /// Sends `bytes` to every logged-in connection.
    pub fn send(&self, bytes: &[u8]) {
        let _ = self.commands.send(Command::Send(Arc::new(bytes.to_vec())));
    }

    /// Closes every connection (the switch restarts, a network cut).
    pub fn drop_connections(&self) {
        let _ = self.commands.send(Command::Drop);
    }
}

async fn serve(
    mut socket: tokio::net::TcpStream,
    user: String,
    pass: String,
    logins: Arc<AtomicUsize>,
    mut commands: broadcast::Receiver<Command>,
) {
    if socket
        .write_all(b"Asterisk Call Manager/7.0.3\r\n")
        .await
        .is_err()
    {
        return;
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}: ")))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let ok = field("Action") == "Login" && field("Username") == user && field("Secret") == pass;
    let answer = if ok {
        format!(
            "Response: Success\r\nActionID: {}\r\nMessage: Authentication accepted\r\n\r\n",
            field("ActionID")
        )
    } else {
        format!(
            "Response: Error\r\nActionID: {}\r\nMessage: Authentication failed\r\n\r\n",
            field("ActionID")
        )
    };
    if socket.write_all(answer.as_bytes()).await.is_err() || !ok {
        return;
    }
    logins.fetch_add(1, Ordering::SeqCst);
    while let Ok(c) = commands.recv().await {
        match c {
            Command::Send(bytes) => {
                if socket.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            Command::Drop => return,
        }
    }
}

/// The messages of a recorded sequence (`tests/fixtures/ami/NAME`), each with its blank line.
pub fn recorded(name: &str) -> Vec<Vec<u8>> {
    let wire = std::fs::read(format!(
        "{}/fixtures/ami/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("a recorded AMI sequence");
    String::from_utf8(wire)
        .unwrap()
        .split_inclusive("\r\n\r\n")
        .map(|m| m.as_bytes().to_vec())
        .collect()
}
