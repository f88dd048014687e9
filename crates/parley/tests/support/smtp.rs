//! A minimal SMTP server for tests: accepts AUTH PLAIN/LOGIN and keeps every
//! message it is given. Plain TCP on loopback; enough of RFC 5321 for lettre.

use std::sync::{Arc, Mutex};

use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One delivered message.
#[derive(Debug, Clone)]
pub struct Mail {
    pub auth: Option<String>,
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

pub struct Sink {
    pub port: u16,
    pub mails: Arc<Mutex<Vec<Mail>>>,
}

impl Sink {
    pub async fn start() -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let store = mails.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let store = store.clone();
                tokio::spawn(async move {
                    let (read, mut write) = socket.into_split();
                    let mut lines = BufReader::new(read).lines();
                    let _ = write.write_all(b"220 sink ESMTP ready\r\n").await;
                    let mut mail = Mail {
                        auth: None,
                        from: String::new(),
                        to: Vec::new(),
                        data: String::new(),
                    };
                    while let Ok(Some(line)) = lines.next_line().await {
                        let upper = line.to_ascii_uppercase();
                        let reply: &[u8] = if upper.starts_with("EHLO") {
                            b"250-sink\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n"
                        } else if upper.starts_with("AUTH PLAIN ") {
                            let raw = base64::engine::general_purpose::STANDARD
                                .decode(line[11..].trim())
                                .unwrap_or_default();
                            mail.auth = Some(String::from_utf8_lossy(&raw).replace('\0', "|"));
                            b"235 2.7.0 accepted\r\n"
                        } else if upper.starts_with("MAIL FROM:") {
                            mail.from = line[10..].trim().to_owned();
                            b"250 ok\r\n"
                        } else if upper.starts_with("RCPT TO:") {
                            mail.to.push(line[8..].trim().to_owned());
                            b"250 ok\r\n"
                        } else if upper == "DATA" {
                            let _ = write.write_all(b"354 go on\r\n").await;
                            let mut data = String::new();
                            while let Ok(Some(l)) = lines.next_line().await {
                                if l == "." {
                                    break;
                                }
                                data.push_str(l.strip_prefix('.').unwrap_or(&l));
                                data.push_str("\r\n");
                            }
                            mail.data = data;
                            store.lock().unwrap().push(mail.clone());
                            mail.to.clear();
                            b"250 queued\r\n"
                        } else if upper == "QUIT" {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            break;
                        } else {
                            b"250 ok\r\n"
                        };
                        if write.write_all(reply).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Sink { port, mails }
    }

    /// Waits (up to 10 s) until `n` messages have arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Mail> {
        for _ in 0..200 {
            let mails = self.mails.lock().unwrap().clone();
            if mails.len() >= n {
                return mails;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!(
            "expected {n} e-mails, got {}",
            self.mails.lock().unwrap().len()
        );
    }
}

/// The decoded body of the MIME part whose Content-Type starts with `kind`.
pub fn part(data: &str, kind: &str) -> Option<String> {
    for section in data.split("\r\n--") {
        let Some((head, body)) = section.split_once("\r\n\r\n") else {
            continue;
        };
        let head_lower = head.to_ascii_lowercase();
        if !head_lower.contains(&format!("content-type: {kind}")) {
            continue;
        }
        let body = body.trim_end_matches("\r\n");
        if head_lower.contains("content-transfer-encoding: base64") {
            let joined: String = body.split_whitespace().collect();
            let raw = base64::engine::general_purpose::STANDARD
                .decode(joined)
                .ok()?;
            return String::from_utf8(raw).ok();
        }
        if head_lower.contains("content-transfer-encoding: quoted-printable") {
            return Some(decode_qp(body));
        }
        return Some(body.to_owned());
    }
    None
}

fn decode_qp(body: &str) -> String {
    let joined = body.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(v) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
