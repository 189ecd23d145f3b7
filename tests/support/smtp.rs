//! A local SMTP server for tests, speaking the RFC 5321 wire format over plain TCP: it keeps
//! every message it accepted (its `250` after DATA), can refuse the next messages with a
//! transient reply, and can hold its reply to one message until the client goes away (a test
//! then kills the sender: the message was never accepted, as a real relay would have it).

use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// A message the server accepted.
#[derive(Debug, Clone)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The message as sent (dot-unstuffed), headers and body.
    pub data: Vec<u8>,
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    /// User names of successful `AUTH PLAIN` exchanges.
    logins: Vec<String>,
    /// The password `AUTH PLAIN` accepts (any, when unset).
    password: Option<String>,
    refuse_next: u32,
    hold_nth: Option<usize>,
    holding: bool,
    data_seen: usize,
}

/// The server; it stops with the test's runtime.
#[derive(Clone)]
pub struct SmtpServer {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

impl SmtpServer {
    pub async fn start() -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let s = state.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(session(socket, s.clone()));
            }
        });
        SmtpServer { port, state }
    }

    /// Asks clients to authenticate with `password` (AUTH PLAIN).
    pub fn require_password(&self, password: &str) {
        self.state.lock().unwrap().password = Some(password.to_string());
    }

    /// User names that authenticated, in order.
    pub fn logins(&self) -> Vec<String> {
        self.state.lock().unwrap().logins.clone()
    }

    /// Messages accepted so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// The next `n` messages get `451 4.3.0` (try again later).
    pub fn refuse_next(&self, n: u32) {
        self.state.lock().unwrap().refuse_next = n;
    }

    /// The `nth` message (1 for the first DATA from now on counted since start) gets no reply.
    pub fn hold_message(&self, nth: usize) {
        self.state.lock().unwrap().hold_nth = Some(nth);
    }

    /// Whether a message is held now.
    pub fn holding(&self) -> bool {
        self.state.lock().unwrap().holding
    }
}

async fn session(socket: tokio::net::TcpStream, state: Arc<Mutex<State>>) {
    let (read, mut write) = socket.into_split();
    let mut read = BufReader::new(read);
    if write.write_all(b"220 test.local ESMTP\r\n").await.is_err() {
        return;
    }
    let mut mail_from = String::new();
    let mut rcpt_to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if read.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let upper = line.trim_end().to_ascii_uppercase();
        let auth = state.lock().unwrap().password.clone();
        let answer: &[u8] = if upper.starts_with("EHLO") && auth.is_some() {
            b"250-test.local\r\n250-8BITMIME\r\n250-AUTH PLAIN\r\n250 SIZE 20000000\r\n"
        } else if upper.starts_with("EHLO") {
            b"250-test.local\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 20000000\r\n"
        } else if upper.starts_with("AUTH PLAIN ") {
            use base64::Engine;
            let given = base64::engine::general_purpose::STANDARD
                .decode(line.trim_end()[11..].trim())
                .unwrap_or_default();
            let parts: Vec<String> = given
                .split(|b| *b == 0)
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect();
            let mut s = state.lock().unwrap();
            if parts.len() == 3 && s.password.as_deref().is_none_or(|p| p == parts[2]) {
                s.logins.push(parts[1].clone());
                b"235 2.7.0 Authentication successful\r\n"
            } else {
                b"535 5.7.8 Authentication credentials invalid\r\n"
            }
        } else if upper.starts_with("MAIL FROM:")
            && auth.is_some()
            && state.lock().unwrap().logins.is_empty()
        {
            b"530 5.7.0 Authentication required\r\n"
        } else if upper.starts_with("HELO") || upper.starts_with("NOOP") {
            b"250 2.0.0 OK\r\n"
        } else if upper.starts_with("RSET") {
            mail_from.clear();
            rcpt_to.clear();
            b"250 2.0.0 OK\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            mail_from = line.trim_end()[10..].trim().to_string();
            rcpt_to.clear();
            b"250 2.1.0 OK\r\n"
        } else if upper.starts_with("RCPT TO:") {
            rcpt_to.push(line.trim_end()[8..].trim().to_string());
            b"250 2.1.5 OK\r\n"
        } else if upper == "DATA" {
            if write
                .write_all(b"354 end with <CRLF>.<CRLF>\r\n")
                .await
                .is_err()
            {
                return;
            }
            let mut data = Vec::new();
            loop {
                let mut l = Vec::new();
                if read.read_until(b'\n', &mut l).await.unwrap_or(0) == 0 {
                    return;
                }
                if l == b".\r\n" {
                    break;
                }
                let l = if l.starts_with(b"..") {
                    &l[1..]
                } else {
                    &l[..]
                };
                data.extend_from_slice(l);
            }
            let (hold, refuse) = {
                let mut s = state.lock().unwrap();
                s.data_seen += 1;
                let hold = s.hold_nth == Some(s.data_seen);
                s.holding |= hold;
                let refuse = !hold && s.refuse_next > 0;
                if refuse {
                    s.refuse_next -= 1;
                }
                if !hold && !refuse {
                    s.received.push(Received {
                        mail_from: mail_from.clone(),
                        rcpt_to: rcpt_to.clone(),
                        data,
                    });
                }
                (hold, refuse)
            };
            if hold {
                // No reply: wait for the client to go away; the message is not accepted.
                let mut sink = [0u8; 512];
                while read.read(&mut sink).await.unwrap_or(0) > 0 {}
                state.lock().unwrap().holding = false;
                return;
            }
            if refuse {
                b"451 4.3.0 try again later\r\n"
            } else {
                b"250 2.0.0 queued\r\n"
            }
        } else if upper.starts_with("QUIT") {
            let _ = write.write_all(b"221 2.0.0 bye\r\n").await;
            return;
        } else {
            b"500 5.5.2 unknown command\r\n"
        };
        if write.write_all(answer).await.is_err() {
            return;
        }
    }
}
